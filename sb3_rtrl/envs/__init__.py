"""Environments: built-in memory tasks, registered with gymnasium on import."""

import gymnasium as gym

from sb3_rtrl.envs.memory import DelayedRecallEnv

DELAYED_RECALL_ID = "sb3_rtrl/DelayedRecall-v0"

if DELAYED_RECALL_ID not in gym.registry:
    gym.register(id=DELAYED_RECALL_ID, entry_point="sb3_rtrl.envs.memory:DelayedRecallEnv")

__all__ = ["DELAYED_RECALL_ID", "DelayedRecallEnv"]
