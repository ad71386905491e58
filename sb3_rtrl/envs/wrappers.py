"""Wrappers that turn fully observed control tasks into partially observed ones."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

# Indices of the velocity entries in the observations of gymnasium's classic-control tasks.
VELOCITY_INDICES: dict[str, list[int]] = {
    "CartPole-v1": [1, 3],
    "Pendulum-v1": [2],
    "MountainCar-v0": [1],
    "MountainCarContinuous-v0": [1],
    "Acrobot-v1": [4, 5],
}


class MaskVelocityWrapper(gym.ObservationWrapper):
    """
    Zero the velocity entries of a classic-control observation, so that the task needs memory.

    :param env: a CartPole-v1, Pendulum-v1, MountainCar(Continuous), or Acrobot-v1 environment
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        env_id = env.unwrapped.spec.id if env.unwrapped.spec is not None else None
        if env_id not in VELOCITY_INDICES:
            raise ValueError(f"MaskVelocityWrapper knows the velocities of {sorted(VELOCITY_INDICES)}, not {env_id!r}")
        space = env.observation_space
        assert space.shape is not None and space.dtype is not None, "a Box observation space"
        self.mask = np.ones(space.shape, dtype=space.dtype)
        self.mask[VELOCITY_INDICES[env_id]] = 0

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation * self.mask


def make_no_velocity(env_id: str, **kwargs) -> gym.Env:
    """``gym.make(env_id)`` with its velocities masked (the entry point of the ``*NoVel`` ids)."""
    return MaskVelocityWrapper(gym.make(env_id, **kwargs))
