"""sb3-rtrl: recurrent policies for Stable-Baselines3 trained with exact real-time recurrent learning."""

from sb3_rtrl.cells import ELSTMCell
from sb3_rtrl.rtrl import RTRLState, initial_state, rtrl_segment

__version__ = "0.1.0"

__all__ = ["ELSTMCell", "RTRLState", "__version__", "initial_state", "rtrl_segment"]
