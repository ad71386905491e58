"""Environments: built-in memory tasks, registered with gymnasium on import."""

import gymnasium as gym

from sb3_rtrl.envs.memory import DelayedRecallEnv
from sb3_rtrl.envs.wrappers import MaskVelocityWrapper, make_no_velocity

DELAYED_RECALL_ID = "sb3_rtrl/DelayedRecall-v0"
NO_VELOCITY_IDS = {"sb3_rtrl/CartPoleNoVel-v1": "CartPole-v1", "sb3_rtrl/PendulumNoVel-v1": "Pendulum-v1"}

if DELAYED_RECALL_ID not in gym.registry:
    gym.register(id=DELAYED_RECALL_ID, entry_point="sb3_rtrl.envs.memory:DelayedRecallEnv")
for _id, _base in NO_VELOCITY_IDS.items():
    if _id not in gym.registry:
        _spec = gym.spec(_base)
        gym.register(
            id=_id,
            entry_point="sb3_rtrl.envs.wrappers:make_no_velocity",
            kwargs={"env_id": _base},
            max_episode_steps=_spec.max_episode_steps,
            reward_threshold=_spec.reward_threshold,
        )

__all__ = ["DELAYED_RECALL_ID", "NO_VELOCITY_IDS", "DelayedRecallEnv", "MaskVelocityWrapper", "make_no_velocity"]
