"""Gated linear units: a real diagonal linear recurrence whose decay and write strength the input sets each step."""

from __future__ import annotations

import torch as th
import torch.nn.functional as F
from torch import nn

from sb3_rtrl.cells.base import (
    ElementwiseRecurrentCell,
    ParameterCache,
    RTRLTerms,
    SensitivitySpec,
    check_fraction,
    check_input_mask,
    check_timescales,
    masked_weight,
    spread_timescales,
    unit_reads,
)
from sb3_rtrl.cells.rtu import adjoint_recurrence, linear_recurrence

# The gate's pre-activation is clamped to this range. Within it every value is finite in float32 and float64; outside
# it a unit is already frozen (a time constant of e^60 steps) or fully reset (a = 0 exactly from about 6.6), so the
# clamp changes neither the state nor, beyond rounding, the gradient.
GATE_MIN, GATE_MAX = -60.0, 20.0


class GatedLinearCell(ElementwiseRecurrentCell):
    """
    Linear units whose decay and write strength depend on the current input: a unit can hold its state through
    hundreds of steps of distractors and overwrite it at full strength when one salient input arrives.

    ::

        [d(t); g(t)] = [W; G] x(t) + [b_d; b_g]
        s(t) = exp(g(t)),  a(t) = exp(-s(t)),  gamma(t) = sqrt(1 - a(t)^2)
        c(t) = a(t) c(t-1) + gamma(t) d(t)
        h(t) = c(t)

    ``s`` is the unit's rate (its time constant ``1 / s`` while ``s`` is small), so an input moves the time constant
    on a log scale; ``gamma`` keeps the state's scale that of ``d`` whatever the decay, as in the RTU, so a slow
    unit writes ``sqrt(2 s)`` of its input where an eLSTM unit with the same decay writes ``s``. The gate reads the
    input only, so the step Jacobian is ``a(t)`` and exact RTRL keeps one sensitivity per weight of ``[W; G]`` and
    per bias. Unlike the RTU the units do not rotate: with an input-dependent decay a rotation would turn by an
    input-dependent angle, which scrambles what a unit holds when distractors drive the gate.

    :param input_size: D, the size of x
    :param state_size: N, the size of c and h (all groups together)
    :param timescales: ``(low, high)`` steps: the gate biases ``b_g`` are set so that, at a zero input, each group's
        units have time constants spread evenly on a log scale from ``low`` to ``high``
    :param input_init_std: standard deviation of the normal init of ``W`` and ``G``; None: ``1 / sqrt(input_size)``
    :param drive_init_std: standard deviation of ``W``'s init alone; None: ``input_init_std``. 0: the units write
        nothing and their outputs are exactly zero until learning gives ``W`` a use; their gradient still flows, since
        ``dc / dW`` does not depend on ``W``
    :param drive_init_fraction: the share of each group's units whose ``W`` takes ``drive_init_std``, spaced evenly
        over the group's time constants (rounded down, so 0.5 takes every second unit); the others keep
        ``input_init_std``. 1: all of them
    :param groups: independent groups of units (the actor's and the critic's); units never interact, so groups
        matter only with ``input_mask`` and for the time-constant spread, which is laid over each group
    :param input_mask: ``(groups, input_size)`` bool, which inputs each group reads; None: all
    :param device: device of the parameters
    :param dtype: dtype of the parameters
    """

    weight_ih_mask: th.Tensor

    rtrl_specs = (
        SensitivitySpec("weight_ih", "outer"),  # [W; G]
        SensitivitySpec("bias", "diag"),  # [b_d; b_g]
    )

    def __init__(
        self,
        input_size: int,
        state_size: int,
        timescales: tuple[float, float] = (1.0, 1000.0),
        input_init_std: float | None = None,
        groups: int = 1,
        input_mask: th.Tensor | None = None,
        device: th.device | str | None = None,
        dtype: th.dtype | None = None,
        drive_init_std: float | None = None,
        drive_init_fraction: float = 1.0,
    ) -> None:
        super().__init__()
        if input_size < 1 or state_size < 1:
            raise ValueError(f"GatedLinearCell needs input_size >= 1 and state_size >= 1, got {input_size} and {state_size}")
        if drive_init_std is not None and (
            isinstance(drive_init_std, bool)
            or not isinstance(drive_init_std, (int, float))
            or not 0.0 <= drive_init_std < float("inf")
        ):
            raise ValueError(f"GatedLinearCell: drive_init_std must be None or a finite float >= 0, got {drive_init_std!r}")
        drive_init_fraction = check_fraction("GatedLinearCell", "drive_init_fraction", drive_init_fraction)
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or state_size % groups:
            raise ValueError(f"GatedLinearCell: groups={groups} must be >= 1 and divide state_size={state_size}")
        self.input_size = input_size
        self.state_size = state_size
        self.timescales = check_timescales("GatedLinearCell", timescales)
        self.input_init_std = input_size**-0.5 if input_init_std is None else float(input_init_std)
        self.drive_init_std = None if drive_init_std is None else float(drive_init_std)
        self.drive_init_fraction = drive_init_fraction
        self.groups = groups
        self.weight_ih = nn.Parameter(th.empty(2 * state_size, input_size, device=device, dtype=dtype))
        self.bias = nn.Parameter(th.empty(2 * state_size, device=device, dtype=dtype))
        self.masked_input = input_mask is not None
        if input_mask is not None:
            check_input_mask("GatedLinearCell", input_mask, groups, input_size)
            reads = unit_reads(input_mask, state_size, groups, self.weight_ih.dtype, device)
            self.register_buffer("weight_ih_mask", reads.repeat(2, 1), persistent=False)
        # The masked input weight as acting reads it, until the weight changes.
        self._input_cache: ParameterCache[th.Tensor] = ParameterCache()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """
        Normal(0, input_init_std) for ``[W; G]`` (``W`` rescaled to ``drive_init_std`` if given), ``b_d = 0``,
        ``b_g = -log(tau)`` from the time-constant spread.
        """
        nn.init.normal_(self.weight_ih, 0.0, self.input_init_std)
        with th.no_grad():
            if self.drive_init_std is not None:
                # Drawn with the rest and rescaled, so that the gate weights G are those of the unscaled init.
                rows = self.drive_init_rows()
                drive = self.weight_ih[: self.state_size][rows]
                if self.input_init_std > 0:
                    drive.mul_(self.drive_init_std / self.input_init_std)
                else:
                    drive.normal_(0.0, self.drive_init_std)
                self.weight_ih[: self.state_size][rows] = drive
            tau = spread_timescales(self.timescales, self.state_size // self.groups, self.groups)
            self.bias.zero_()
            # a = exp(-exp(b_g)) = exp(-1 / tau) at a zero input.
            self.bias[self.state_size :] = (-th.log(tau)).to(self.bias)

    def drive_init_rows(self) -> th.Tensor:
        """``(state_size,)`` bool: the units whose ``W`` takes ``drive_init_std``, every ``1 / fraction``-th of a group."""
        per_group = self.state_size // self.groups
        index = th.arange(per_group, dtype=th.float64)
        # Unit i is taken when floor((i + 1) f) passes an integer: floor(n f) of n units, spread evenly.
        taken = th.floor((index + 1) * self.drive_init_fraction) > th.floor(index * self.drive_init_fraction)
        return taken.repeat(self.groups).to(self.weight_ih.device)

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.state_size}, timescales={self.timescales}, input_init_std={self.input_init_std:.3g}"
            + ("" if self.drive_init_std is None else f", drive_init_std={self.drive_init_std:.3g}")
            + ("" if self.drive_init_fraction == 1.0 else f", drive_init_fraction={self.drive_init_fraction:.3g}")
            + (f", groups={self.groups}" if self.groups > 1 else "")
            + (", masked input" if self.masked_input else "")
        )

    def input_weight(self) -> th.Tensor:
        """``[W; G]`` as used: with an input mask, a unit's weights on its group's unread inputs are zero."""
        return masked_weight(self.weight_ih, self.weight_ih_mask if self.masked_input else None, self._input_cache)

    def rtrl_tensors(self) -> list[th.Tensor]:
        return [self.input_weight(), self.bias]

    def _gates(self, x: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor]:
        """The drive ``d``, the clamped gate pre-activation, the decay ``a`` and ``gamma``, each ``(..., N)``."""
        d, g = F.linear(x, self.input_weight(), self.bias).chunk(2, dim=-1)
        g = g.clamp(GATE_MIN, GATE_MAX)
        s = th.exp(g)
        # gamma^2 = 1 - a^2 = -expm1(-2 s), exact for a slow unit (s small).
        return d, g, th.exp(-s), th.sqrt(-th.expm1(-2.0 * s))

    def scan(
        self, x: th.Tensor, c0: th.Tensor, episode_starts: th.Tensor, need_terms: bool = False
    ) -> tuple[th.Tensor, th.Tensor, RTRLTerms | None]:
        d, g, a, gamma = self._gates(x)
        not_start = (~episode_starts).to(x.dtype).unsqueeze(-1)  # (T, B, 1)
        jacobian = a * not_start
        drive = gamma * d
        if x.shape[0] == 1 and not need_terms and not th.is_grad_enabled():
            # Acting: one step.
            c = th.addcmul(drive[0], jacobian[0], c0)
            return c.unsqueeze(0), c, None
        if th.is_grad_enabled():
            c_all = _LinearRecurrence.apply(jacobian, drive, c0)
        else:
            c_all = _recurrence_forward(jacobian, drive, c0)
        terms = None
        if need_terms:
            with th.no_grad():
                d, g, a, gamma = d.detach(), g.detach(), a.detach(), gamma.detach()
                terms = self._terms(x, d, g, a, gamma, jacobian.detach(), c0.detach(), c_all.detach(), not_start)
        return c_all, c_all[-1], terms

    def _terms(
        self,
        x: th.Tensor,
        d: th.Tensor,
        g: th.Tensor,
        a: th.Tensor,
        gamma: th.Tensor,
        jacobian: th.Tensor,
        c0: th.Tensor,
        c_all: th.Tensor,
        not_start: th.Tensor,
    ) -> RTRLTerms:
        """The step Jacobian as given (``a``, zero at episode starts); ``dc / dd = gamma`` and ``dc / dg`` for both blocks."""
        c_tilde = th.cat([c0.unsqueeze(0), c_all[:-1]]) * not_start
        # da/dg = -s a and dgamma/dg = s a^2 / gamma, so dc/dg = s a (a d / gamma - c~); s a = exp(g - s) stays finite.
        s_a = th.exp(g - th.exp(g))
        dc_dg = s_a * (a * d / gamma.clamp_min(th.finfo(gamma.dtype).tiny) - c_tilde)
        # The clamp passes no gradient outside its range.
        dc_dg = dc_dg * ((g > GATE_MIN) & (g < GATE_MAX)).to(g.dtype)
        immediate = th.cat([gamma, dc_dg], dim=-1)
        return RTRLTerms(jacobian=jacobian, immediates=[(immediate, x.detach()), (immediate, None)])

    def reference_scan(self, x: th.Tensor, c0: th.Tensor, episode_starts: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        The cell's equations step by step with plain autograd ops (the ground truth of the tests). Same arguments and
        result as :meth:`forward`.
        """
        n = self.state_size
        w, bias = self.input_weight(), self.bias
        not_start = (~episode_starts).to(x.dtype).unsqueeze(-1)
        c, cs = c0, []
        for t in range(x.shape[0]):
            d = x[t] @ w[:n].T + bias[:n]
            rate = th.exp(th.clamp(x[t] @ w[n:].T + bias[n:], GATE_MIN, GATE_MAX))
            decay = th.exp(-rate)
            c = decay * (c * not_start[t]) + th.sqrt(1.0 - decay * decay) * d
            cs.append(c)
        return th.stack(cs), c


def _recurrence_forward(jacobian: th.Tensor, drive: th.Tensor, c0: th.Tensor) -> th.Tensor:
    """``c(t) = jacobian(t) c(t-1) + drive(t)`` from ``c0``, all steps ``(T, B, N)`` (detached)."""
    b = drive.detach().clone()
    b[0] += jacobian[0].detach() * c0.detach()
    return linear_recurrence(jacobian.detach(), b)


class _LinearRecurrence(th.autograd.Function):
    """
    ``c(t) = A(t) c(t-1) + B(t)`` with a hand-written backward: the adjoint ``dB(t) = e(t) + A(t+1) dB(t+1)`` is itself
    a linear recurrence, run backward in time; ``dA(t) = dB(t) c(t-1)`` and ``dc0 = A(0) dB(0)``.
    """

    @staticmethod
    def forward(ctx, jacobian, drive, c0):  # type: ignore[override]
        c_all = _recurrence_forward(jacobian, drive, c0)
        ctx.save_for_backward(jacobian, c0, c_all)
        return c_all

    @staticmethod
    def backward(ctx, grad_c_all):  # type: ignore[override]
        jacobian, c0, c_all = ctx.saved_tensors
        grad_drive = adjoint_recurrence(jacobian, grad_c_all)
        grad_jacobian = grad_drive * th.cat([c0.unsqueeze(0), c_all[:-1]]) if ctx.needs_input_grad[0] else None
        return grad_jacobian, grad_drive, grad_drive[0] * jacobian[0] if ctx.needs_input_grad[2] else None
