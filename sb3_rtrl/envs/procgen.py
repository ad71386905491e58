"""ProcGen as an SB3 VecEnv with the paper's settings: package ``procgen2``, or EnvPool's C++ engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from sb3_rtrl.common.arguments import check_int

GAMES = (
    "bigfish",
    "bossfight",
    "caveflyer",
    "chaser",
    "climber",
    "coinrun",
    "dodgeball",
    "fruitbot",
    "heist",
    "jumper",
    "leaper",
    "maze",
    "miner",
    "ninja",
    "plunder",
    "starpilot",
)
MEMORY_GAMES = ("caveflyer", "dodgeball", "heist", "jumper", "maze", "miner")
EXPLORATION_GAMES = ("coinrun", "caveflyer", "leaper", "jumper", "maze", "heist", "climber", "ninja")
BACKENDS = ("procgen2", "envpool")
QT_HELP = (
    "EnvPool's ProcGen engine needs the Qt 5 runtime (libQt5Gui.so.5): install it with the system's packages "
    "(apt install qtbase5-dev, dnf install qt5-qtbase), or pip install PyQt5-Qt5 and put its PyQt5/Qt5/lib "
    "folder on LD_LIBRARY_PATH before starting Python"
)
INSTALL_HELP = "ProcGen needs the package procgen2 (with gym3 and gym; it pins numpy < 2): pip install 'sb3-rtrl[procgen]'"


def check_procgen_args(game: str, distribution_mode: str) -> None:
    """
    Reject game and mode names that procgen would kill the interpreter over (its C++ aborts on them).

    :param game: a ProcGen game
    :param distribution_mode: "easy", "hard", "memory" or "exploration"
    """
    if game not in GAMES:
        raise ValueError(f"unknown ProcGen game {game!r}; one of {', '.join(GAMES)}")
    allowed = {"easy": GAMES, "hard": GAMES, "memory": MEMORY_GAMES, "exploration": EXPLORATION_GAMES}
    if distribution_mode not in allowed:
        raise ValueError(f"distribution_mode must be one of {sorted(allowed)}, got {distribution_mode!r}")
    if game not in allowed[distribution_mode]:
        raise ValueError(
            f"ProcGen's {distribution_mode!r} mode exists only for {', '.join(allowed[distribution_mode])}, not {game!r}"
        )


class ProcgenVecEnv(VecEnv):
    """
    ProcGen's vectorised gym3 environment as an SB3 VecEnv: 64x64 RGB observations, 15 actions.

    gym3 resets finished episodes by itself, so the true last observation of an episode is not
    available (``terminal_observation`` is absent from ``infos``); episode ends are ``dones``.

    :param num_envs: number of environments
    :param game: ProcGen game (``"chaser"`` in the paper)
    :param distribution_mode: "easy", "hard" (paper), "memory" (a few games) or "exploration"
    :param num_levels: number of training levels (500 in the paper; 0 for unlimited)
    :param start_level: first level seed
    :param seed: random seed of level sampling
    :param kwargs: more ``ProcgenGym3Env`` options
    """

    def __init__(
        self,
        num_envs: int,
        game: str = "chaser",
        distribution_mode: str = "hard",
        num_levels: int = 500,
        start_level: int = 0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        check_procgen_args(game, distribution_mode)
        try:
            from procgen import ProcgenGym3Env
        except ImportError as err:
            raise ImportError(INSTALL_HELP) from err
        if distribution_mode == "exploration":  # it sets the levels itself
            kwargs.update(distribution_mode=distribution_mode)
        else:
            kwargs.update(distribution_mode=distribution_mode, num_levels=num_levels, start_level=start_level)
        self.game = game
        self.gym3_env = ProcgenGym3Env(num=num_envs, env_name=game, rand_seed=seed, **kwargs)
        observation_space = spaces.Box(0, 255, shape=(64, 64, 3), dtype=np.uint8)
        action_space = spaces.Discrete(15)
        self.render_mode = None  # read by VecEnv.__init__
        super().__init__(num_envs, observation_space, action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        # gym3 environments cannot be reset: the current observation starts the run.
        _, obs, _ = self.gym3_env.observe()
        return obs["rgb"].copy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int32).reshape(self.num_envs)

    def step_wait(self):
        assert self._actions is not None, "step_async first"
        self.gym3_env.act(self._actions)
        reward, obs, first = self.gym3_env.observe()
        return obs["rgb"].copy(), reward.astype(np.float32), first.astype(bool), [{} for _ in range(self.num_envs)]

    def close(self) -> None:
        self.gym3_env = None  # gym3 has no close; release it

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        raise NotImplementedError("ProcgenVecEnv has no per-environment attributes to set")

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        raise NotImplementedError("ProcgenVecEnv has no per-environment methods")

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._get_indices(indices))

    def _get_indices(self, indices: Any) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else list(indices)


def make_procgen_env(
    game: str = "chaser",
    n_envs: int = 32,
    distribution_mode: str = "hard",
    num_levels: int = 500,
    seed: int | None = None,
    monitor_dir: str | None = None,
    backend: str = "procgen2",
    **kwargs: Any,
) -> VecEnv:
    """
    A monitored VecEnv of a ProcGen game as the paper ran it (chaser, hard, 500 levels, no frame stack,
    no action repeat). See :class:`ProcgenVecEnv`; the "memory" mode is there for its six games.

    :param monitor_dir: folder for the VecMonitor's log
    :param backend: ``"procgen2"`` (gym3, which resets episodes itself: no terminal observation) or ``"envpool"``
        (EnvPool's C++ engine, extra ``envpool``; the easy and hard modes; the true terminal observation; it
        records the episode statistics itself, so no ``monitor_dir``). EnvPool's ProcGen needs the system Qt 5
        runtime (``libQt5Gui.so.5``)
    """
    import os

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    n_envs = check_int("n_envs", n_envs, 1)
    if backend == "envpool":
        return _make_envpool_procgen(game, n_envs, distribution_mode, num_levels, seed, monitor_dir, kwargs)

    env = ProcgenVecEnv(n_envs, game, distribution_mode, num_levels, seed=seed, **kwargs)
    filename = None
    if monitor_dir is not None:
        os.makedirs(monitor_dir, exist_ok=True)
        filename = os.path.join(monitor_dir, "procgen")
    return VecMonitor(env, filename=filename)


def _make_envpool_procgen(
    game: str,
    n_envs: int,
    distribution_mode: str,
    num_levels: int,
    seed: int | None,
    monitor_dir: str | None,
    kwargs: dict[str, Any],
) -> VecEnv:
    check_procgen_args(game, distribution_mode)
    if distribution_mode not in ("easy", "hard"):
        raise ValueError(f"backend='envpool' has ProcGen's easy and hard modes, not {distribution_mode!r}")
    if monitor_dir is not None:
        raise ValueError("backend='envpool' records the episode statistics itself: monitor_dir is for backend='procgen2'")
    from sb3_rtrl.envs.envpool_vec_env import make_envpool_vec_env

    task = f"{game.capitalize()}{distribution_mode.capitalize()}-v0"
    return make_envpool_vec_env(task, n_envs, seed, engine_help=QT_HELP, num_levels=num_levels, **kwargs)
