"""Element-wise recurrent cells, the interface the RTRL engine reads from them, and their registry."""

from typing import Any

from sb3_rtrl.cells.base import ElementwiseRecurrentCell, RTRLTerms, SensitivitySpec
from sb3_rtrl.cells.elstm import ELSTMCell
from sb3_rtrl.cells.gated import GatedLinearCell
from sb3_rtrl.cells.mixed import MixedCell
from sb3_rtrl.cells.registry import CELLS, cell_entry, register_cell, resolve_cell_kwargs
from sb3_rtrl.cells.rtu import RTUCell

# The policies' defaults for the eLSTM: forget gates spread from 0.5 to 0.95 and a recurrent init strong enough to
# hold a state (the paper's own init, 0.0 and 0.1, is sb3_rtrl.policies.PAPER_NETWORK).
register_cell("elstm", ELSTMCell, policy_defaults=dict(forget_bias=(0.0, 3.0), init_std=0.5))
register_cell("rtu", RTUCell)
# Units that hold through distractors and write at full strength when the input says so.
register_cell("gated", GatedLinearCell)
# Both kinds of memory in one layer, with the eLSTM part's forget gates spread up to 0.9975 (a time scale of about
# 400 steps), so that a long delay needs no tuned gate.
register_cell("mixed", MixedCell, policy_defaults=dict(forget_bias=(0.0, 6.0), init_std=0.5))
# The same layer with gated linear units as a third part, which hold one item through hundreds of steps of
# distractors. The RTU and gated parts are sized by count: an eighth of the width each, but at least 8 gated units
# while that is at most a quarter, and at least 8 complex RTU units (16 reals) while the two take at most three
# eighths; the eLSTM units take the rest.
_MIXED_GATED: dict[str, Any] = dict(
    forget_bias=(0.0, 6.0),
    init_std=0.5,
    rtu_fraction=0.125,
    rtu_min_units=8,
    gated_fraction=0.125,
    gated_min_units=8,
)
register_cell("mixed_gated", MixedCell, policy_defaults=_MIXED_GATED)
# The same layer with its gated units silent at the start in layers wider than 64 units a head (their drive weights
# zero, learned from there), loud in narrower ones as in "mixed_gated".
register_cell("mixed_gated_v2", MixedCell, policy_defaults=dict(_MIXED_GATED, gated_silent_above=64))
# The same layer whose heads, in layers wider than 64 units a head, read its eLSTM outputs normalized over the units
# at each step, at a quarter of unit scale: the raw outputs vary far less than the other parts' and least in the slow
# units that count. Narrower layers are read as in "mixed_gated_v2".
register_cell(
    "mixed_gated_v3",
    MixedCell,
    policy_defaults=dict(_MIXED_GATED, gated_silent_above=64, elstm_read_norm=0.25, elstm_read_norm_above=64),
)
# The same layer whose heads, in layers of at most 64 units a head (where its gated units start loud), read each gated
# unit standardized by running statistics: one unit may hold an item at a small fraction of the others' scale.
# Wider layers are "mixed_gated_v2".
register_cell(
    "mixed_gated_v4",
    MixedCell,
    policy_defaults=dict(_MIXED_GATED, gated_silent_above=64, gated_read_norm=True, gated_read_norm_max_width=64),
)

__all__ = [
    "CELLS",
    "ELSTMCell",
    "ElementwiseRecurrentCell",
    "GatedLinearCell",
    "MixedCell",
    "RTRLTerms",
    "RTUCell",
    "SensitivitySpec",
    "cell_entry",
    "register_cell",
    "resolve_cell_kwargs",
]
