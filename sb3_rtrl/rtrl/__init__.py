"""Cell-agnostic exact RTRL: the carried state, the gradient injection and the sensitivity advance."""

from sb3_rtrl.rtrl.segment import GRADIENTS, METHODS, rtrl_replay, rtrl_segment
from sb3_rtrl.rtrl.state import RTRLState, initial_state

__all__ = ["GRADIENTS", "METHODS", "RTRLState", "initial_state", "rtrl_replay", "rtrl_segment"]
