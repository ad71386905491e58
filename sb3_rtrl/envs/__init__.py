"""Environments: built-in memory tasks (registered with gymnasium on import), and factories for the
paper's Atari, ProcGen and DeepMind Lab settings (their packages are optional extras)."""

import gymnasium as gym

from sb3_rtrl.envs.factory import DELAYED_RECALL_ID, check_env_id, make_env
from sb3_rtrl.envs.memory import DelayedRecallEnv
from sb3_rtrl.envs.wrappers import MaskVelocityWrapper, make_no_velocity

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


def make_atari_env(*args, **kwargs):
    """See :func:`sb3_rtrl.envs.atari.make_atari_env`."""
    from sb3_rtrl.envs.atari import make_atari_env as make

    return make(*args, **kwargs)


def make_procgen_env(*args, **kwargs):
    """See :func:`sb3_rtrl.envs.procgen.make_procgen_env`."""
    from sb3_rtrl.envs.procgen import make_procgen_env as make

    return make(*args, **kwargs)


def make_dmlab_env(*args, **kwargs):
    """See :func:`sb3_rtrl.envs.dmlab.make_dmlab_env`."""
    from sb3_rtrl.envs.dmlab import make_dmlab_env as make

    return make(*args, **kwargs)


__all__ = [
    "DELAYED_RECALL_ID",
    "NO_VELOCITY_IDS",
    "DelayedRecallEnv",
    "MaskVelocityWrapper",
    "check_env_id",
    "make_atari_env",
    "make_dmlab_env",
    "make_env",
    "make_no_velocity",
    "make_procgen_env",
]
