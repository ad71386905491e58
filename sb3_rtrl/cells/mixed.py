"""One element-wise layer of eLSTM units and recurrent trace units side by side (and, optionally, gated linear units)."""

from __future__ import annotations

import math
from typing import Any

import torch as th

from sb3_rtrl.cells.base import ElementwiseRecurrentCell, RTRLTerms, SensitivitySpec, check_fraction
from sb3_rtrl.cells.elstm import ELSTMCell
from sb3_rtrl.cells.gated import GatedLinearCell
from sb3_rtrl.cells.rtu import RTUCell


class MixedCell(ElementwiseRecurrentCell):
    """
    eLSTM units and RTU units in one layer: gated units that can latch an item or a count for a whole episode,
    and rotating linear units that keep the recent past in order; optionally gated linear units as a third part,
    which hold one item through distractors.

    The kinds read the same input and never read each other's state, so the layer is element-wise and exact RTRL
    stays O(N * D) per step: the engine runs each part with its own sensitivities (real for the eLSTM and the gated
    units, complex for the RTU, see :meth:`rtrl_parts`). State and output are laid out by group: per group its eLSTM
    units, then its RTU units, then its gated units, so that a policy that splits them into an actor's and a critic's
    half gets each group whole.

    :param input_size: D, the size of x
    :param state_size: N, the size of the state and of ``h``, all groups together (per group at least 3 beside the
        gated units: one eLSTM unit and one complex RTU unit)
    :param rtu_fraction: the share of each group's width given to RTU units (rounded to an even number of reals,
        at least 2, leaving at least one eLSTM unit)
    :param rtu_min_units: the least number of complex RTU units per group, as long as the RTU and gated units together
        take at most three eighths of it: the recent past kept in order (a velocity read from positions) needs a few
        units whatever the width, and a narrow layer keeps five eighths of its width for the eLSTM units that latch
    :param gated_fraction: the share of each group's width given to gated linear units
        (:class:`sb3_rtrl.cells.GatedLinearCell`, rounded, at least 1 when above 0), which hold an input through
        distractors; 0: none (the layer of eLSTM and RTU units alone)
    :param gated_min_units: the least number of gated units per group, as long as they take at most a quarter of
        it: one item held through distractors needs a few gated units whatever the width, while the eLSTM units must
        grow with it to latch more
    :param gated_timescales: the gated units' ``timescales``
    :param gated_drive_init_std: the gated units' ``drive_init_std``: 0 starts them silent
    :param gated_silent_above: in groups wider than this many units the gated units start silent (as with
        ``gated_drive_init_std=0``) unless ``gated_drive_init_std`` is given. Started loud, slow gated units hand the
        heads large random sums of the episode's history before anything is learned, which costs tasks read from
        slowly changing observations; in a narrow layer the same loud start carries an item through distractors
        while its few eLSTM units learn to. None: at every width as ``gated_drive_init_std`` says
    :param gated_loud_fraction: the share of each group's gated units, spaced evenly over their time constants, that
        keep the usual (loud) drive init where ``gated_drive_init_std`` or ``gated_silent_above`` sets the others'.
        0: none
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
    :param elstm_output_scale: the eLSTM part's ``output_scale`` (a pair spreads it from its fast units to its slow
        ones): its units' outputs vary far less than the RTU and gated units' (which keep the scale of their input)
    :param elstm_read_norm: 0: a policy's heads read the eLSTM outputs as they are (:meth:`read_out`); above 0: each
        step's eLSTM outputs of each group normalized over the group's eLSTM units (zero mean, unit variance) and
        times this gain, in groups of at least 2 eLSTM units (with one, as it is). The recurrence and its state are
        the same either way
    :param elstm_read_norm_above: only groups wider than this many units read their eLSTM outputs normalized
        (``elstm_read_norm``); narrower ones read them as they are. None: every width
    :param gated_read_norm: a policy's heads read each gated unit standardized (:meth:`read_out`): minus its running
        mean, over its running standard deviation. A gated unit's output keeps the scale of its input sum, which
        differs widely from unit to unit, and one unit that holds an item may carry it at a scale far below what the
        heads read at their init. The statistics are buffers (saved with the model). Reads in training
        mode are gathered, and folded into them when the layer leaves training mode (:meth:`train`): every read of
        one update (all its epochs and minibatches) uses the statistics that the rollout it trains on was collected
        with, and acting, ``predict`` and evaluation never change them. The recurrence and its state are the same
        either way
    :param gated_read_norm_max_width: only groups of at most this many units read their gated units standardized;
        wider ones read them as they are. None: every width
    :param gated_read_window: how many of the latest rows read in training (steps times environments) the running
        statistics average over; until that many are read, all of them alike
    """

    gated_read_mean: th.Tensor
    gated_read_var: th.Tensor
    gated_read_rows: th.Tensor
    gated_read_pending: th.Tensor

    def __init__(
        self,
        input_size: int,
        state_size: int,
        rtu_fraction: float = 0.25,
        rtu_min_units: int = 0,
        gated_fraction: float = 0.0,
        gated_min_units: int = 0,
        gated_timescales: tuple[float, float] = (1.0, 1000.0),
        gated_drive_init_std: float | None = None,
        gated_silent_above: int | None = None,
        gated_loud_fraction: float = 0.0,
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
        elstm_output_scale: float | tuple[float, float] = 1.0,
        elstm_read_norm: float = 0.0,
        elstm_read_norm_above: int | None = None,
        gated_read_norm: bool = False,
        gated_read_norm_max_width: int | None = None,
        gated_read_window: int = 16384,
    ) -> None:
        super().__init__()
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or state_size % groups:
            raise ValueError(f"MixedCell: groups={groups} must be >= 1 and divide state_size={state_size}")
        if not (isinstance(rtu_fraction, (int, float)) and 0.0 < rtu_fraction < 1.0):
            raise ValueError(f"MixedCell: rtu_fraction must be in (0, 1), got {rtu_fraction!r}")
        if not (isinstance(gated_fraction, (int, float)) and 0.0 <= gated_fraction < 1.0 - rtu_fraction):
            raise ValueError(f"MixedCell: gated_fraction must be in [0, 1 - rtu_fraction), got {gated_fraction!r}")
        for name, count in (("rtu_min_units", rtu_min_units), ("gated_min_units", gated_min_units)):
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(f"MixedCell: {name} must be an int >= 0, got {count!r}")
        for name, above in (
            ("gated_silent_above", gated_silent_above),
            ("elstm_read_norm_above", elstm_read_norm_above),
            ("gated_read_norm_max_width", gated_read_norm_max_width),
        ):
            if above is not None and (isinstance(above, bool) or not isinstance(above, int) or above < 0):
                raise ValueError(f"MixedCell: {name} must be None or an int >= 0, got {above!r}")
        gated_loud_fraction = check_fraction("MixedCell", "gated_loud_fraction", gated_loud_fraction)
        if (
            isinstance(elstm_read_norm, bool)
            or not isinstance(elstm_read_norm, (int, float))
            or not 0 <= elstm_read_norm < math.inf
        ):
            raise ValueError(f"MixedCell: elstm_read_norm must be a finite number >= 0, got {elstm_read_norm!r}")
        if not isinstance(gated_read_norm, bool):
            raise ValueError(f"MixedCell: gated_read_norm must be a bool, got {gated_read_norm!r}")
        if isinstance(gated_read_window, bool) or not isinstance(gated_read_window, int) or gated_read_window < 1:
            raise ValueError(f"MixedCell: gated_read_window must be an int >= 1, got {gated_read_window!r}")
        width = state_size // groups
        gated_width = max(1, round(width * gated_fraction)) if gated_fraction > 0 else 0
        gated_width = max(gated_width, min(gated_min_units, width // 4))
        if input_size < 1 or width - gated_width < 3:
            raise ValueError(
                f"MixedCell needs input_size >= 1 and at least 3 units per group (one eLSTM unit and one complex RTU "
                f"unit) beside its {gated_width} gated units, got input_size={input_size} and state_size={state_size} "
                f"in {groups} group(s)"
            )
        rest = width - gated_width
        rtu_width = max(2, 2 * round(width * rtu_fraction / 2), 2 * min(rtu_min_units, (3 * width // 8 - gated_width) // 2))
        rtu_width = min(rtu_width, rest - 1 - (rest - 1) % 2)
        self.input_size = input_size
        self.state_size = state_size
        self.groups = groups
        self.elstm_width, self.rtu_width, self.gated_width = rest - rtu_width, rtu_width, gated_width
        # A normalization over one unit would read it as 0.
        normalized = self.elstm_width > 1 and (elstm_read_norm_above is None or width > elstm_read_norm_above)
        self.elstm_read_norm = float(elstm_read_norm) if normalized else 0.0
        self.gated_read_norm = (
            gated_read_norm and gated_width > 0 and (gated_read_norm_max_width is None or width <= gated_read_norm_max_width)
        )
        self.gated_read_window = gated_read_window
        if self.gated_read_norm:
            units = groups * gated_width
            stats_dtype = dtype if dtype is not None else th.get_default_dtype()
            self.register_buffer("gated_read_mean", th.zeros(units, device=device, dtype=stats_dtype))
            self.register_buffer("gated_read_var", th.ones(units, device=device, dtype=stats_dtype))
            # Rows folded in so far: in float64, exact far beyond any run's length.
            self.register_buffer("gated_read_rows", th.zeros((), device=device, dtype=th.float64))
            # The training reads not yet folded in: their count, sums and sums of squares per unit (float64: the
            # variance is their difference).
            self.register_buffer("gated_read_pending", th.zeros(3, units, device=device, dtype=th.float64))
        if gated_drive_init_std is None and gated_silent_above is not None and width > gated_silent_above:
            gated_drive_init_std = 0.0
        # The keywords every part takes alike.
        shared: dict[str, Any] = dict(
            input_init_std=input_init_std, groups=groups, input_mask=input_mask, device=device, dtype=dtype
        )
        self.elstm = ELSTMCell(
            input_size,
            groups * self.elstm_width,
            init_std=init_std,
            forget_bias=forget_bias,
            output_scale=elstm_output_scale,
            **shared,
        )
        self.rtu = RTUCell(
            input_size,
            groups * rtu_width,
            activation=activation,
            r_min=r_min,
            r_max=r_max,
            max_phase=max_phase,
            timescales=timescales,
            **shared,
        )
        parts: list[tuple[str, ElementwiseRecurrentCell]] = [("elstm", self.elstm), ("rtu", self.rtu)]
        self.gated: GatedLinearCell | None = None
        if gated_width:
            self.gated = GatedLinearCell(
                input_size,
                groups * gated_width,
                timescales=gated_timescales,
                drive_init_std=gated_drive_init_std,
                # With no drive_init_std every gated unit starts loud whatever the fraction.
                drive_init_fraction=1.0 if gated_drive_init_std is None else 1.0 - gated_loud_fraction,
                **shared,
            )
            parts.append(("gated", self.gated))
        self._parts = tuple(part for _, part in parts)
        self.rtrl_specs = tuple(
            SensitivitySpec(f"{name}.{spec.name}", spec.kind) for name, part in parts for spec in part.rtrl_specs
        )

    def extra_repr(self) -> str:
        gated = f" + gated {self.gated_width}" if self.gated_width else ""
        norm = f", eLSTM read normalized x{self.elstm_read_norm:g}" if self.elstm_read_norm else ""
        norm += ", gated read standardized" if self.gated_read_norm else ""
        return f"{self.input_size}, {self.state_size}, eLSTM {self.elstm_width} + RTU {self.rtu_width}{gated} per group{norm}"

    def rtrl_parts(self) -> tuple[ElementwiseRecurrentCell, ...]:
        return self._parts

    def sensitivity_shapes(self) -> list[tuple[int, ...]]:
        return [shape for part in self.rtrl_parts() for shape in part.sensitivity_shapes()]

    def sensitivity_dtypes(self) -> list[th.dtype]:
        return [dtype for part in self.rtrl_parts() for dtype in part.sensitivity_dtypes()]

    def rtrl_tensors(self) -> list[th.Tensor]:
        return [tensor for part in self.rtrl_parts() for tensor in part.rtrl_tensors()]

    def _widths(self) -> list[int]:
        return [self.elstm_width, self.rtu_width] + ([self.gated_width] if self.gated_width else [])

    def split_parts(self, tensor: th.Tensor) -> list[th.Tensor]:
        if self.groups == 1:
            return list(tensor.split(self._widths(), dim=-1))
        grouped = tensor.unflatten(-1, (self.groups, sum(self._widths())))
        return [part.flatten(-2) for part in grouped.split(self._widths(), dim=-1)]

    def join_parts(self, tensors: list[th.Tensor]) -> th.Tensor:
        if self.groups == 1:
            return th.cat(tensors, dim=-1)
        return th.cat([part.unflatten(-1, (self.groups, -1)) for part in tensors], dim=-1).flatten(-2)

    def read_out(self, h: th.Tensor) -> th.Tensor:
        if not self.elstm_read_norm and not self.gated_read_norm:
            return h
        parts = self.split_parts(h)
        if self.elstm_read_norm:
            # Each group's eLSTM units alone (an actor's normalization must not read the critic's units).
            elstm = parts[0].unflatten(-1, (self.groups, self.elstm_width))
            parts[0] = (th.nn.functional.layer_norm(elstm, (self.elstm_width,)) * self.elstm_read_norm).flatten(-2)
        if self.gated_read_norm:
            gated = parts[2]
            # The statistics are constants of the read: the gradient reaches each unit scaled, never through them.
            parts[2] = (gated - self.gated_read_mean) * th.rsqrt(self.gated_read_var + 1e-8)
            if self.training:
                rows = gated.detach().reshape(-1, gated.shape[-1]).to(th.float64)
                self.gated_read_pending[0] += rows.shape[0]
                self.gated_read_pending[1] += rows.sum(0)
                self.gated_read_pending[2] += rows.square().sum(0)
        return self.join_parts(parts)

    def train(self, mode: bool = True) -> MixedCell:
        super().train(mode)
        if not mode and self.gated_read_norm:
            self._fold_gated_reads()
        return self

    @th.no_grad()
    def _fold_gated_reads(self) -> None:
        """Fold the gathered training reads of the gated units into their running mean and variance."""
        if not bool(th.isfinite(self.gated_read_pending).all()):
            self.gated_read_pending.zero_()  # dropped, so that the statistics stay finite and the layer usable
            raise ValueError("MixedCell: a read in training mode held non-finite gated unit outputs; it was dropped")
        count, total, squares = self.gated_read_pending.unbind(0)
        rows = float(count[0])
        if rows == 0:
            return
        batch_mean = total / rows
        batch_var = (squares / rows - batch_mean.square()).clamp_min(0.0)
        self.gated_read_rows += rows
        # The reads' share: all of it at the first fold, then their rows' share of the window (or of all rows read).
        share = rows / float(self.gated_read_rows.clamp(max=max(self.gated_read_window, rows)))
        mean, var = self.gated_read_mean.double(), self.gated_read_var.double()
        delta = batch_mean - mean
        # The variance of the mixture of the two: the old and the reads', each about its own mean.
        var = (1 - share) * var + share * batch_var + share * (1 - share) * delta.square()
        self.gated_read_mean.copy_(mean + share * delta)
        self.gated_read_var.copy_(var)
        self.gated_read_pending.zero_()

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
