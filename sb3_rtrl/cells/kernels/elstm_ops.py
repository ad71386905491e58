"""The eLSTM's recurrence over a segment as two CUDA kernels (elstm.cu): one launch each way instead of a few a step."""

from __future__ import annotations

import torch as th

from sb3_rtrl.cells.kernels import KERNEL_DIR
from sb3_rtrl.cells.kernels.launch import launch

SOURCE = KERNEL_DIR / "elstm.cu"
THREADS = 128
MAX_BLOCKS = 65_535


def _grid(units: int) -> tuple[int]:
    return (max(1, min((units + THREADS - 1) // THREADS, MAX_BLOCKS)),)


def forward(
    u: th.Tensor, weight_hh: th.Tensor, c0: th.Tensor, not_start: th.Tensor, need_terms: bool
) -> tuple[th.Tensor, th.Tensor | None, th.Tensor | None, th.Tensor]:
    """
    What ``sb3_rtrl.cells.elstm._recurrence_forward`` computes, on the GPU.

    :param u: ``(T, B, 2N)`` input pre-activations
    :param weight_hh: ``(2N,)`` recurrent weights
    :param c0: ``(B, N)`` initial state
    :param not_start: ``(T, B, 1)`` zero where an episode starts, else one
    :param need_terms: also return the RTRL terms ``a`` and the masked Jacobian
    :return: ``c`` ``(T, B, N)``, ``a`` ``(T, B, 2N)`` or None, Jacobian ``(T, B, N)`` or None, ``c~`` ``(T, B, N)``
    """
    steps, batch, n2 = u.shape
    n = n2 // 2
    u, weight_hh, c0 = u.detach().contiguous(), weight_hh.detach().contiguous(), c0.detach().contiguous()
    keep = not_start.reshape(steps, batch).to(u.dtype).contiguous()
    c_all, c_tilde = u.new_empty(steps, batch, n), u.new_empty(steps, batch, n)
    # Unused when no terms are asked for; the kernel still needs valid pointers.
    a, jacobian = (u.new_empty(steps, batch, n2), u.new_empty(steps, batch, n)) if need_terms else (c_all, c_all)
    tensors = (u, weight_hh, c0, keep, c_all, c_tilde, a, jacobian)
    launch(SOURCE, "elstm_forward", _grid(batch * n), (THREADS,), tensors, steps, batch, n, int(need_terms))
    if not need_terms:
        return c_all, None, None, c_tilde
    return c_all, a, jacobian, c_tilde


def backward(a: th.Tensor, jacobian: th.Tensor, grad_c_all: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """
    The adjoint of the recurrence: ``grad_u`` ``(T, B, 2N)`` and the gradient at ``c0`` ``(B, N)``.

    :param a: ``(T, B, 2N)`` the terms ``[zh; fh]`` of the forward
    :param jacobian: ``(T, B, N)`` its masked Jacobians
    :param grad_c_all: ``(T, B, N)`` the gradient arriving at each ``c(t)`` from outside the recurrence
    """
    steps, batch, n = jacobian.shape
    grad_c_all = grad_c_all.contiguous()
    grad_u, grad_c0 = th.empty_like(a), grad_c_all.new_empty(batch, n)
    tensors = (a, jacobian, grad_c_all, grad_u, grad_c0)
    launch(SOURCE, "elstm_backward", _grid(batch * n), (THREADS,), tensors, steps, batch, n)
    return grad_u, grad_c0
