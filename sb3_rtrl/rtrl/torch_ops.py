"""The sensitivity algebra in plain PyTorch: the reference backend, which runs on any device.

The work on the large ``(B, K*N, D)`` sensitivities of matrix parameters goes through an
:class:`OuterOps` triple, which the CUDA backend replaces with kernels; the small vector sensitivities
and the Jacobian products are computed here for every backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch as th

from sb3_rtrl.cells import kernels as cell_kernels
from sb3_rtrl.cells.base import RTRLTerms, SensitivityKind


class OuterOps(NamedTuple):
    """
    The three operations on one ``(B, R, D)`` sensitivity of a matrix parameter (R = K*N).

    - ``segment(s0, p, qa, v, out)``: ``out = p[:, r % N] * s0 + sum_t qa[t] (outer) v[t]``
    - ``step(s0, jac, a, v, out)``: ``out = s0``, then for each t ``out = jac[t][:, r % N] * out + a[t] (outer) v[t]``
    - ``inject(s0, g) -> grad``: ``grad[r, d] = sum_b g[b, r % N] * s0[b, r, d]``

    with ``p``, ``g`` of shape ``(B, N)``, ``jac`` ``(M, B, N)``, ``qa``, ``a`` ``(M, B, R)`` and ``v`` ``(M, B, D)``.
    """

    segment: Callable[[th.Tensor, th.Tensor, th.Tensor, th.Tensor, th.Tensor], None]
    step: Callable[[th.Tensor, th.Tensor, th.Tensor, th.Tensor, th.Tensor], None]
    inject: Callable[[th.Tensor, th.Tensor], th.Tensor]


def _tiled(vec: th.Tensor, k: int) -> th.Tensor:
    """``(..., N)`` -> ``(..., K*N)``, repeating the state dimension once per parameter block."""
    return vec.repeat(*([1] * (vec.dim() - 1)), k)


def _outer_segment(s0: th.Tensor, p: th.Tensor, qa: th.Tensor, v: th.Tensor, out: th.Tensor) -> None:
    b, r, _ = s0.shape
    v = v.to(qa.dtype)  # real inputs of a complex cell
    n = p.shape[1]
    if qa.shape[0] == 1:
        # One step (fully online learning): a broadcast outer product; bmm over an inner dimension of 1 is slower.
        th.mul(qa[0].unsqueeze(2), v[0].unsqueeze(1), out=out)
    else:
        # Per sequence an (R x M) by (M x D) matrix product.
        th.bmm(qa.permute(1, 2, 0), v.permute(1, 0, 2), out=out)
    # The decayed carry-over.
    out.view(b, r // n, n, -1).addcmul_(s0.view(b, r // n, n, -1), p.view(b, 1, n, 1))


def _outer_step(s0: th.Tensor, jac: th.Tensor, a: th.Tensor, v: th.Tensor, out: th.Tensor) -> None:
    b, r, _ = s0.shape
    n = jac.shape[2]
    v = v.to(a.dtype)
    out.copy_(s0)
    for t in range(jac.shape[0]):
        out.view(b, r // n, n, -1).mul_(jac[t].view(b, 1, n, 1))
        out.baddbmm_(a[t].unsqueeze(2), v[t].unsqueeze(1))


_SMALL_SLICE = 16384  # elements of one sequence's sensitivity up to which injection is one multiply-sum


def _outer_inject(s0: th.Tensor, g: th.Tensor) -> th.Tensor:
    b, r, d = s0.shape
    n = g.shape[1]
    # Complex sensitivities (the RTU): the gradient is sum_b g conj(S); conj is a no-op for real ones.
    if s0[0].numel() <= _SMALL_SLICE or cell_kernels.launch_bound(s0):
        # Few inputs (e.g. the copy task), or a GPU: B calls would cost more than the arithmetic and the temporary.
        return (s0.conj().view(b, r // n, n, d) * g.view(b, 1, n, 1)).sum(0).view(r, d)
    g = _tiled(g, r // n)
    # One read of S(0) into a small accumulator that stays in cache: faster on CPU than a batched
    # vector-matrix product or einsum, and no temporary of S's size.
    grad = th.zeros(r, d, dtype=s0.dtype, device=s0.device)
    for i in range(b):
        grad.addcmul_(g[i].unsqueeze(1), s0[i].conj())
    return grad


TORCH_OUTER = OuterOps(segment=_outer_segment, step=_outer_step, inject=_outer_inject)


def _outer_ops(outer: OuterOps, s0: th.Tensor) -> OuterOps:
    """The backend's operations for a real sensitivity; torch's complex ones (any device) for a complex one."""
    return TORCH_OUTER if s0.is_complex() else outer


def reverse_products(jacobian: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """
    Products of the masked Jacobians over a segment.

    :param jacobian: ``(M, B, N)`` masked diagonal Jacobians Jh(1..M)
    :return: ``P = prod_t Jh(t)`` of shape ``(B, N)`` and ``Q`` of shape ``(M, B, N)`` with
        ``Q(s) = prod_{r > s} Jh(r)`` (so ``Q(M) = 1``)
    """
    steps = jacobian.shape[0]
    q = th.empty_like(jacobian)
    q[steps - 1] = 1.0
    if cell_kernels.launch_bound(jacobian):
        # One scan instead of M launches; the products associate in another order (rounding apart).
        q[:-1] = th.cumprod(jacobian[1:].flip(0), dim=0).flip(0)
        return q[0] * jacobian[0], q
    # A loop of small products: cumprod over a flipped time axis is ten times slower on CPU.
    for t in range(steps - 2, -1, -1):
        th.mul(q[t + 1], jacobian[t + 1], out=q[t])
    return q[0] * jacobian[0], q


def _times_partner(a: th.Tensor, v: th.Tensor, k: int, n: int) -> th.Tensor:
    """``a * v`` for a diag sensitivity; ``v`` of width N is shared by the K blocks of ``a`` (width K*N)."""
    if v.shape[-1] == a.shape[-1]:
        return a * v
    lead = a.shape[:-1]
    return (a.view(*lead, k, n) * v.unsqueeze(-2)).view(*lead, k * n)


def _outputs(sensitivities: tuple[th.Tensor, ...], out: tuple[th.Tensor, ...] | None) -> tuple[th.Tensor, ...]:
    return tuple(th.empty_like(s) for s in sensitivities) if out is None else out


def segment_advance(
    kinds: tuple[SensitivityKind, ...],
    sensitivities: tuple[th.Tensor, ...],
    terms: RTRLTerms,
    out: tuple[th.Tensor, ...] | None = None,
    outer: OuterOps = TORCH_OUTER,
) -> tuple[th.Tensor, ...]:
    """
    ``S(M) = P * S(0) + sum_s (Q(s) * a(s)) (outer) v(s)``, once per segment.

    :param kinds: ``"outer"`` or ``"diag"`` per sensitivity
    :param sensitivities: ``S(0)`` per RTRL parameter, ``(B, K*N, D)`` or ``(B, K*N)``
    :param terms: the segment's per-step quantities
    :param out: tensors to write ``S(M)`` into (not sharing memory with ``sensitivities``); new ones if None
    :param outer: the implementation of the work on matrix sensitivities
    :return: ``S(M)`` per RTRL parameter
    """
    p, q = reverse_products(terms.jacobian)
    m, b, n = q.shape
    outs = _outputs(sensitivities, out)
    qa_of: dict[int, th.Tensor] = {}  # cells share one ``a`` between parameters: Q * a once per tensor
    for kind, s0, s_new, (a, v) in zip(kinds, sensitivities, outs, terms.immediates):
        k = a.shape[-1] // n
        if id(a) not in qa_of:
            qa_of[id(a)] = (a.view(m, b, k, n) * q.unsqueeze(2)).view(m, b, k * n)
        qa = qa_of[id(a)]
        if kind == "outer":
            assert v is not None, "an outer sensitivity needs its input vector"
            _outer_ops(outer, s0).segment(s0, p, qa, v, s_new)
        else:
            th.sum(qa if v is None else _times_partner(qa, v, k, n), dim=0, out=s_new)
            s_new.view(b, k, n).addcmul_(s0.view(b, k, n), p.view(b, 1, n))
    return outs


def step_advance(
    kinds: tuple[SensitivityKind, ...],
    sensitivities: tuple[th.Tensor, ...],
    terms: RTRLTerms,
    out: tuple[th.Tensor, ...] | None = None,
    outer: OuterOps = TORCH_OUTER,
) -> tuple[th.Tensor, ...]:
    """
    The paper's per-step recursion ``S <- Jh * S + a (outer) v``, step by step (the reference).

    Same arguments and result as :func:`segment_advance`.
    """
    jac = terms.jacobian
    m, b, n = jac.shape
    outs = _outputs(sensitivities, out)
    for kind, s0, s, (a, v) in zip(kinds, sensitivities, outs, terms.immediates):
        if kind == "outer":
            assert v is not None, "an outer sensitivity needs its input vector"
            _outer_ops(outer, s0).step(s0, jac, a, v, s)
            continue
        k = a.shape[-1] // n
        s.copy_(s0)
        for t in range(m):
            s.view(b, k, n).mul_(jac[t].view(b, 1, n))
            s.add_(a[t] if v is None else _times_partner(a[t], v[t], k, n))
    return outs


def inject(
    kinds: tuple[SensitivityKind, ...],
    sensitivities: tuple[th.Tensor, ...],
    grad_c0: th.Tensor,
    outer: OuterOps = TORCH_OUTER,
) -> list[th.Tensor]:
    """
    The gradient through the carried state: ``sum_b dL/dc(0)[b] . S(0)[b]`` per RTRL parameter.

    :param kinds: ``"outer"`` or ``"diag"`` per sensitivity
    :param sensitivities: ``S(0)`` per RTRL parameter
    :param grad_c0: ``(B, N)`` gradient of the loss with respect to the segment's initial state
    :param outer: the implementation of the work on matrix sensitivities
    :return: one gradient per RTRL parameter, of the parameter's shape
    """
    n = grad_c0.shape[1]
    # For complex sensitivities (the RTU) the sums are of g conj(S); conj is a no-op for real ones.
    return [
        _outer_ops(outer, s0).inject(s0, grad_c0)
        if kind == "outer"
        else (_tiled(grad_c0, s0.shape[1] // n) * s0.conj()).sum(0)
        for kind, s0 in zip(kinds, sensitivities)
    ]
