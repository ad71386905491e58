"""Compiling a CUDA source with CuPy (NVRTC, once per device) and launching its kernels on torch's current stream."""

from __future__ import annotations

from pathlib import Path

import cupy
import numpy as np
import torch as th

_SUFFIX = {th.float32: "f32", th.float64: "f64"}
_modules: dict[tuple[Path, int], cupy.RawModule] = {}


def kernel(source: Path, name: str, dtype: th.dtype) -> cupy.RawKernel:
    """The entry point ``name`` for ``dtype`` (``name_f32`` or ``name_f64``) of ``source``, compiled for the current device."""
    if dtype not in _SUFFIX:
        raise ValueError(f"the CUDA kernels support float32 and float64, got {dtype}")
    key = (source, cupy.cuda.runtime.getDevice())
    if key not in _modules:
        _modules[key] = cupy.RawModule(code=source.read_text(), options=("--std=c++14",))
    return _modules[key].get_function(f"{name}_{_SUFFIX[dtype]}")


def view(tensor: th.Tensor) -> cupy.ndarray:
    """A CuPy view of a contiguous CUDA tensor (DLPack, no copy)."""
    if not tensor.is_contiguous():
        raise ValueError("the CUDA kernels need contiguous tensors")
    return cupy.from_dlpack(tensor.detach())


def ints(*values: int) -> list[np.int32]:
    """Kernel arguments of C type ``int``."""
    return list(np.array(values, dtype=np.int32))


def launch(source: Path, name: str, dtype: th.dtype, grid: tuple[int, ...], block: tuple[int, ...], args: tuple) -> None:
    """Launch ``name`` of ``source`` on torch's current stream, so that it is ordered with torch's own work."""
    function = kernel(source, name, dtype)
    with cupy.cuda.ExternalStream(th.cuda.current_stream().cuda_stream):
        function(grid, block, args)
