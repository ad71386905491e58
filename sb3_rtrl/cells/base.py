"""The interface between element-wise recurrent cells and the RTRL engine.

An element-wise cell has a state ``c`` of size N whose step Jacobian ``dc(t)/dc(t-1)`` is diagonal.
Each parameter trained by RTRL has a leading dimension ``K * N`` in which row ``k * N + i`` acts on
state ``i`` alone, so the sensitivity ``dc / dparam`` has the parameter's own shape with a batch
dimension in front, and it follows the recursion

    S(t) = Jh(t) * S(t-1) + immediate(t)

with ``Jh`` the (masked) diagonal Jacobian tiled K times along the first parameter dimension and the
immediate term either ``a(t) (outer) v(t)`` (``"outer"``, for a ``(K*N, D)`` matrix) or
``a(t) * v(t)`` (``"diag"``, for a ``(K*N,)`` vector). The engine needs nothing else from a cell.

A cell with ``complex_state = True`` (the RTU) is element-wise in complex numbers: its real state of size
2N holds N complex units as adjacent (real, imaginary) pairs, whose step Jacobian is a rotation-scaling, one
complex number per unit. The same recursion then holds with complex Jacobians, immediate terms and
sensitivities (``dc / dparam`` with ``c = c1 + i c2``). A complex RTRL tensor ``W = W1 + i W2`` on which
``c`` depends holomorphically needs one sensitivity, since ``dc / dW2 = i dc / dW1``.

A cell may be made of several such cells side by side that read the same input and never each other's state
(:class:`sb3_rtrl.cells.MixedCell`): it names them in :meth:`ElementwiseRecurrentCell.rtrl_parts`, and the engine
runs each part with its own terms and sensitivities.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import torch as th
from torch import nn

SensitivityKind = Literal["outer", "diag"]
_Value = TypeVar("_Value")


def check_input_mask(cell: str, input_mask: th.Tensor, groups: int, input_size: int) -> None:
    """
    Raise ValueError unless ``input_mask`` is a ``(groups, input_size)`` bool tensor that leaves no group without
    inputs (the shared ``input_mask`` keyword of the cells).

    :param cell: the cell's class name, for the message
    """
    if tuple(input_mask.shape) != (groups, input_size) or input_mask.dtype != th.bool:
        raise ValueError(
            f"{cell}: input_mask must be a bool tensor of shape ({groups}, {input_size}), got "
            f"{input_mask.dtype} {tuple(input_mask.shape)}"
        )
    if not bool(input_mask.any(dim=1).all()):
        raise ValueError(f"{cell}: input_mask leaves a group without inputs")


def unit_reads(input_mask: th.Tensor, units: int, groups: int, dtype: th.dtype, device: th.device | str | None) -> th.Tensor:
    """``(units, input_size)``: which inputs each unit reads, its group's row of ``input_mask`` (groups of equal size)."""
    group = th.arange(units, device=device) // (units // groups)
    return input_mask.to(device=device)[group].to(dtype)


def check_timescales(cell: str, timescales: Any) -> tuple[float, float]:
    """
    ``timescales`` as a pair of floats; ValueError unless it is a pair ``(low, high)`` of finite numbers with
    ``0 < low <= high`` (the shared ``timescales`` keyword of the cells).

    :param cell: the cell's class name, for the message
    """
    if not (
        isinstance(timescales, (tuple, list))
        and len(timescales) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in timescales)
        and 0.0 < timescales[0] <= timescales[1]
    ):
        raise ValueError(f"{cell}: timescales must be a pair (low, high) with 0 < low <= high, got {timescales!r}")
    return float(timescales[0]), float(timescales[1])


def check_fraction(cell: str, name: str, value: Any) -> float:
    """
    ``value`` as a float; ValueError naming ``name`` unless it is a number (not a bool) in ``[0, 1]``.

    :param cell: the cell's class name, for the message
    :param name: the keyword's name, for the message
    """
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
        raise ValueError(f"{cell}: {name} must be in [0, 1], got {value!r}")
    return float(value)


