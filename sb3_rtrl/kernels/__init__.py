"""CUDA kernels for the sensitivity algebra, loaded with CuPy. Nothing else in the package imports CuPy."""

from __future__ import annotations

from types import ModuleType


def unavailable_reason() -> str | None:
    """Why the CUDA kernels cannot run here, or ``None`` when they can."""
    return "the CUDA kernels are not built into this version"


def ops() -> ModuleType:
    raise RuntimeError(unavailable_reason())
