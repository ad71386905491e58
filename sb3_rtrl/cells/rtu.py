"""Recurrent trace units (RTU) of Elelimy et al. (NeurIPS 2024): complex-diagonal linear recurrences."""

from __future__ import annotations

import math

import torch as th
import torch.nn.functional as F
from torch import nn

from sb3_rtrl.cells import kernels
from sb3_rtrl.cells.base import (
    ElementwiseRecurrentCell,
    ParameterCache,
    RTRLTerms,
    SensitivitySpec,
    check_input_mask,
    check_timescales,
    masked_weight,
    spread_timescales,
    unit_reads,
)

ACTIVATIONS = ("linear", "relu")


class RTUCell(ElementwiseRecurrentCell):
    """
    Recurrent trace units: per unit a complex eigenvalue ``lambda = r e^{i theta}`` written as two real states.

    ::

        r = exp(-exp(nu)),  theta = exp(theta_log),  gamma = sqrt(1 - r^2)
        c1(t) = r cos(theta) c1(t-1) - r sin(theta) c2(t-1) + gamma (W1 x(t))
        c2(t) = r cos(theta) c2(t-1) + r sin(theta) c1(t-1) + gamma (W2 x(t))
        h(t)  = [act(c1(t)); act(c2(t))]

    In complex form ``c(t) = lambda c(t-1) + gamma (W1 + i W2) x(t)``: the recurrence is linear and its step
    Jacobian is one complex number per unit, so exact RTRL keeps one complex sensitivity per weight of
    ``W = W1 + i W2`` (that of ``W2`` is ``i`` times it) and one per unit for ``nu`` and ``theta_log``. The
    activation acts on the output only, so linear and non-linear RTUs share the recursion. ``gamma`` keeps the
    state's scale that of ``W x`` whatever ``r``.

    State and output have ``state_size`` reals: ``state_size // 2`` units, each as an adjacent
    ``(c1, c2)`` pair. There is no bias in the recurrence.

    :param input_size: D, the size of x
    :param state_size: size of the real state and the output, twice the number of units (even)
    :param activation: ``"linear"`` (identity) or ``"relu"`` on the output
    :param r_min: lower end of the eigenvalue modulus at init (``r^2`` is uniform in ``[r_min^2, r_max^2]``)
    :param r_max: upper end of it; near 1 the units keep their input for long
    :param timescales: ``(low, high)`` steps: instead of drawing ``r``, give each group's units time constants
        ``-1 / log(r)`` spread evenly on a log scale from ``low`` to ``high``, so that some units keep an input
        for hundreds of steps whatever the width; None: draw ``r`` from ``[r_min, r_max]``
    :param max_phase: ``theta`` is uniform in ``(0, max_phase]`` at init: units rotate their state at
        different speeds, which gives a code for the time since an input
    :param input_init_std: standard deviation of the normal init of ``W1`` and ``W2``; None:
        ``1 / sqrt(input_size)``
    :param groups: independent groups of units (the actor's and the critic's), each ``state_size // groups``
        reals (even). Units never interact, so groups matter only with ``input_mask``
    :param input_mask: ``(groups, input_size)`` bool, which inputs each group reads; None: all
    :param device: device of the parameters
    :param dtype: dtype of the parameters (float32 or float64)
    """

    weight_ih_mask: th.Tensor

    complex_state = True
    rtrl_specs = (
        SensitivitySpec("weight_ih", "outer"),  # W1 + i W2, stored as (units, D, 2) reals
        SensitivitySpec("nu_log", "diag"),
        SensitivitySpec("theta_log", "diag"),
    )

    def __init__(
        self,
        input_size: int,
        state_size: int,
        activation: str = "linear",
        r_min: float = 0.0,
        r_max: float = 1.0,
        max_phase: float = 2 * math.pi,
        input_init_std: float | None = None,
        timescales: tuple[float, float] | None = None,
        groups: int = 1,
        input_mask: th.Tensor | None = None,
        device: th.device | str | None = None,
        dtype: th.dtype | None = None,
    ) -> None:
        super().__init__()
        if input_size < 1 or state_size < 2:
            raise ValueError(f"RTUCell needs input_size >= 1 and state_size >= 2, got {input_size} and {state_size}")
        if groups < 1 or state_size % (2 * groups):
            raise ValueError(
                f"RTUCell: state_size={state_size} must divide into groups={groups} of an even size "
                "(each unit is a pair of reals)"
            )
        if activation not in ACTIVATIONS:
            raise ValueError(f"RTUCell: activation must be one of {ACTIVATIONS}, got {activation!r}")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (r_min, r_max, max_phase)):
            raise ValueError(
                f"RTUCell needs finite numbers for r_min, r_max and max_phase, got {r_min!r}, {r_max!r}, {max_phase!r}"
            )
        if not 0.0 <= r_min <= r_max <= 1.0:
            raise ValueError(f"RTUCell needs 0 <= r_min <= r_max <= 1, got r_min={r_min}, r_max={r_max}")
        if not max_phase > 0.0:
            raise ValueError(f"RTUCell needs max_phase > 0, got {max_phase}")
        if timescales is not None:
            timescales = check_timescales("RTUCell", timescales)
            if (r_min, r_max) != (0.0, 1.0):
                raise ValueError("RTUCell: give timescales or r_min/r_max, not both")
        units = state_size // 2
        self.input_size = input_size
        self.state_size = state_size
        self.units = units
        self.activation = activation
        self.r_min, self.r_max, self.max_phase = float(r_min), float(r_max), float(max_phase)
        self.timescales = timescales
        self.input_init_std = input_size**-0.5 if input_init_std is None else float(input_init_std)
        self.groups = groups
        self.weight_ih = nn.Parameter(th.empty(units, input_size, 2, device=device, dtype=dtype))
        self.nu_log = nn.Parameter(th.empty(units, device=device, dtype=dtype))
        self.theta_log = nn.Parameter(th.empty(units, device=device, dtype=dtype))
        self.masked_input = input_mask is not None
        if input_mask is not None:
            check_input_mask("RTUCell", input_mask, groups, input_size)
            reads = unit_reads(input_mask, units, groups, self.weight_ih.dtype, device)
            self.register_buffer("weight_ih_mask", reads.unsqueeze(-1), persistent=False)
        # The acting step's coefficients, and the masked input weight (kept as the other cells keep theirs).
        self._act_cache: ParameterCache[tuple[th.Tensor, th.Tensor, th.Tensor]] = ParameterCache()
        self._input_cache: ParameterCache[th.Tensor] = ParameterCache()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """
        The published init: ``r^2`` uniform in ``[r_min^2, r_max^2]``, ``theta`` uniform in ``(0, max_phase]``; with
        ``timescales``, ``r`` from time constants spread over each group instead.
        """
        nn.init.normal_(self.weight_ih, 0.0, self.input_init_std)
        with th.no_grad():
            if self.timescales is not None:
                tau = spread_timescales(self.timescales, self.units // self.groups, self.groups)
                # r = exp(-1 / tau), so nu = log(-log r) = -log(tau).
                self.nu_log.copy_((-th.log(tau)).to(self.nu_log))
                theta = self.max_phase * (1.0 - th.rand_like(self.theta_log))
                self.theta_log.copy_(th.log(theta.clamp_min(1e-6)))
                return
            r2 = th.empty_like(self.nu_log).uniform_(self.r_min**2, self.r_max**2)
            # r = 1 exactly would be a unit that never forgets and takes no input (gamma = 0), r = 0 an infinite nu.
            r2.clamp_(1e-6, 1.0 - 1e-6)
            self.nu_log.copy_(th.log(-0.5 * th.log(r2)))
            theta = self.max_phase * (1.0 - th.rand_like(self.theta_log))
            self.theta_log.copy_(th.log(theta.clamp_min(1e-6)))

    def extra_repr(self) -> str:
        init = f"timescales={self.timescales}" if self.timescales is not None else f"r=[{self.r_min}, {self.r_max}]"
        return (
            f"{self.input_size}, {self.state_size}, activation={self.activation}, {init}, "
            f"max_phase={self.max_phase:.3g}, input_init_std={self.input_init_std:.3g}"
            + (f", groups={self.groups}" if self.groups > 1 else "")
            + (", masked input" if self.masked_input else "")
        )

    # ------------------------------------------------------------------ parameters as the recurrence uses them

    def input_weight(self) -> th.Tensor:
        """``(units, D, 2)`` reals ``[W1, W2]``; with an input mask, a unit's weights on unread inputs are zero."""
        return masked_weight(self.weight_ih, self.weight_ih_mask if self.masked_input else None, self._input_cache)

    def sensitivity_shapes(self) -> list[tuple[int, ...]]:
        return [(self.units, self.input_size), (self.units,), (self.units,)]

    def rtrl_tensors(self) -> list[th.Tensor]:
        return [th.view_as_complex(self.input_weight()), self.nu_log, self.theta_log]

    def eigenvalues(self) -> tuple[th.Tensor, th.Tensor]:
        """``lambda`` (complex) and ``gamma`` (real) of each unit, with autograd."""
        nu = th.exp(self.nu_log)
        # gamma^2 = 1 - r^2 = -expm1(-2 exp(nu)), exact for r near 1.
        gamma = th.sqrt(-th.expm1(-2.0 * nu))
        lam = th.exp(th.complex(-nu, th.exp(self.theta_log)))
        return lam, gamma

    def _drive(self, x: th.Tensor) -> th.Tensor:
        """``(W1 + i W2) x`` as ``(T, B, units)`` complex, from one real matrix product."""
        u = F.linear(x, self._drive_weight())  # (T, B, 2 units): (real, imaginary) adjacent
        return th.view_as_complex(u.view(*u.shape[:-1], self.units, 2))

    def _drive_weight(self) -> th.Tensor:
        """``[W1; W2]`` as one ``(2 units, D)`` matrix, (real, imaginary) rows adjacent."""
        return self.input_weight().transpose(1, 2).reshape(2 * self.units, self.input_size)

    def _output(self, c_all: th.Tensor) -> th.Tensor:
        """The real ``(c1, c2)`` pairs of the complex states, through the activation."""
        h = _real_pairs(c_all)
        return F.relu(h) if self.activation == "relu" else h

    def scan(
        self, x: th.Tensor, c0: th.Tensor, episode_starts: th.Tensor, need_terms: bool = False
    ) -> tuple[th.Tensor, th.Tensor, RTRLTerms | None]:
        steps, batch, _ = x.shape
        if steps == 1 and not need_terms and not th.is_grad_enabled():
            return self._act(x, c0, episode_starts)
        not_start = (~episode_starts).to(x.dtype).unsqueeze(-1)  # (T, B, 1)
        lam, gamma = self.eigenvalues()
        drive = gamma * self._drive(x)  # (T, B, units)
        pairs = c0.reshape(batch, self.units, 2)
        if not pairs.is_contiguous() or pairs.storage_offset() % 2:
            # A view into a wider state (a MixedCell's) may start at an odd offset, which a complex view cannot.
            pairs = pairs.clone(memory_format=th.contiguous_format)
        c0_complex = th.view_as_complex(pairs)
        if th.is_grad_enabled():
            c_all, c_tilde = _RTURecurrence.apply(drive, lam, c0_complex, not_start)
        else:
            c_all, c_tilde = _recurrence_forward(drive, lam, c0_complex, not_start)
        h = self._output(c_all)
        c_last = h[-1] if self.activation == "linear" else _real_pairs(c_all[-1])
        terms = None
        if need_terms:
            with th.no_grad():
                terms = self._terms(x, lam.detach(), gamma.detach(), drive.detach(), c_tilde, not_start)
        return h, c_last, terms

    def _act(self, x: th.Tensor, c0: th.Tensor, episode_starts: th.Tensor) -> tuple[th.Tensor, th.Tensor, None]:
        """
        One step without autograd (acting), in the real two-state form: ``c = rot(c~) + gamma W x``, where
        ``rot(c~) = cos_r * c~ + sin_r * swap(c~)`` rotates each ``(c1, c2)`` pair. A handful of operations on
        reals, with the step's coefficients computed once per change of the parameters.
        """
        cos_r, sin_r, weight = self._act_cache.get((self.weight_ih, self.nu_log, self.theta_log), self._act_coefficients)
        c_tilde = c0 * (~episode_starts[0]).to(c0.dtype).unsqueeze(-1)
        swapped = c_tilde.view(-1, self.units, 2).flip(-1).reshape(c_tilde.shape)
        c = F.linear(x[0], weight).addcmul_(c_tilde, cos_r).addcmul_(swapped, sin_r)
        h = F.relu(c) if self.activation == "relu" else c
        return h.unsqueeze(0), c, None

    def _act_coefficients(self) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """Per real state: ``r cos(theta)`` and ``(-r sin(theta), r sin(theta))`` of its pair; ``gamma [W1; W2]``."""
        lam, gamma = self.eigenvalues()
        cos_r = lam.real.repeat_interleave(2)
        sin_r = th.stack([-lam.imag, lam.imag], dim=-1).flatten()
        weight = self._drive_weight() * gamma.repeat_interleave(2).unsqueeze(-1)
        return cos_r, sin_r, weight

    def _terms(
        self, x: th.Tensor, lam: th.Tensor, gamma: th.Tensor, drive: th.Tensor, c_tilde: th.Tensor, not_start: th.Tensor
    ) -> RTRLTerms:
        """Jacobian ``lambda`` (zero at episode starts) and the immediate derivatives of ``c(t)``."""
        nu = th.exp(self.nu_log.detach())
        theta = th.exp(self.theta_log.detach())
        # d lambda / d nu_log = -exp(nu_log) lambda; d gamma / d nu_log = r^2 exp(nu_log) / gamma.
        dlam_dnu = -nu * lam
        dgamma_dnu = th.exp(-2.0 * nu) * nu / gamma
        # gamma (W x) = drive, so d gamma / d nu_log * (W x) = drive * dgamma_dnu / gamma.
        a_nu = dlam_dnu * c_tilde + drive * (dgamma_dnu / gamma)
        # d lambda / d theta_log = i theta lambda.
        a_theta = (1j * theta * lam) * c_tilde
        a_w = gamma.to(lam.dtype).expand_as(c_tilde).contiguous()
        jacobian = lam * not_start.to(lam.dtype)
        return RTRLTerms(jacobian=jacobian, immediates=[(a_w, x.detach()), (a_nu, None), (a_theta, None)])

    def reference_scan(self, x: th.Tensor, c0: th.Tensor, episode_starts: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        The real two-state equations step by step with plain autograd ops (the ground truth of the tests).
        Same arguments and result as :meth:`forward`.
        """
        n = self.units
        not_start = (~episode_starts).to(x.dtype).unsqueeze(-1)
        r = th.exp(-th.exp(self.nu_log))
        theta = th.exp(self.theta_log)
        g, phi, gamma = r * th.cos(theta), r * th.sin(theta), th.sqrt(1.0 - r * r)
        w = self.input_weight()
        w1, w2 = w[..., 0], w[..., 1]
        pairs = c0.reshape(-1, n, 2)
        c1, c2 = pairs[..., 0], pairs[..., 1]
        hs = []
        for t in range(x.shape[0]):
            c1, c2 = c1 * not_start[t], c2 * not_start[t]
            c1, c2 = g * c1 - phi * c2 + gamma * (x[t] @ w1.T), g * c2 + phi * c1 + gamma * (x[t] @ w2.T)
            hs.append(th.stack([c1, c2], dim=-1).reshape(-1, 2 * n))
        h = th.stack(hs)
        h = F.relu(h) if self.activation == "relu" else h
        return h, th.stack([c1, c2], dim=-1).reshape(-1, 2 * n)


def _real_pairs(z: th.Tensor) -> th.Tensor:
    """
    ``(..., units)`` complex as ``(..., 2 units)`` reals, (real, imaginary) adjacent. A copy, not ``view_as_real``:
    the backward of that view needs a gradient at an even offset, and the gradient of a slice of a wider output (a
    MixedCell's) may start anywhere.
    """
    return th.stack([z.real, z.imag], dim=-1).flatten(-2)


# Up to this many complex states per step (batch * units), a training sequence runs as a log-depth scan on a CPU:
# there the loop's cost is the per-operation overhead of its 2 T small operations. Wider, the scan's O(T log T) work
# costs more than the loop saves (benchmarks/bench_rtu_scan.py). On a GPU every width runs as the scan.
SCAN_MAX_STATES = 256


def _linear_scan(a: th.Tensor, b: th.Tensor) -> th.Tensor:
    """
    ``y(t) = a(t) y(t-1) + b(t)`` from ``y(-1) = 0`` along dim 0, as a log-depth scan (Hillis-Steele): about
    ``4 log2(T)`` vectorized operations. Only products of the ``a`` (of modulus at most 1 here) are formed, never
    their inverses, so it is as stable as the loop.
    """
    steps, offset = b.shape[0], 1
    while offset < steps:
        b = th.cat([b[:offset], th.addcmul(b[offset:], a[offset:], b[:-offset])])
        if 2 * offset < steps:
            a = th.cat([a[:offset], a[offset:] * a[:-offset]])
        offset *= 2
    return b


def _linear_loop(a: th.Tensor, b: th.Tensor) -> th.Tensor:
    """What :func:`_linear_scan` computes, step by step into one preallocated buffer."""
    out = th.empty_like(b)
    y = th.zeros_like(b[0])
    for t in range(b.shape[0]):
        y = th.addcmul(b[t], a[t], y, out=out[t])
    return out


def linear_recurrence(a: th.Tensor, b: th.Tensor) -> th.Tensor:
    """
    ``y(t) = a(t) y(t-1) + b(t)`` from ``y(-1) = 0``: one CUDA kernel where it can run, else whichever of scan and loop
    is faster at this width.
    """
    if kernels.usable_for(b):
        from sb3_rtrl.cells.kernels import recurrence_ops

        return recurrence_ops.forward(a, b)
    return _linear_scan(a, b) if b[0].numel() <= SCAN_MAX_STATES or kernels.launch_bound(b) else _linear_loop(a, b)


def adjoint_recurrence(a: th.Tensor, e: th.Tensor) -> th.Tensor:
    """
    ``g(t) = e(t) + a(t+1) g(t+1)`` from ``g(T) = 0``, run backward in time: the gradient of :func:`linear_recurrence`'s
    ``b`` from the gradient ``e`` at its ``y`` (for a complex recurrence, given ``a``'s conjugate).
    """
    if kernels.usable_for(e):
        from sb3_rtrl.cells.kernels import recurrence_ops

        return recurrence_ops.adjoint(a, e)
    shifted = th.cat([th.zeros_like(a[:1]), a.flip(0)[:-1]])
    return linear_recurrence(shifted, e.flip(0)).flip(0)


def _recurrence_forward(drive: th.Tensor, lam: th.Tensor, c0: th.Tensor, not_start: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """
    ``c(t) = lambda * c~(t) + drive(t)`` with ``c~(t) = c(t-1)`` zeroed at episode starts.

    :return: ``c`` for all steps and ``c~`` for all steps, both ``(T, B, units)`` complex (detached)
    """
    drive, lam, c0 = drive.detach(), lam.detach(), c0.detach()
    a = lam * not_start.to(lam.dtype)  # (T, B, units): the step's Jacobian, zero at episode starts
    b = drive.clone()
    b[0] += a[0] * c0
    c_all = linear_recurrence(a, b)
    c_tilde = th.cat([c0.unsqueeze(0), c_all[:-1]]) * not_start
    return c_all, c_tilde


class _RTURecurrence(th.autograd.Function):
    """
    The RTU's linear recurrence with a hand-written backward: the drive's gradient ``dc(t) = e(t) + dc(t+1) *
    conj(lambda) * not_start(t+1)`` (autograd's convention for complex tensors) is itself a linear recurrence, run
    backward in time as the forward one is; lambda's gradient is ``sum dc * conj(c~)``. A few operations a step (or a
    few in all, as a scan) instead of autograd's graph over complex products.
    """

    @staticmethod
    def forward(ctx, drive, lam, c0, not_start):  # type: ignore[override]
        c_all, c_tilde = _recurrence_forward(drive, lam, c0, not_start)
        ctx.save_for_backward(lam, c_tilde, not_start)
        ctx.mark_non_differentiable(c_tilde)
        return c_all, c_tilde

    @staticmethod
    def backward(ctx, grad_c_all, _grad_c_tilde):  # type: ignore[override]
        lam, c_tilde, not_start = ctx.saved_tensors
        # The adjoint runs backward in time: dc(t) = e(t) + conj(a(t+1)) dc(t+1), a(t) = lambda * not_start(t).
        a_conj = lam.conj() * not_start.to(lam.dtype)
        grad_drive = adjoint_recurrence(a_conj, grad_c_all)
        carry = grad_drive[0] * a_conj[0]
        grad_lam = (grad_drive * c_tilde.conj()).sum((0, 1)) if ctx.needs_input_grad[1] else None
        return grad_drive, grad_lam, carry if ctx.needs_input_grad[2] else None, None