def spread_timescales(timescales: tuple[float, float], per_group: int, groups: int) -> th.Tensor:
    """``(groups * per_group,)`` float64 time constants, spread evenly on a log scale from low to high in each group."""
    low, high = timescales
    steps = th.linspace(0.0, 1.0, per_group, dtype=th.float64) if per_group > 1 else th.zeros(1, dtype=th.float64)
    return (low * (high / low) ** steps).repeat(groups)


class ParameterCache(Generic[_Value]):
    """
    A value computed from some parameters, kept until one of them changes: an in-place change (an optimizer step,
    ``load_state_dict``) bumps a parameter's version, and a move or a new ``.data`` gives it other memory. For the
    coefficients that acting (one step without autograd) would otherwise recompute at every step. An in-place change
    made through ``.data`` (``p.data.copy_(...)``) is not seen, since PyTorch does not count it in the version: change
    parameters in place under ``torch.no_grad()`` instead, as optimizers and ``load_state_dict`` do.
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value: _Value | None = None

    def get(self, parameters: Sequence[th.Tensor], compute: Callable[[], _Value]) -> _Value:
        """The value ``compute()`` gave for the parameters as they are now (computed again after a change)."""
        key = tuple((p._version, p.data_ptr(), p.dtype, p.device) for p in parameters)
        if self._key != key or self._value is None:
            self._value, self._key = compute(), key
        return self._value


def masked_weight(weight: th.Tensor, mask: th.Tensor | None, cache: ParameterCache[th.Tensor]) -> th.Tensor:
    """
    ``weight * mask`` (``weight`` itself without a mask): a cell's weight as used, with the entries its mask cuts at
    zero. Without autograd (acting) the product is kept in ``cache`` until ``weight`` changes.
    """
    if mask is None:
        return weight
    if th.is_grad_enabled():
        return weight * mask
    return cache.get((weight,), lambda: weight * mask)


@dataclass(frozen=True)
class SensitivitySpec:
    """
    One parameter of a cell that the RTRL engine trains.

    :param name: attribute name of the parameter on the cell
    :param kind: ``"outer"`` for a ``(K*N, D)`` matrix whose immediate term is ``a (outer) v``,
        ``"diag"`` for a ``(K*N,)`` vector whose immediate term is ``a * v``
    """

    name: str
    kind: SensitivityKind


@dataclass
class RTRLTerms:
    """
    The per-step quantities of one segment that the RTRL engine consumes (all detached).

    :param jacobian: ``(T, B, N)`` diagonal of ``dc(t) / dc(t-1)``, already zero where an episode starts
    :param immediates: per RTRL parameter (in the cell's ``rtrl_specs`` order), the pair ``(a, v)``:
        ``a`` of shape ``(T, B, K*N)``; ``v`` of shape ``(T, B, D)`` for ``"outer"``; for ``"diag"``
        ``(T, B, K*N)``, or ``(T, B, N)`` shared by the K blocks, or ``None`` meaning ones. Parameters may
        share one ``a`` tensor; the engine then computes its products once.
    """

    jacobian: th.Tensor
    immediates: list[tuple[th.Tensor, th.Tensor | None]]


class ElementwiseRecurrentCell(nn.Module):
    """
    Base class of element-wise recurrent cells usable with :func:`sb3_rtrl.rtrl.rtrl_segment`.

    Subclasses set ``input_size``, ``state_size`` (the size of the real state ``c`` and of the output ``h``, all groups
    together: a policy's ``hidden_size`` is one group's, one head's),
    ``rtrl_specs`` and implement :meth:`scan`. All cells share the constructor keywords ``input_size``,
    ``state_size``, ``input_init_std``, ``groups``, ``input_mask``, ``device`` and ``dtype`` (see
    :class:`sb3_rtrl.cells.ELSTMCell`), so that the policies can build any registered cell.
    """

    input_size: int
    state_size: int
    rtrl_specs: tuple[SensitivitySpec, ...]
    #: the state is N complex units stored as 2N reals, (real, imaginary) adjacent; Jacobians, immediate
    #: terms and sensitivities are complex
    complex_state: bool = False

    def scan(
        self, x: th.Tensor, c0: th.Tensor, episode_starts: th.Tensor, need_terms: bool = False
    ) -> tuple[th.Tensor, th.Tensor, RTRLTerms | None]:
        """
        Run the cell over a segment with autograd.

        :param x: ``(T, B, D)`` inputs
        :param c0: ``(B, N)`` state before the first step
        :param episode_starts: ``(T, B)`` bool; ``True`` zeroes the state before that step
        :param need_terms: also return the detached per-step quantities RTRL needs
        :return: ``h`` of shape ``(T, B, N)``, the last state ``(B, N)``, and the terms or ``None``
        """
        raise NotImplementedError

    def reference_scan(self, x: th.Tensor, c0: th.Tensor, episode_starts: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        The cell's equations step by step with plain autograd ops, written independently of :meth:`scan`: the
        ground truth that the tests compare the fast recurrence and RTRL against. Same result as :meth:`forward`.
        """
        raise NotImplementedError

    def forward(self, x: th.Tensor, c0: th.Tensor, episode_starts: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        Plain autograd forward over a segment (this is also the TBPTT path).

        :param x: ``(T, B, D)`` inputs
        :param c0: ``(B, N)`` state before the first step
        :param episode_starts: ``(T, B)`` bool; ``True`` means ``x[t, b]`` is the first input of an episode
        :return: ``h`` of shape ``(T, B, N)`` and the last state ``(B, N)``
        """
        h, c_last, _ = self.scan(x, c0, episode_starts, need_terms=False)
        return h, c_last

    def rtrl_parts(self) -> tuple[ElementwiseRecurrentCell, ...]:
        """
        The cells the RTRL engine runs one by one: the cell itself, or the parts of a cell made of several. The
        sensitivities are the parts' in order; the state and the output are the parts' joined by :meth:`join_parts`.
        A cell made of parts gives its ``rtrl_specs``, :meth:`sensitivity_shapes`, :meth:`sensitivity_dtypes` and
        :meth:`rtrl_tensors` as its parts' in order.
        """
        return (self,)

    def split_parts(self, tensor: th.Tensor) -> list[th.Tensor]:
        """A state or output ``(..., N)`` as its parts' (:meth:`rtrl_parts` order); the inverse of :meth:`join_parts`."""
        return [tensor]

    def join_parts(self, tensors: list[th.Tensor]) -> th.Tensor:
        """The cell's state or output ``(..., N)`` from its parts' (:meth:`rtrl_parts` order)."""
        (tensor,) = tensors
        return tensor

    def read_out(self, h: th.Tensor) -> th.Tensor:
        """
        What a policy's heads read of the output ``h`` ``(..., N)``: a function of each step's output alone, applied
        outside the recurrence (the sensitivities are of ``h``; the loss's gradient reaches ``h`` through this by
        autograd). ``h`` itself here.
        """
        return h

    def rtrl_parameters(self) -> list[nn.Parameter]:
        """The parameters trained by RTRL, in ``rtrl_specs`` order (a part's as ``"part.name"``)."""
        return [self.get_parameter(spec.name) for spec in self.rtrl_specs]

    def sensitivity_dtype(self) -> th.dtype:
        """The dtype of the sensitivities: the parameters', complex for a complex state."""
        dtype = self.rtrl_parameters()[0].dtype
        if not self.complex_state:
            return dtype
        return th.complex128 if dtype == th.float64 else th.complex64

    def sensitivity_shapes(self) -> list[tuple[int, ...]]:
        """The shape of each RTRL tensor (:meth:`rtrl_tensors`), in ``rtrl_specs`` order, without computing it."""
        return [tuple(p.shape) for p in self.rtrl_parameters()]

    def sensitivity_dtypes(self) -> list[th.dtype]:
        """The dtype of each sensitivity, in ``rtrl_specs`` order (a cell made of parts may mix real and complex)."""
        return [self.sensitivity_dtype()] * len(self.rtrl_specs)

    def rtrl_tensors(self) -> list[th.Tensor]:
        """
        The RTRL parameters as the recurrence uses them, in ``rtrl_specs`` order: the parameters themselves,
        or a function of them (a masked weight; a complex weight viewed from a real parameter). The gradient
        through the carried sensitivities enters here, so that it passes the same function as the in-segment
        gradient.
        """
        return list(self.rtrl_parameters())
