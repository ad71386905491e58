"""A gymnasium adapter over DeepMind Lab (the ``deepmind_lab`` module), with the paper's settings."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

# The paper's 9 actions as DeepMind Lab action vectors: (look left/right pixels, look down/up pixels,
# strafe left/right, move back/forward, fire, jump, crouch).
ACTION_SET = np.array(
    [
        (0, 0, 0, 1, 0, 0, 0),  # forward
        (0, 0, 0, -1, 0, 0, 0),  # backward
        (0, 0, -1, 0, 0, 0, 0),  # strafe left
        (0, 0, 1, 0, 0, 0, 0),  # strafe right
        (-20, 0, 0, 0, 0, 0, 0),  # look left
        (20, 0, 0, 0, 0, 0, 0),  # look right
        (-20, 0, 0, 1, 0, 0, 0),  # look left + forward
        (20, 0, 0, 1, 0, 0, 0),  # look right + forward
        (0, 0, 0, 0, 1, 0, 0),  # fire
    ],
    dtype=np.intc,
)
PAPER_LEVELS = {
    "rooms_select_nonmatching_object": "contributed/dmlab30/rooms_select_nonmatching_object",
    "rooms_watermaze": "contributed/dmlab30/rooms_watermaze",
    "rooms_keys_doors_puzzle": "contributed/dmlab30/rooms_keys_doors_puzzle",
}
INSTALL_HELP = (
    "DeepMind Lab (the Python module deepmind_lab) is not installed. It has no wheel on PyPI: build it from "
    "source (github.com/google-deepmind/lab, 'bazel build -c opt //python/pip_package:build_pip_package', "
    "then pip install the wheel it makes), or use a maintained packaging of it for your Python version."
)


class DMLabEnv(gym.Env):
    """
    One DeepMind Lab level as a gymnasium environment: the paper's 9 actions, 72x96 RGB observations,
    each action repeated 4 times with the observation taken as the pixel-wise max of the last 2 frames.

    :param level: a level path (``"contributed/dmlab30/rooms_watermaze"``) or a short paper level name
    :param action_repeat: frames each action is repeated
    :param height: observation height
    :param width: observation width
    :param config: more ``deepmind_lab.Lab`` config entries (strings)
    :param renderer: ``"hardware"`` or ``"software"``
    :param seed: seed of the first episode (later episodes draw theirs from ``np_random``)
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        level: str = "rooms_watermaze",
        action_repeat: int = 4,
        height: int = 72,
        width: int = 96,
        config: dict[str, str] | None = None,
        renderer: str = "hardware",
        seed: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        try:
            import deepmind_lab
        except ImportError as err:
            raise ImportError(INSTALL_HELP) from err
        if action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {action_repeat}")
        self.level = PAPER_LEVELS.get(level, level)
        self.action_repeat = action_repeat
        self.render_mode = render_mode
        lab_config = {"width": str(width), "height": str(height), **(config or {})}
        self._lab = deepmind_lab.Lab(self.level, ["RGB_INTERLEAVED"], config=lab_config, renderer=renderer)
        self.observation_space = spaces.Box(0, 255, shape=(height, width, 3), dtype=np.uint8)
        self.action_space = spaces.Discrete(len(ACTION_SET))
        self._first_seed = seed
        self._last_obs = np.zeros(self.observation_space.shape, dtype=np.uint8)

    def _frame(self) -> np.ndarray:
        return np.asarray(self._lab.observations()["RGB_INTERLEAVED"], dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed if seed is not None else self._first_seed)
        self._first_seed = None
        self._lab.reset(seed=int(self.np_random.integers(2**31 - 1)))
        self._last_obs = self._frame()
        return self._last_obs, {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        reward, frames = 0.0, []
        for _ in range(self.action_repeat):
            reward += float(self._lab.step(ACTION_SET[int(action)], num_steps=1))
            if not self._lab.is_running():
                break
            frames.append(self._frame())
        terminated = not self._lab.is_running()
        if frames:
            self._last_obs = np.max(np.stack(frames[-2:]), axis=0)
        return self._last_obs, reward, terminated, False, {}

    def render(self) -> np.ndarray | None:
        return self._last_obs if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        self._lab.close()


def make_dmlab_env(
    level: str = "rooms_watermaze",
    n_envs: int = 32,
    seed: int | None = None,
    monitor_dir: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
):
    """
    A VecEnv of a DeepMind Lab level with the paper's settings (see :class:`DMLabEnv`).

    :param level: a level path or a short paper level name (``PAPER_LEVELS``)
    :param n_envs: number of environments
    :param seed: random seed
    :param monitor_dir: folder for Monitor logs
    :param env_kwargs: more keyword arguments for :class:`DMLabEnv`
    """
    from stable_baselines3.common.env_util import make_vec_env

    return make_vec_env(
        DMLabEnv, n_envs=n_envs, seed=seed, monitor_dir=monitor_dir, env_kwargs=dict(level=level, **(env_kwargs or {}))
    )
