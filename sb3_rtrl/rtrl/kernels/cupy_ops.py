"""The sensitivity backend on CUDA: the matrix-sensitivity work in CuPy raw kernels, the rest in torch."""

from __future__ import annotations

from functools import partial

import cupy
import numpy as np
import torch as th

from sb3_rtrl.rtrl import torch_ops
from sb3_rtrl.rtrl.kernels import KERNEL_DIR

TILE = 64  # must match sensitivity.cu
THREADS = 16
_SUFFIX = {th.float32: "f32", th.float64: "f64"}
_modules: dict[int, cupy.RawModule] = {}


def _module() -> cupy.RawModule:
    """The compiled kernels for the current device (compiled by NVRTC once, then cached by CuPy)."""
    device = cupy.cuda.runtime.getDevice()
    if device not in _modules:
        source = (KERNEL_DIR / "sensitivity.cu").read_text()
        _modules[device] = cupy.RawModule(code=source, options=("--std=c++14",))
    return _modules[device]


def _kernel(name: str, dtype: th.dtype) -> cupy.RawKernel:
    if dtype not in _SUFFIX:
        raise ValueError(f"the CUDA kernels support float32 and float64, got {dtype}")
    return _module().get_function(f"{name}_{_SUFFIX[dtype]}")


def _view(tensor: th.Tensor) -> cupy.ndarray:
    """A CuPy view of a contiguous CUDA tensor (DLPack, no copy)."""
    if not tensor.is_contiguous():
        raise ValueError("the CUDA kernels need contiguous tensors")
    return cupy.from_dlpack(tensor.detach())


def _launch(name: str, dtype: th.dtype, grid: tuple[int, ...], block: tuple[int, ...], args: tuple) -> None:
    kernel = _kernel(name, dtype)
    # Launch on torch's current stream, so that the kernels are ordered with torch's own work.
    with cupy.cuda.ExternalStream(th.cuda.current_stream().cuda_stream):
        kernel(grid, block, args)


def _tile_grid(b: int, r: int, d: int) -> tuple[int, int, int]:
    return ((d + TILE - 1) // TILE, (r + TILE - 1) // TILE, b)


def _advance(name: str, s0: th.Tensor, per_state: th.Tensor, a: th.Tensor, v: th.Tensor, out: th.Tensor) -> None:
    """Launch an advance kernel; ``per_state`` is P ``(B, N)`` for the segment kernel, Jh ``(M, B, N)`` for the step one."""
    b, r, d = s0.shape
    m, n = a.shape[0], per_state.shape[-1]
    per_state, a, v = per_state.contiguous(), a.contiguous(), v.contiguous()
    args = (_view(s0), _view(per_state), _view(a), _view(v), _view(out), *np.array([b, r, n, d, m], dtype=np.int32))
    _launch(name, s0.dtype, _tile_grid(b, r, d), (THREADS, THREADS), args)


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
    args = (_view(s0), _view(g.contiguous()), _view(grad), *np.array([b, r, n, d], dtype=np.int32))
    _launch("inject", s0.dtype, (blocks,), (threads,), args)
    return grad


# The segment advance is a batched matrix product plus a multiply-add, which cuBLAS does 2.3-2.8x faster than
# outer_segment on an H100; the step advance (M products in one launch) and the injection (one read of S instead
# of B products) are the kernels' (12-17x and 4x faster there). outer_segment stays, tested and benchmarked.
CUPY_OUTER = torch_ops.OuterOps(segment=torch_ops.TORCH_OUTER.segment, step=outer_step, inject=outer_inject)
segment_advance = partial(torch_ops.segment_advance, outer=CUPY_OUTER)
step_advance = partial(torch_ops.step_advance, outer=CUPY_OUTER)
inject = partial(torch_ops.inject, outer=CUPY_OUTER)
