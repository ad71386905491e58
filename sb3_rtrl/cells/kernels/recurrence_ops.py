"""
The RTU's and gated units' diagonal linear recurrence over a segment, and its adjoint, as one CUDA kernel launch each
(linear_recurrence.cu) instead of a log-depth scan of a few dozen.
"""

from __future__ import annotations

import torch as th

from sb3_rtrl.cells.kernels import KERNEL_DIR
from sb3_rtrl.cells.kernels.launch import launch

SOURCE = KERNEL_DIR / "linear_recurrence.cu"
THREADS = 128
MAX_BLOCKS = 65_535


def _run(a: th.Tensor, b: th.Tensor, adjoint: bool) -> th.Tensor:
    steps = b.shape[0]
    width = b[0].numel()
    is_complex = b.is_complex()
    # A conjugated view (the adjoint's conj(lambda)) is resolved first: the kernel reads plain (real, imaginary) pairs.
    a = a.detach().resolve_conj().expand_as(b).contiguous()
    b = b.detach().resolve_conj().contiguous()
    y = th.empty_like(b)
    reals = [th.view_as_real(t) for t in (a, b, y)] if is_complex else [a, b, y]
    grid = (max(1, min((width + THREADS - 1) // THREADS, MAX_BLOCKS)),)
    launch(SOURCE, "linear_recurrence", grid, (THREADS,), reals, steps, width, int(is_complex), int(adjoint))
    return y


def forward(a: th.Tensor, b: th.Tensor) -> th.Tensor:
    """``y(t) = a(t) y(t-1) + b(t)`` from ``y(-1) = 0`` along dim 0 (real or complex, ``a`` broadcast to ``b``'s shape)."""
    return _run(a, b, adjoint=False)


def adjoint(a: th.Tensor, e: th.Tensor) -> th.Tensor:
    """
    ``g(t) = e(t) + a(t+1) g(t+1)`` from ``g(T) = 0`` along dim 0: the gradient at :func:`forward`'s ``b`` from the
    gradient ``e`` at its ``y``, given ``a`` (for a complex recurrence, ``a``'s conjugate).
    """
    return _run(a, e, adjoint=True)
