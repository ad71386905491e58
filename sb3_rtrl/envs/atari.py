"""Atari with the paper's settings: ale-py with SB3's wrappers, or EnvPool's C++ engine (the ROMs ship with both)."""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.env_util import make_atari_env as sb3_make_atari_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecFrameStack

from sb3_rtrl.common.arguments import check_int


def atari_env_id(game: str) -> str:
    """``"Breakout"`` -> ``"ALE/Breakout-v5"``; a full id is returned unchanged."""
    return game if "/" in game or game.endswith("-v4") else f"ALE/{game}-v5"


BACKENDS = ("ale", "envpool")


def envpool_task_id(game: str) -> str:
    """``"Breakout"``, ``"ALE/Breakout-v5"`` or ``"BreakoutNoFrameskip-v4"`` -> EnvPool's ``"Breakout-v5"``."""
    name = game.split("/")[-1]
    for suffix in ("NoFrameskip-v4", "-v4", "-v5"):
        name = name.removesuffix(suffix)
    return f"{name}-v5"


def make_atari_env(
    game: str = "Breakout",
    n_envs: int = 32,
    seed: int | None = None,
    frame_stack: int = 4,
    vec_env_cls: type[DummyVecEnv] | type[SubprocVecEnv] | None = None,
    monitor_dir: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    backend: str = "ale",
) -> VecEnv:
    """
    A VecEnv of an Atari game as the paper ran it: no-op reset (up to 30), max-and-skip 4, a lost life
    ends the episode for the agent (so the recurrent state and the sensitivities are reset then), fire on
    reset, 84x84 grey frames, rewards clipped to their sign, 4 stacked frames, the minimal action set.

    ``ALE/<Game>-v5`` already skips frames and repeats actions at random; both are switched off here
    (``frameskip=1``, ``repeat_action_probability=0``) so that SB3's AtariWrapper alone sets them, as with
    the ``NoFrameskip-v4`` ids the paper used.

    :param game: a game name (``"Breakout"``) or a full id (``"ALE/Breakout-v5"``, ``"BreakoutNoFrameskip-v4"``)
    :param n_envs: number of environments
    :param seed: random seed
    :param frame_stack: frames stacked per observation
    :param vec_env_cls: DummyVecEnv (default) or SubprocVecEnv
    :param monitor_dir: folder for Monitor logs (true game scores, before reward clipping)
    :param env_kwargs: more keyword arguments for ``gym.make`` (``envpool.make`` with ``backend="envpool"``)
    :param backend: ``"ale"`` (ale-py with SB3's wrappers, one Python object per environment) or ``"envpool"``
        (EnvPool's C++ engine stepping the batch in one call, extra ``envpool``): the same settings, observation
        shape, action set and episode ends; EnvPool presses fire at a game's reset, not after each lost life, and
        reports the true scores in ``info["episode"]`` itself, so it takes neither ``vec_env_cls`` nor
        ``monitor_dir``
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    n_envs = check_int("n_envs", n_envs, 1)
    if backend == "envpool":
        return _make_envpool_atari(game, n_envs, seed, frame_stack, vec_env_cls, monitor_dir, env_kwargs)
    try:
        import ale_py  # noqa: F401  (registers the ALE ids)
    except ImportError as err:
        raise ImportError("Atari needs ale-py and OpenCV: pip install 'sb3-rtrl[atari]'") from err
    import gymnasium as gym

    gym.register_envs(ale_py)
    env_id = atari_env_id(game)
    kwargs: dict[str, Any] = {"full_action_space": False}
    if env_id.startswith("ALE/"):
        kwargs.update(frameskip=1, repeat_action_probability=0.0)
    kwargs.update(env_kwargs or {})
    env = sb3_make_atari_env(
        env_id,
        n_envs=n_envs,
        seed=seed,
        env_kwargs=kwargs,
        vec_env_cls=vec_env_cls,
        monitor_dir=monitor_dir,
        wrapper_kwargs=dict(noop_max=30, frame_skip=4, screen_size=84, terminal_on_life_loss=True, clip_reward=True),
    )
    return VecFrameStack(env, frame_stack) if frame_stack > 1 else env


def _make_envpool_atari(
    game: str,
    n_envs: int,
    seed: int | None,
    frame_stack: int,
    vec_env_cls: type | None,
    monitor_dir: str | None,
    env_kwargs: dict[str, Any] | None,
) -> VecEnv:
    if vec_env_cls is not None or monitor_dir is not None:
        raise ValueError(
            "backend='envpool' steps the batch in C++ and records the episode scores itself: "
            "vec_env_cls and monitor_dir are for backend='ale'"
        )
    from sb3_rtrl.envs.envpool_vec_env import make_envpool_vec_env

    # The ale backend's settings in EnvPool's words: sticky actions off, the minimal action set.
    kwargs: dict[str, Any] = dict(
        episodic_life=True,
        reward_clip=True,
        noop_max=30,
        frame_skip=4,
        img_height=84,
        img_width=84,
        gray_scale=True,
        stack_num=frame_stack,
        use_fire_reset=True,
        repeat_action_probability=0.0,
        full_action_space=False,
    )
    kwargs.update(env_kwargs or {})
    return make_envpool_vec_env(envpool_task_id(game), n_envs, seed, **kwargs)
