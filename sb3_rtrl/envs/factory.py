"""One builder of a VecEnv from a task id, for every kind of task the package runs."""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
from gymnasium import spaces
from gymnasium.wrappers import FlattenObservation
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv

DELAYED_RECALL_ID = "sb3_rtrl/DelayedRecall-v0"


def is_atari_id(env_id: str) -> bool:
    """An Atari id: ``ALE/<Game>-v5`` or ``<Game>NoFrameskip-v4``."""
    return env_id.startswith("ALE/") or env_id.endswith("NoFrameskip-v4")


def check_env_id(env_id: str) -> None:
    """
    Raise ValueError with the known ids when ``env_id`` is not registered with gymnasium. An id of gymnasium's form
    ``module:Name-v0`` imports ``module`` first, as ``gymnasium.make`` does, so that a module of the user's registers
    its tasks (in every process that builds them).
    """
    module, _, name = env_id.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ValueError(f"environment id {env_id!r}: its module {module!r} does not import ({err})") from err
    try:
        gym.spec(name)
    except gym.error.Error as err:
        raise ValueError(f"unknown environment id {env_id!r} ({err}); e.g. {DELAYED_RECALL_ID} or CartPole-v1") from err


def flatten_tuple_observations(env: gym.Env) -> gym.Env:
    """
    ``env`` with a Tuple observation space flattened to a Box (gymnasium's ``FlattenObservation``: one-hot for
    discrete parts); other envs unchanged. SB3 takes no Tuple observations (POPGym's AutoencodeEasy has one).
    """
    return FlattenObservation(env) if isinstance(env.observation_space, spaces.Tuple) else env


def make_env(
    env_id: str,
    n_envs: int = 1,
    seed: int | None = None,
    monitor_dir: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    frame_stack: int = 4,
) -> VecEnv:
    """
    A VecEnv of the task ``env_id``, whatever its kind.

    - ``procgen:<game>``: :func:`sb3_rtrl.envs.make_procgen_env` (``env_kwargs`` are its keywords);
    - ``dmlab:<level>``: :func:`sb3_rtrl.envs.make_dmlab_env`;
    - ``ALE/<Game>-v5`` or ``<Game>NoFrameskip-v4``: :func:`sb3_rtrl.envs.make_atari_env`, the paper's wrappers;
    - ``popgym-...`` (POPGym, registered on import of ``popgym``) and any other gymnasium id (``module:Name-v0``
      imports ``module`` first): SB3's ``make_vec_env``, Tuple observations flattened; the delayed recall's monitor
      also records ``is_success``.

    :param env_id: the task
    :param n_envs: environments
    :param seed: seed of the first environment (the others get the next ones)
    :param monitor_dir: where the Monitor writes its episode logs (None: not written)
    :param env_kwargs: keywords of the environment (of the factory for ProcGen)
    :param frame_stack: frames stacked for Atari
    :return: the VecEnv
    """
    env_kwargs = dict(env_kwargs or {})
    if env_id.startswith("procgen:"):
        from sb3_rtrl.envs.procgen import make_procgen_env

        return make_procgen_env(env_id.split(":", 1)[1], n_envs=n_envs, seed=seed, monitor_dir=monitor_dir, **env_kwargs)
    if env_id.startswith("dmlab:"):
        from sb3_rtrl.envs.dmlab import make_dmlab_env

        level = env_id.split(":", 1)[1]
        return make_dmlab_env(level, n_envs=n_envs, seed=seed, monitor_dir=monitor_dir, env_kwargs=env_kwargs)
    if is_atari_id(env_id):
        from sb3_rtrl.envs.atari import make_atari_env

        return make_atari_env(
            env_id, n_envs=n_envs, seed=seed, frame_stack=frame_stack, monitor_dir=monitor_dir, env_kwargs=env_kwargs
        )
    if env_id.startswith("popgym-"):
        try:
            import popgym  # noqa: F401  (registers the popgym- ids)
        except ImportError as err:
            raise ImportError("POPGym tasks need popgym: pip install 'sb3-rtrl[popgym]'") from err
    check_env_id(env_id)
    return make_vec_env(
        env_id,
        n_envs=n_envs,
        seed=seed,
        env_kwargs=env_kwargs,
        monitor_dir=monitor_dir,
        monitor_kwargs=dict(info_keywords=("is_success",)) if env_id == DELAYED_RECALL_ID else None,
        wrapper_class=flatten_tuple_observations,
    )
