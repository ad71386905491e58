"""sb3-rtrl: recurrent policies for Stable-Baselines3 trained with exact real-time recurrent learning."""

from importlib import import_module
from typing import Any

from sb3_rtrl.algorithms import ALGORITHMS
from sb3_rtrl.cells import ELSTMCell, RTUCell
from sb3_rtrl.rtrl import RTRLState, initial_state, rtrl_segment

__version__ = "0.1.0"  # the one source: pyproject.toml reads it

# The engine (cells, rtrl with its CUDA kernels) needs only torch; the algorithm and policies need Stable-Baselines3,
# so they are imported on first use. That keeps the engine usable on a bare GPU image.
_LAZY = {
    **{name: entry.module for name, entry in ALGORITHMS.items()},
    "RTRLActorCriticPolicy": "sb3_rtrl.common.recurrent.policies",
    "RTRLActorCriticCnnPolicy": "sb3_rtrl.common.recurrent.policies",
    "RTRLMultiInputActorCriticPolicy": "sb3_rtrl.common.recurrent.policies",
    "MlpELSTMPolicy": "sb3_rtrl.common.recurrent.policies",
    "CnnELSTMPolicy": "sb3_rtrl.common.recurrent.policies",
    "MultiInputELSTMPolicy": "sb3_rtrl.common.recurrent.policies",
    "NonFiniteError": "sb3_rtrl.common.finite",
    "ImpalaCNN": "sb3_rtrl.torch_layers",
}

try:
    import gymnasium  # noqa: F401  (a declared dependency; absent only on a bare engine install)
except ImportError:
    pass
else:
    from sb3_rtrl import envs  # noqa: F401  (registers the built-in environments)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sb3_rtrl' has no attribute {name!r}")


__all__ = ["ELSTMCell", "RTRLState", "RTUCell", "__version__", "initial_state", "rtrl_segment", *_LAZY]
