"""The policies' default cell and the networks named presets (the paper's, and the paper's for long memory)."""

from __future__ import annotations

from typing import Any

# The default cell: eLSTM units that latch an item or a count, RTU units that keep the recent past in order, gated
# linear units that hold an item through distractors (silent at the start in layers wider than 64 units a head, read
# standardized in narrower ones). Files saved while the default was "mixed", "mixed_gated" or "mixed_gated_v2" name it.
DEFAULT_CELL = "mixed_gated_v4"
# The cells that make the default network: the default and the default before it, whose new models an algorithm's
# default action layer gain applies to (the same layer, measured with it).
DEFAULT_NETWORK_CELLS = ("mixed_gated_v2", DEFAULT_CELL)
# The default cell of the files saved before "mixed" was: a saved model that names no cell has this one.
LEGACY_DEFAULT_CELL = "elstm"
# The network of Irie et al.: an eLSTM whose output alone the heads read; its forget gates start at 0.5.
PAPER_NETWORK: dict[str, Any] = dict(
    cell="elstm", net_arch=[], skip_connection=False, forget_bias=0.0, init_std=0.1, input_init_std=0.1
)
# The paper's network with forget gates at 0.95 at init, so that a memory lasts tens of steps before anything is
# learned; the paper presets use it too.
LONG_MEMORY_NETWORK: dict[str, Any] = dict(PAPER_NETWORK, forget_bias=3.0)
