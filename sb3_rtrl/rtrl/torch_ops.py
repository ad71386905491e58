"""The sensitivity algebra in plain PyTorch: the reference backend, which runs on any device."""

from __future__ import annotations

import torch as th

from sb3_rtrl.cells.base import RTRLTerms, SensitivityKind


def _tiled(vec: th.Tensor, k: int) -> th.Tensor:
    """``(..., N)`` -> ``(..., K*N)``, repeating the state dimension once per parameter block."""
    return vec.repeat(*([1] * (vec.dim() - 1)), k)


def reverse_products(jacobian: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """
    Products of the masked Jacobians over a segment.

    :param jacobian: ``(M, B, N)`` masked diagonal Jacobians Jh(1..M)
    :return: ``P = prod_t Jh(t)`` of shape ``(B, N)`` and ``Q`` of shape ``(M, B, N)`` with
        ``Q(s) = prod_{r > s} Jh(r)`` (so ``Q(M) = 1``)
    """
    # A loop of small products: cumprod over a flipped time axis is ten times slower on CPU.
    steps = jacobian.shape[0]
    q = th.empty_like(jacobian)
    q[steps - 1] = 1.0
    for t in range(steps - 2, -1, -1):
        th.mul(q[t + 1], jacobian[t + 1], out=q[t])
    return q[0] * jacobian[0], q


def _outputs(sensitivities: tuple[th.Tensor, ...], out: tuple[th.Tensor, ...] | None) -> tuple[th.Tensor, ...]:
    return tuple(th.empty_like(s) for s in sensitivities) if out is None else out


def segment_advance(
    kinds: tuple[SensitivityKind, ...],
    sensitivities: tuple[th.Tensor, ...],
    terms: RTRLTerms,
    out: tuple[th.Tensor, ...] | None = None,
) -> tuple[th.Tensor, ...]:
    """
    ``S(M) = P * S(0) + sum_s (Q(s) * a(s)) (outer) v(s)``, once per segment.

    :param kinds: ``"outer"`` or ``"diag"`` per sensitivity
    :param sensitivities: ``S(0)`` per RTRL parameter, ``(B, K*N, D)`` or ``(B, K*N)``
    :param terms: the segment's per-step quantities
    :param out: tensors to write ``S(M)`` into (not sharing memory with ``sensitivities``); new ones if None
    :return: ``S(M)`` per RTRL parameter
    """
    p, q = reverse_products(terms.jacobian)
    m, b, n = q.shape
    outs = _outputs(sensitivities, out)
    for kind, s0, s_new, (a, v) in zip(kinds, sensitivities, outs, terms.immediates):
        k = a.shape[-1] // n
        qa = (a.view(m, b, k, n) * q.unsqueeze(2)).view(m, b, k * n)
        if kind == "outer":
            # Per sequence an (K*N x M) by (M x D) matrix product.
            th.bmm(qa.permute(1, 2, 0), v.permute(1, 0, 2), out=s_new)
            s_new.view(b, k, n, -1).addcmul_(s0.view(b, k, n, -1), p.view(b, 1, n, 1))
        else:
            th.sum(qa if v is None else qa * v, dim=0, out=s_new)
            s_new.view(b, k, n).addcmul_(s0.view(b, k, n), p.view(b, 1, n))
    return outs


def step_advance(
    kinds: tuple[SensitivityKind, ...],
    sensitivities: tuple[th.Tensor, ...],
    terms: RTRLTerms,
    out: tuple[th.Tensor, ...] | None = None,
) -> tuple[th.Tensor, ...]:
    """
    The paper's per-step recursion ``S <- Jh * S + a (outer) v``, step by step (the reference).

    Same arguments and result as :func:`segment_advance`.
    """
    jac = terms.jacobian
    m, b, n = jac.shape
    outs = _outputs(sensitivities, out)
    for kind, s0, s, (a, v) in zip(kinds, sensitivities, outs, terms.immediates):
        k = a.shape[-1] // n
        s.copy_(s0)
        for t in range(m):
            if kind == "outer":
                s.view(b, k, n, -1).mul_(jac[t].view(b, 1, n, 1))
                s.baddbmm_(a[t].unsqueeze(2), v[t].unsqueeze(1))
            else:
                s.view(b, k, n).mul_(jac[t].view(b, 1, n))
                s.add_(a[t] if v is None else a[t] * v[t])
    return outs


def inject(kinds: tuple[SensitivityKind, ...], sensitivities: tuple[th.Tensor, ...], grad_c0: th.Tensor) -> list[th.Tensor]:
    """
    The gradient through the carried state: ``sum_b dL/dc(0)[b] . S(0)[b]`` per RTRL parameter.

    :param kinds: ``"outer"`` or ``"diag"`` per sensitivity
    :param sensitivities: ``S(0)`` per RTRL parameter
    :param grad_c0: ``(B, N)`` gradient of the loss with respect to the segment's initial state
    :return: one gradient per RTRL parameter, of the parameter's shape
    """
    n = grad_c0.shape[1]
    grads = []
    for kind, s0 in zip(kinds, sensitivities):
        g = _tiled(grad_c0, s0.shape[1] // n)
        if kind == "outer":
            # One read of S(0) into a small accumulator that stays in cache: faster on CPU than a
            # batched vector-matrix product or einsum, and no temporary of S's size.
            grad = th.zeros_like(s0[0])
            for b in range(s0.shape[0]):
                grad.addcmul_(g[b].unsqueeze(1), s0[b])
            grads.append(grad)
        else:
            grads.append((g * s0).sum(0))
    return grads
