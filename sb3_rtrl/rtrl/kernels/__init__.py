"""CUDA kernels for the sensitivity algebra, loaded with CuPy. Nothing else in the package imports CuPy."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

KERNEL_DIR = Path(__file__).resolve().parent


def cuda_sources() -> list[Path]:
    """Every CUDA source file shipped with the package."""
    return sorted(KERNEL_DIR.glob("*.cu"))


def unavailable_reason() -> str | None:
    """Why the CUDA kernels cannot run here, or ``None`` when they can."""
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


def ops() -> ModuleType:
    """The CUDA backend (``segment_advance``, ``step_advance``, ``inject``); needs CuPy and a GPU."""
    from sb3_rtrl.rtrl.kernels import cupy_ops

    return cupy_ops
