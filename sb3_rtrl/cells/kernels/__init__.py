"""
CUDA kernels of the cells' recurrences, and the CuPy plumbing every CUDA kernel of the package uses (whether the
kernels can run here, compiling a source once per device, launching on torch's stream). Only modules in a
``kernels`` package import CuPy, and only when a kernel is asked for.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch as th

KERNEL_DIR = Path(__file__).resolve().parent


def cuda_sources() -> list[Path]:
    """The CUDA source files of the cells' kernels."""
    return sorted(KERNEL_DIR.glob("*.cu"))


def unavailable_reason() -> str | None:
    """Why CUDA kernels cannot run here, or ``None`` when they can."""
    try:
        import cupy
    except Exception as err:  # ImportError, or a broken CUDA install raising at import
        return f"CuPy is not importable ({type(err).__name__}: {err}); install sb3-rtrl[cuda12] or sb3-rtrl[cuda13]"
    try:
        # cupy 13 raises here (not only later) when there is no driver or device.
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:
        return f"CuPy cannot reach a CUDA device ({type(err).__name__}: {err})"
    if count < 1:
        return "CuPy sees no CUDA device"
    return None


def launch_bound(tensor: th.Tensor) -> bool:
    """
    Whether each operation on ``tensor`` costs a kernel launch (a GPU), so that fewer, larger operations win over the
    loops of small ones that are faster on a CPU.
    """
    return tensor.is_cuda


_KERNEL_DTYPES = (th.float32, th.float64, th.complex64, th.complex128)


@functools.cache
def _usable() -> bool:
    return unavailable_reason() is None


def usable_for(tensor: th.Tensor) -> bool:
    """
    Whether a cell's kernel runs on ``tensor``: a float32, float64, complex64 or complex128 CUDA tensor (the kernels
    read a complex one as (real, imaginary) pairs), with CuPy working (asked once per process). Otherwise the cell runs
    its torch code, which gives the same values up to rounding.
    """
    return tensor.is_cuda and tensor.dtype in _KERNEL_DTYPES and _usable()
