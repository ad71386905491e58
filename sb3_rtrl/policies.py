"""
The RTRL actor-critic policies and the network presets, where users import them from.

They are defined in :mod:`sb3_rtrl.common.recurrent`; files saved before they moved there name this module, and load
through it (by pickle) or under its name (the safe load's allowlist).
"""

from sb3_rtrl.common.recurrent.keywords import (
    check_extractor_fits,
    check_observation_space,
    critic_has_own_cell,
    default_net_arch,
    prev_action_dim,
)
from sb3_rtrl.common.recurrent.policies import (
    CnnELSTMPolicy,
    MlpELSTMPolicy,
    MultiInputELSTMPolicy,
    RTRLActorCriticCnnPolicy,
    RTRLActorCriticPolicy,
    RTRLMultiInputActorCriticPolicy,
)
from sb3_rtrl.common.recurrent.presets import DEFAULT_CELL, LEGACY_DEFAULT_CELL, LONG_MEMORY_NETWORK, PAPER_NETWORK

__all__ = [
    "DEFAULT_CELL",
    "LEGACY_DEFAULT_CELL",
    "LONG_MEMORY_NETWORK",
    "PAPER_NETWORK",
    "CnnELSTMPolicy",
    "MlpELSTMPolicy",
    "MultiInputELSTMPolicy",
    "RTRLActorCriticCnnPolicy",
    "RTRLActorCriticPolicy",
    "RTRLMultiInputActorCriticPolicy",
    "check_extractor_fits",
    "check_observation_space",
    "critic_has_own_cell",
    "default_net_arch",
    "prev_action_dim",
]
