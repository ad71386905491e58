"""Compiling a CUDA source with CuPy (NVRTC, once per device) and launching its kernels on torch's current stream."""

from __future__ import annotations

from collections.abc import Sequence
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


def _pointers(tensors: Sequence[th.Tensor]) -> list[np.uint64]:
    """
    The device addresses of the kernel's tensor arguments, after checking that they are contiguous and share the
    first one's dtype and CUDA device. Raw addresses rather than DLPack views: a view costs about as much host time as
    the launch itself.
    """
    first = tensors[0]
    for tensor in tensors:
        if not tensor.is_cuda or tensor.device != first.device or tensor.dtype != first.dtype:
            raise ValueError(
                f"a CUDA kernel's tensors must share one CUDA device and dtype, got {tensor.dtype} on {tensor.device} "
                f"beside {first.dtype} on {first.device}"
            )
        if not tensor.is_contiguous():
            raise ValueError("the CUDA kernels need contiguous tensors")
    return [np.uint64(tensor.data_ptr()) for tensor in tensors]


def _cupy_stream(stream: th.cuda.Stream, device: int) -> cupy.cuda.Stream:
    """torch's stream as CuPy's: through the CUDA stream protocol where both sides have it, else by its handle."""
    if hasattr(cupy.cuda.Stream, "from_external") and hasattr(stream, "__cuda_stream__"):
        return cupy.cuda.Stream.from_external(stream)
    return cupy.cuda.ExternalStream(stream.cuda_stream, device)


def launch(
    source: Path, name: str, grid: tuple[int, ...], block: tuple[int, ...], tensors: Sequence[th.Tensor], *scalars: int
) -> None:
    """
    Launch ``name`` of ``source`` with the arguments ``tensors`` (as pointers) then ``scalars`` (as C ``int``), for the
    tensors' dtype, on their device and on torch's current stream there, so that it is ordered with torch's own work
    (a model on another GPU than the current one launches there too). The tensors must stay alive until the call
    returns; torch's allocator orders any later reuse of their memory after the kernel on the same stream.
    """
    args = (*_pointers(tensors), *np.array(scalars, dtype=np.int32))
    device = tensors[0].device.index if tensors[0].device.index is not None else th.cuda.current_device()
    with cupy.cuda.Device(device):
        function = kernel(source, name, tensors[0].dtype)
        with _cupy_stream(th.cuda.current_stream(device), device):
            function(grid, block, args)
