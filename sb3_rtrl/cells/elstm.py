"""The element-wise LSTM (eLSTM) of Irie et al. (ICLR 2024)."""

from __future__ import annotations

import math
from typing import Any

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
    masked_weight,
)


class ELSTMCell(ElementwiseRecurrentCell):
    """
    Element-wise LSTM: an LSTM whose recurrent weights are vectors, so exact RTRL costs O(N * D).

    ::

        z(t) = tanh(Z x(t) + w_z * c(t-1) + b_z)
        f(t) = sigmoid(F x(t) + w_f * c(t-1) + b_f)
        c(t) = f(t) * c(t-1) + (1 - f(t)) * z(t)
        h(t) = s * sigmoid(W_o [x(t); c(t)] + b_o) * c(t)

    with ``s`` the fixed ``output_scale`` (1 in the paper).

    :param input_size: D, the size of x
    :param state_size: N, the size of c and h (all groups together)
    :param init_std: standard deviation of the normal init of ``weight_hh`` and ``bias``, and of ``weight_ih``
        unless ``input_init_std`` is given (0.1 in the paper)
    :param input_init_std: standard deviation of ``weight_ih``'s init; None: ``init_std``
    :param forget_bias: added to the forget-gate bias at init; a positive value makes the memory last
        longer at the start of training (``sigmoid(3) = 0.95``), which decides whether long delays can
        be learned at all. A pair ``(low, high)`` spreads it evenly over the units, from fast units that
        follow the input to slow ones that keep it
    :param groups: independent groups of units (``state_size`` must divide into them): the output gate of a
        unit reads the cell state of its own group only, and a forget-bias spread is laid over each group. The
        recurrence is element-wise already, so two groups are exactly two cells on the same input (an actor's
        and a critic's), run and trained by RTRL as one
    :param input_mask: ``(groups, input_size)`` bool, which inputs each group reads (its input projection and
        output gate weigh the others by zero); None: every group reads every input. Two groups that read
        different features are exactly two cells on their own inputs
    :param device: device of the parameters
    :param dtype: dtype of the parameters
    :param output_scale: ``s``, a fixed factor on the output, outside the recurrence (RTRL does not see it). A unit
        writes ``1 - f`` of its input a step, so its output varies far less than that of a unit that keeps its input's
        scale (the RTU's), beside which the heads learn from it slowly. A pair ``(low, high)`` spreads it evenly over
        each group's units in the order of a ``forget_bias`` spread: ``low`` on the fast units, ``high`` on the slow
    """

    output_scales: th.Tensor

    out_gate_mask: th.Tensor
    weight_ih_mask: th.Tensor

    rtrl_specs = (
        SensitivitySpec("weight_ih", "outer"),  # [Z; F]
        SensitivitySpec("weight_hh", "diag"),  # [w_z; w_f]
        SensitivitySpec("bias", "diag"),  # [b_z; b_f]
    )

    def __init__(
        self,
        input_size: int,
        state_size: int,
        init_std: float = 0.1,
        forget_bias: float | tuple[float, float] = 0.0,
        input_init_std: float | None = None,
        groups: int = 1,
        input_mask: th.Tensor | None = None,
        device: th.device | str | None = None,
        dtype: th.dtype | None = None,
        output_scale: float | tuple[float, float] = 1.0,
    ) -> None:
        super().__init__()
        if input_size < 1 or state_size < 1:
            raise ValueError(f"ELSTMCell needs input_size >= 1 and state_size >= 1, got {input_size} and {state_size}")
        if groups < 1 or state_size % groups:
            raise ValueError(f"ELSTMCell: groups={groups} must be >= 1 and divide state_size={state_size}")
        biases = forget_bias if isinstance(forget_bias, (tuple, list)) else (forget_bias,)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (init_std, *biases)) or init_std < 0:
            raise ValueError(f"ELSTMCell needs init_std >= 0 and finite forget_bias, got {init_std!r} and {forget_bias!r}")
        pair = isinstance(output_scale, (tuple, list))
        scales: tuple[Any, ...] = tuple(output_scale) if isinstance(output_scale, (tuple, list)) else (output_scale,)
        if len(scales) != (2 if pair else 1) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < math.inf for v in scales
        ):
            raise ValueError(f"ELSTMCell: output_scale must be a finite number > 0 or a pair of them, got {output_scale!r}")
        low, high = float(scales[0]), float(scales[-1])
        self.input_size = input_size
        self.state_size = state_size
        self.init_std = init_std
        self.forget_bias = forget_bias
        self.output_scale: float | tuple[float, float] = (low, high) if pair else low
        self.input_init_std = init_std if input_init_std is None else input_init_std
        self.weight_ih = nn.Parameter(th.empty(2 * state_size, input_size, device=device, dtype=dtype))
        self.weight_hh = nn.Parameter(th.empty(2 * state_size, device=device, dtype=dtype))
        self.bias = nn.Parameter(th.empty(2 * state_size, device=device, dtype=dtype))
        self.out_gate = nn.Linear(input_size + state_size, state_size, device=device, dtype=dtype)
        self.groups = groups
        self.masked_input = input_mask is not None
        if input_mask is not None:
            check_input_mask("ELSTMCell", input_mask, groups, input_size)
        if groups > 1 or input_mask is not None:
            # Which columns of the output gate each unit reads: its group's inputs and its group's cell state
            # (block diagonal).
            group = th.arange(state_size, device=device) // (state_size // groups)
            mask = th.ones(state_size, input_size + state_size, device=device, dtype=dtype)
            mask[:, input_size:] = (group[:, None] == group[None, :]).to(mask.dtype)
            if input_mask is not None:
                reads = input_mask.to(device=device)[group].to(mask.dtype)  # (N, D)
                mask[:, :input_size] = reads
                # [Z; F]: both projections of a unit read its group's inputs.
                self.register_buffer("weight_ih_mask", reads.repeat(2, 1), persistent=False)
            self.register_buffer("out_gate_mask", mask, persistent=False)
        # The masked weights as acting reads them: the output gate's product (N by D + N) costs as much as the step's
        # other operations together, and the weights change only once an update.
        self._out_gate_cache: ParameterCache[th.Tensor] = ParameterCache()
        self._input_cache: ParameterCache[th.Tensor] = ParameterCache()
        # Each unit's output factor, derived from output_scale (not saved: the keyword is).
        spread = th.linspace(low, high, state_size // groups, device=device, dtype=dtype).repeat(groups)
        self.register_buffer("output_scales", spread, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Normal(0, init_std) for the recurrent part (paper), PyTorch's default for the output gate."""
        nn.init.normal_(self.weight_ih, 0.0, self.input_init_std)
        for p in (self.weight_hh, self.bias):
            nn.init.normal_(p, 0.0, self.init_std)
        with th.no_grad():
            if isinstance(self.forget_bias, (tuple, list)):
                low, high = self.forget_bias
                spread = th.linspace(low, high, self.state_size // self.groups, dtype=self.bias.dtype)
                self.bias[self.state_size :] += spread.repeat(self.groups).to(self.bias.device)
            else:
                self.bias[self.state_size :] += self.forget_bias
        self.out_gate.reset_parameters()

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.state_size}, init_std={self.init_std}, input_init_std={self.input_init_std:.3g}, "
            f"forget_bias={self.forget_bias}"
            + (f", output_scale={self.output_scale}" if self.output_scale != 1.0 else "")
            + (f", groups={self.groups}" if self.groups > 1 else "")
            + (", masked input" if self.masked_input else "")
        )

    def input_weight(self) -> th.Tensor:
        """``weight_ih`` as used: with an input mask, a unit's weights on its group's unread inputs are zero."""
        return masked_weight(self.weight_ih, self.weight_ih_mask if self.masked_input else None, self._input_cache)

    def rtrl_tensors(self) -> list[th.Tensor]:
        return [self.input_weight(), self.weight_hh, self.bias]

    def scan(
        self, x: th.Tensor, c0: th.Tensor, episode_starts: th.Tensor, need_terms: bool = False
    ) -> tuple[th.Tensor, th.Tensor, RTRLTerms | None]:
        not_start = (~episode_starts).to(x.dtype).unsqueeze(-1)  # (T, B, 1)
        # The input projections of all steps in one matrix product; the recurrence is element-wise only.
        u = F.linear(x, self.input_weight(), self.bias)
        if th.is_grad_enabled() or need_terms:
            c_all, a, jacobian, c_tilde = _ELSTMRecurrence.apply(u, self.weight_hh, c0, not_start)
        else:
            c_all, a, jacobian, c_tilde = _recurrence_forward(u, self.weight_hh, c0, not_start, need_terms=False)
        h = self._output(x, c_all)
        terms = None
        if need_terms:
            # dc_i / dw_z[i] = zh_i * c~_i and dc_i / dw_f[i] = fh_i * c~_i: c~ is shared by both blocks.
            terms = RTRLTerms(jacobian=jacobian, immediates=[(a, x.detach()), (a, c_tilde), (a, None)])
        return h, c_all[-1], terms

    def _output(self, x: th.Tensor, c_all: th.Tensor) -> th.Tensor:
        """``h = s * sigmoid(W_o [x; c] + b_o) * c``."""
        # One product on the concatenation: faster than two on split weights when acting (the split
        # weight views cost more than the copy of [x; c]), and as fast at the paper's training shapes.
        gate = th.sigmoid(F.linear(th.cat([x, c_all], dim=-1), self.out_gate_weight(), self.out_gate.bias))
        # A scale of 1 skips the product: one operation fewer a call, and the outputs are the same (a product by 1 is exact).
        return gate * c_all if self.output_scale == 1.0 else gate * (self.output_scales * c_all)

    def out_gate_weight(self) -> th.Tensor:
        """
        The output gate's weight as used: with groups, a unit's weights on other groups' state (and, with an
        input mask, on its group's unread inputs) are zero.
        """
        mask = self.out_gate_mask if self.groups > 1 or self.masked_input else None
        return masked_weight(self.out_gate.weight, mask, self._out_gate_cache)

    def reference_scan(self, x: th.Tensor, c0: th.Tensor, episode_starts: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        The paper's equations step by step with plain autograd ops: the ground truth the tests compare
        the fast recurrence and RTRL against. Same arguments and result as :meth:`forward`.
        """
        n = self.state_size
        not_start = (~episode_starts).to(x.dtype).unsqueeze(-1)
        w_z, w_f = self.weight_hh.split(n)
        z_w, f_w = self.input_weight().split(n)
        b_z, b_f = self.bias.split(n)
        c, cs = c0, []
        for t in range(x.shape[0]):
            c_tilde = c * not_start[t]
            z = th.tanh(x[t] @ z_w.T + w_z * c_tilde + b_z)
            f = th.sigmoid(x[t] @ f_w.T + w_f * c_tilde + b_f)
            c = f * c_tilde + (1 - f) * z
            cs.append(c)
        c_all = th.stack(cs)
        o = th.sigmoid(th.cat([x, c_all], dim=-1) @ self.out_gate_weight().T + self.out_gate.bias)
        return self.output_scales * o * c_all, c


def _recurrence_forward(
    u: th.Tensor, weight_hh: th.Tensor, c0: th.Tensor, not_start: th.Tensor, need_terms: bool
) -> tuple[th.Tensor, th.Tensor | None, th.Tensor | None, th.Tensor]:
    """
    The element-wise recurrence over a segment, written into preallocated buffers (no autograd).

    :param u: ``(T, B, 2N)`` input pre-activations ``[Z x + b_z; F x + b_f]``
    :param weight_hh: ``(2N,)`` recurrent weights ``[w_z; w_f]``
    :param c0: ``(B, N)`` initial state
    :param not_start: ``(T, B, 1)`` zero where an episode starts, else one
    :param need_terms: also compute ``a = [zh; fh]`` (``zh = (1 - f)(1 - z^2)``, ``fh = (c~ - z) f (1 - f)``) and
        the masked Jacobian ``f + w_z zh + w_f fh``
    :return: ``c`` for all steps ``(T, B, N)``, ``a`` ``(T, B, 2N)`` or None, Jacobian ``(T, B, N)`` or None,
        and ``c~`` (the previous state after resets) ``(T, B, N)``
    """
    u, weight_hh, c0 = u.detach(), weight_hh.detach(), c0.detach()
    steps, batch, n2 = u.shape
    n = n2 // 2
    w_z, w_f = weight_hh[:n], weight_hh[n:]
    if steps == 1 and not need_terms:
        # Acting: one step, no buffers to fill.
        ct = c0 * not_start[0]
        z = th.addcmul(u[0, :, :n], w_z, ct).tanh_()
        f = th.addcmul(u[0, :, n:], w_f, ct).sigmoid_()
        return th.lerp(z, ct, f).unsqueeze(0), None, None, ct.unsqueeze(0)
    if kernels.usable_for(u):
        # On a GPU the loop below is a few kernel launches a step; one thread per unit runs all the steps instead.
        from sb3_rtrl.cells.kernels import elstm_ops

        return elstm_ops.forward(u, weight_hh, c0, not_start, need_terms)
    gates = th.empty_like(u)  # [z; f]
    c_all = u.new_empty(steps, batch, n)
    # Per-step views made once (one call each, not a few slicing calls a step): the loop is the cost of a training
    # sequence, and most of it is per-call overhead at these sizes.
    u_z, u_f = u[..., :n].unbind(0), u[..., n:].unbind(0)
    z_all, f_all = gates[..., :n].unbind(0), gates[..., n:].unbind(0)
    c_steps, masks = c_all.unbind(0), not_start.unbind(0)
    resets = (not_start == 0).any(dim=2).any(dim=1).tolist()
    c = c0
    for t in range(steps):
        ct = c * masks[t] if resets[t] else c  # c~: the state after this step's resets
        z = th.addcmul(u_z[t], w_z, ct, out=z_all[t]).tanh_()
        f = th.addcmul(u_f[t], w_f, ct, out=f_all[t]).sigmoid_()
        c = th.lerp(z, ct, f, out=c_steps[t])  # z + f * (c~ - z) = f * c~ + (1 - f) * z
    c_tilde = th.cat([c0.unsqueeze(0), c_all[:-1]]) * not_start
    if not need_terms:
        return c_all, None, None, c_tilde
    z, f = gates[..., :n], gates[..., n:]
    one_minus_f = 1.0 - f
    zh = one_minus_f * (1.0 - z * z)  # dc / d(z pre-activation)
    fh = (c_tilde - z) * f * one_minus_f  # dc / d(f pre-activation)
    jacobian = (f + w_z * zh + w_f * fh).mul_(not_start)  # dc(t) / dc(t-1)
    return c_all, th.cat([zh, fh], dim=-1), jacobian, c_tilde


class _ELSTMRecurrence(th.autograd.Function):
    """
    The eLSTM recurrence with a hand-written backward built from the RTRL terms.

    Backward, with e(t) the gradient arriving at c(t) from outside the recurrence:
    ``dc = e(t) + carry; du(t) = dc * [zh; fh]; carry = dc * Jh(t)``, three element-wise operations a step
    instead of autograd's graph of a dozen; the terms it uses are the ones RTRL needs anyway.
    """

    @staticmethod
    def forward(ctx, u, weight_hh, c0, not_start):  # type: ignore[override]
        c_all, a, jacobian, c_tilde = _recurrence_forward(u, weight_hh, c0, not_start, need_terms=True)
        ctx.save_for_backward(a, jacobian, c_tilde)
        ctx.mark_non_differentiable(a, jacobian, c_tilde)
        return c_all, a, jacobian, c_tilde

    @staticmethod
    def backward(ctx, grad_c_all, _grad_a, _grad_jacobian, _grad_c_tilde):  # type: ignore[override]
        a, jacobian, c_tilde = ctx.saved_tensors
        if kernels.usable_for(a):
            from sb3_rtrl.cells.kernels import elstm_ops

            grad_u, carry = elstm_ops.backward(a, jacobian, grad_c_all)
        else:
            grad_u, carry = _recurrence_backward(a, jacobian, grad_c_all)
        grad_weight_hh = None
        if ctx.needs_input_grad[1]:
            # dL/d[w_z; w_f] = sum over steps and sequences of grad_u * c~ (c~ shared by both blocks).
            steps, batch, n = c_tilde.shape
            grad_weight_hh = (grad_u.view(steps, batch, 2, n) * c_tilde.unsqueeze(2)).sum((0, 1)).view(2 * n)
        return grad_u, grad_weight_hh, carry if ctx.needs_input_grad[2] else None, None


def _recurrence_backward(a: th.Tensor, jacobian: th.Tensor, grad_c_all: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """The adjoint of the recurrence step by step: ``grad_u`` ``(T, B, 2N)`` and the gradient at ``c0`` ``(B, N)``."""
    steps, batch, n = jacobian.shape
    grad_u = th.empty_like(a)
    carry = th.zeros_like(grad_c_all[0])
    # Views made once; carry is updated in place, so its (B, 1, N) view follows it.
    carry_pairs = carry.unsqueeze(1)
    a_steps, grad_u_steps = a.view(steps, batch, 2, n).unbind(0), grad_u.view(steps, batch, 2, n).unbind(0)
    grads, jacobians = grad_c_all.unbind(0), jacobian.unbind(0)
    for t in range(steps - 1, -1, -1):
        carry.add_(grads[t])
        th.mul(a_steps[t], carry_pairs, out=grad_u_steps[t])
        carry.mul_(jacobians[t])
    return grad_u, carry
