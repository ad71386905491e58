"""The state RTRL carries from one segment to the next."""

from __future__ import annotations

from dataclasses import dataclass

import torch as th

from sb3_rtrl.cells.base import ElementwiseRecurrentCell


@dataclass
class RTRLState:
    """
    Cell state and sensitivities of a batch of sequences, carried across segments (always detached).

    :param c: ``(B, N)`` cell state
    :param sensitivities: one tensor per RTRL parameter of the cell (``rtrl_specs`` order), each of the
        shape of the tensor the recurrence uses with the batch dimension in front (complex for a cell with a
        complex state)
    """

    c: th.Tensor
    sensitivities: tuple[th.Tensor, ...]

    @property
    def batch_size(self) -> int:
        return self.c.shape[0]

    def sensitivity_norm(self) -> float:
        """Root-mean-square of all sensitivity entries (a health figure for logging)."""
        # One read of each tensor, no temporary of its size.
        reals = [th.view_as_real(s) if s.is_complex() else s for s in self.sensitivities]
        total = sum(float(th.linalg.vector_norm(s, dtype=th.float64)) ** 2 for s in reals)
        count = sum(s.numel() for s in reals)
        return (total / max(count, 1)) ** 0.5


def initial_state(cell: ElementwiseRecurrentCell, batch_size: int) -> RTRLState:
    """
    Zero state and sensitivities on the cell's device and dtype.

    :param cell: the recurrent cell
    :param batch_size: number of sequences B
    :return: the zero state
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ref = cell.rtrl_parameters()[0]
    c = th.zeros(batch_size, cell.state_size, device=ref.device, dtype=ref.dtype)
    sensitivities = tuple(
        th.zeros((batch_size, *shape), device=ref.device, dtype=dtype)
        for shape, dtype in zip(cell.sensitivity_shapes(), cell.sensitivity_dtypes())
    )
    return RTRLState(c=c, sensitivities=sensitivities)


def split_state(cell: ElementwiseRecurrentCell, state: RTRLState) -> list[RTRLState]:
    """
    The state of each of the cell's parts (:meth:`~sb3_rtrl.cells.ElementwiseRecurrentCell.rtrl_parts`): the cell
    state split into the parts' units and the sensitivities in order (``state``'s own tensors).
    """
    parts = cell.rtrl_parts()
    if len(parts) == 1:
        return [state]
    states = cell.split_parts(state.c)
    result, start = [], 0
    for part, c in zip(parts, states):
        count = len(part.rtrl_specs)
        result.append(RTRLState(c=c, sensitivities=state.sensitivities[start : start + count]))
        start += count
    return result
