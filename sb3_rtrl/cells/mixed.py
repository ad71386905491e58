"""One element-wise layer of eLSTM units and recurrent trace units side by side."""

from __future__ import annotations

import math

import torch as th

from sb3_rtrl.cells.base import ElementwiseRecurrentCell, RTRLTerms, SensitivitySpec
from sb3_rtrl.cells.elstm import ELSTMCell
from sb3_rtrl.cells.rtu import RTUCell


class MixedCell(ElementwiseRecurrentCell):
    """
    eLSTM units and RTU units in one layer: gated units that can latch an item or a count for a whole episode,
    and rotating linear units that keep the recent past in order.

    Both kinds read the same input and never read each other's state, so the layer is element-wise and exact RTRL
    stays O(N * D) per step: the engine runs each part with its own sensitivities (real for the eLSTM, complex for
    the RTU, see :meth:`rtrl_parts`). State and output are laid out by group: per group its eLSTM units, then its
    RTU units, so that a policy that splits them into an actor's and a critic's half gets each group whole.

    :param input_size: D, the size of x
    :param state_size: N, the size of the state and of ``h``, all groups together (per group at least 3: one eLSTM unit and one
        complex RTU unit)
    :param rtu_fraction: the share of each group's width given to RTU units (rounded to an even number of reals,
        at least 2, leaving at least one eLSTM unit)
    :param init_std: the eLSTM part's ``init_std``
    :param forget_bias: the eLSTM part's ``forget_bias`` (a pair spreads it over the units: slow and fast units)
    :param r_min: the RTU part's ``r_min``
    :param r_max: the RTU part's ``r_max``
    :param max_phase: the RTU part's ``max_phase``
    :param timescales: the RTU part's ``timescales``: its units' time constants spread log-evenly over ``(low,
        high)`` steps instead of ``r`` drawn from ``[r_min, r_max]``
    :param activation: the RTU part's ``activation``
    :param input_init_std: standard deviation of both parts' input projections; None: each part's default
    :param groups: independent groups of units (an actor's and a critic's), each with both kinds of unit
    :param input_mask: ``(groups, input_size)`` bool, which inputs each group reads; None: all
    :param device: device of the parameters
    :param dtype: dtype of the parameters
    """

    def __init__(
        self,
        input_size: int,
        state_size: int,
        rtu_fraction: float = 0.25,
        init_std: float = 0.1,
        forget_bias: float | tuple[float, float] = 0.0,
        r_min: float = 0.0,
        r_max: float = 1.0,
        max_phase: float = 2 * math.pi,
        activation: str = "linear",
        input_init_std: float | None = None,
        timescales: tuple[float, float] | None = None,
        groups: int = 1,
        input_mask: th.Tensor | None = None,
        device: th.device | str | None = None,
        dtype: th.dtype | None = None,
    ) -> None:
        super().__init__()
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or state_size % groups:
            raise ValueError(f"MixedCell: groups={groups} must be >= 1 and divide state_size={state_size}")
        if not (isinstance(rtu_fraction, (int, float)) and 0.0 < rtu_fraction < 1.0):
            raise ValueError(f"MixedCell: rtu_fraction must be in (0, 1), got {rtu_fraction!r}")
        width = state_size // groups
        if input_size < 1 or width < 3:
            raise ValueError(
                f"MixedCell needs input_size >= 1 and at least 3 units per group (one eLSTM unit and one complex RTU "
                f"unit), got input_size={input_size} and state_size={state_size} in {groups} group(s)"
            )
        rtu_width = min(max(2, 2 * round(width * rtu_fraction / 2)), width - 1 - (width - 1) % 2)
        self.input_size = input_size
        self.state_size = state_size
        self.groups = groups
        self.rtu_fraction = float(rtu_fraction)
        self.elstm_width, self.rtu_width = width - rtu_width, rtu_width
        self.elstm = ELSTMCell(
            input_size,
            groups * self.elstm_width,
            init_std=init_std,
            forget_bias=forget_bias,
            input_init_std=input_init_std,
            groups=groups,
            input_mask=input_mask,
            device=device,
            dtype=dtype,
        )
        self.rtu = RTUCell(
            input_size,
            groups * rtu_width,
            activation=activation,
            r_min=r_min,
            r_max=r_max,
            max_phase=max_phase,
            input_init_std=input_init_std,
            timescales=timescales,
            groups=groups,
            input_mask=input_mask,
            device=device,
            dtype=dtype,
        )
        self.rtrl_specs = tuple(
            SensitivitySpec(f"{name}.{spec.name}", spec.kind)
            for name, part in (("elstm", self.elstm), ("rtu", self.rtu))
            for spec in part.rtrl_specs
        )

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.state_size}, eLSTM {self.elstm_width} + RTU {self.rtu_width} per group"

    def rtrl_parts(self) -> tuple[ElementwiseRecurrentCell, ...]:
        return (self.elstm, self.rtu)

    def sensitivity_shapes(self) -> list[tuple[int, ...]]:
        return [shape for part in self.rtrl_parts() for shape in part.sensitivity_shapes()]

    def sensitivity_dtypes(self) -> list[th.dtype]:
        return [dtype for part in self.rtrl_parts() for dtype in part.sensitivity_dtypes()]

    def rtrl_tensors(self) -> list[th.Tensor]:
        return [tensor for part in self.rtrl_parts() for tensor in part.rtrl_tensors()]

    def split_parts(self, tensor: th.Tensor) -> list[th.Tensor]:
        if self.groups == 1:
            return list(tensor.split([self.elstm_width, self.rtu_width], dim=-1))
        grouped = tensor.unflatten(-1, (self.groups, self.elstm_width + self.rtu_width))
        return [grouped[..., : self.elstm_width].flatten(-2), grouped[..., self.elstm_width :].flatten(-2)]

    def join_parts(self, tensors: list[th.Tensor]) -> th.Tensor:
        elstm, rtu = tensors
        if self.groups == 1:
            return th.cat([elstm, rtu], dim=-1)
        grouped = [elstm.unflatten(-1, (self.groups, -1)), rtu.unflatten(-1, (self.groups, -1))]
        return th.cat(grouped, dim=-1).flatten(-2)

    def scan(
        self, x: th.Tensor, c0: th.Tensor, episode_starts: th.Tensor, need_terms: bool = False
    ) -> tuple[th.Tensor, th.Tensor, RTRLTerms | None]:
        if need_terms:
            raise ValueError("MixedCell has no terms of its own: the RTRL engine takes each part's (rtrl_parts)")
        outputs, states = [], []
        for part, c0_part in zip(self.rtrl_parts(), self.split_parts(c0)):
            h, c_last, _ = part.scan(x, c0_part, episode_starts)
            outputs.append(h)
            states.append(c_last)
        return self.join_parts(outputs), self.join_parts(states), None

    def reference_scan(self, x: th.Tensor, c0: th.Tensor, episode_starts: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        results = [part.reference_scan(x, c, episode_starts) for part, c in zip(self.rtrl_parts(), self.split_parts(c0))]
        return self.join_parts([h for h, _ in results]), self.join_parts([c for _, c in results])
