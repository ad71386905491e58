"""The sensitivity backend on CUDA: the matrix-sensitivity work in CuPy raw kernels, the rest in torch."""

from __future__ import annotations

from functools import partial

import torch as th

from sb3_rtrl.cells.kernels.launch import launch
from sb3_rtrl.rtrl import torch_ops
from sb3_rtrl.rtrl.kernels import KERNEL_DIR

SOURCE = KERNEL_DIR / "sensitivity.cu"
TILE = 64  # must match sensitivity.cu
THREADS = 16


def _tile_grid(b: int, r: int, d: int) -> tuple[int, int, int]:
    return ((d + TILE - 1) // TILE, (r + TILE - 1) // TILE, b)


def _advance(name: str, s0: th.Tensor, per_state: th.Tensor, a: th.Tensor, v: th.Tensor, out: th.Tensor) -> None:
    """Launch an advance kernel; ``per_state`` is P ``(B, N)`` for the segment kernel, Jh ``(M, B, N)`` for the step one."""
    b, r, d = s0.shape
    m, n = a.shape[0], per_state.shape[-1]
    per_state, a, v = per_state.contiguous(), a.contiguous(), v.contiguous()
    launch(SOURCE, name, _tile_grid(b, r, d), (THREADS, THREADS), (s0, per_state, a, v, out), b, r, n, d, m)


def outer_segment(s0: th.Tensor, p: th.Tensor, qa: th.Tensor, v: th.Tensor, out: th.Tensor) -> None:
    _advance("segment_advance", s0, p, qa, v, out)


def outer_step(s0: th.Tensor, jac: th.Tensor, a: th.Tensor, v: th.Tensor, out: th.Tensor) -> None:
    _advance("step_advance", s0, jac, a, v, out)


def outer_inject(s0: th.Tensor, g: th.Tensor) -> th.Tensor:
    b, r, d = s0.shape
    n = g.shape[1]
    grad = th.empty(r, d, dtype=s0.dtype, device=s0.device)
    threads = 256
    blocks = min((r * d + threads - 1) // threads, 65_535)
    launch(SOURCE, "inject", (blocks,), (threads,), (s0, g.contiguous(), grad), b, r, n, d)
    return grad


# The segment advance is a batched matrix product plus a multiply-add, which cuBLAS does faster than outer_segment;
# the injection as torch's one multiply-sum over the sequences (torch_ops takes it on a GPU) also beats the inject
# kernel. The step advance (M products in one launch) is the kernels' (docs/benchmarks.md). outer_segment and
# outer_inject stay, tested and benchmarked.
CUPY_OUTER = torch_ops.OuterOps(segment=torch_ops.TORCH_OUTER.segment, step=outer_step, inject=torch_ops.TORCH_OUTER.inject)
segment_advance = partial(torch_ops.segment_advance, outer=CUPY_OUTER)
step_advance = partial(torch_ops.step_advance, outer=CUPY_OUTER)
inject = partial(torch_ops.inject, outer=CUPY_OUTER)
