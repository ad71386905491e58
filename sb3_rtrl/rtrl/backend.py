"""Choice of the implementation of the sensitivity algebra: PyTorch everywhere, CUDA kernels on GPUs."""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Literal

import torch as th

from sb3_rtrl.rtrl import torch_ops

Backend = Literal["auto", "torch", "cupy"]
BACKENDS = ("auto", "torch", "cupy")
logger = logging.getLogger("sb3_rtrl")
_reported: set[str] = set()


def _log_once(message: str) -> None:
    if message not in _reported:
        _reported.add(message)
        logger.info(message)


def resolve(backend: Backend, device: th.device) -> ModuleType:
    """
    The module providing ``segment_advance``, ``step_advance`` and ``inject`` for tensors on ``device``.

    :param backend: ``"torch"``, ``"cupy"`` or ``"auto"``
    :param device: where the segment's tensors live
    :return: the backend's operations
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return torch_ops
    from sb3_rtrl.rtrl import kernels  # the only place that may import cupy

    if backend == "cupy":
        if device.type != "cuda":
            raise ValueError(f"backend='cupy' needs tensors on a CUDA device, got {device}")
        reason = kernels.unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"backend='cupy' is not usable: {reason}")
        return kernels.ops()
    if device.type != "cuda":
        _log_once(f"sb3_rtrl: RTRL backend 'torch' (tensors are on {device.type}, the CUDA kernels need a GPU)")
        return torch_ops
    reason = kernels.unavailable_reason()
    if reason is not None:
        _log_once(f"sb3_rtrl: RTRL backend 'torch' ({reason})")
        return torch_ops
    _log_once("sb3_rtrl: RTRL backend 'cupy' (CUDA kernels)")
    return kernels.ops()
