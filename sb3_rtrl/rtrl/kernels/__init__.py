"""
CUDA kernels for the sensitivity algebra, loaded with CuPy through the cells' kernel plumbing
(:mod:`sb3_rtrl.cells.kernels`); only modules in a ``kernels`` package import CuPy.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from sb3_rtrl.cells.kernels import unavailable_reason

__all__ = ["KERNEL_DIR", "cuda_sources", "ops", "unavailable_reason"]

KERNEL_DIR = Path(__file__).resolve().parent


def cuda_sources() -> list[Path]:
    """Every CUDA source file shipped with the package."""
    return sorted(KERNEL_DIR.glob("*.cu"))


def ops() -> ModuleType:
    """The CUDA backend (``segment_advance``, ``step_advance``, ``inject``); needs CuPy and a GPU."""
    from sb3_rtrl.rtrl.kernels import cupy_ops

    return cupy_ops
