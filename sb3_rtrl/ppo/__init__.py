"""RTRLPPO: RecurrentPPO's algorithm and hyperparameters, with the recurrent cell trained by exact RTRL."""

from sb3_rtrl.ppo.ppo import RTRLPPO

__all__ = ["RTRLPPO"]
