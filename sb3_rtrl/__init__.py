"""sb3-rtrl: recurrent policies for Stable-Baselines3 trained with exact real-time recurrent learning."""

from sb3_rtrl import envs  # noqa: F401  (registers the built-in environments)
from sb3_rtrl.a2c import RTRLA2C
from sb3_rtrl.cells import ELSTMCell
from sb3_rtrl.policies import (
    CnnELSTMPolicy,
    MlpELSTMPolicy,
    MultiInputELSTMPolicy,
    RTRLActorCriticCnnPolicy,
    RTRLActorCriticPolicy,
    RTRLMultiInputActorCriticPolicy,
)
from sb3_rtrl.rtrl import RTRLState, initial_state, rtrl_segment

__version__ = "0.1.0"

__all__ = [
    "CnnELSTMPolicy",
    "ELSTMCell",
    "MlpELSTMPolicy",
    "MultiInputELSTMPolicy",
    "RTRLA2C",
    "RTRLActorCriticCnnPolicy",
    "RTRLActorCriticPolicy",
    "RTRLMultiInputActorCriticPolicy",
    "RTRLState",
    "__version__",
    "initial_state",
    "rtrl_segment",
]
