"""Small memory tasks: a cue shown at the start of an episode must be recalled after a delay."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class DelayedRecallEnv(gym.Env):
    """
    Recall a cue after a delay, the memory test of a T-maze without the maze.

    At step 0 the observation shows one of ``num_cues`` cues (one-hot). For the next ``delay - 1`` steps
    it is blank (optionally with noise); at step ``delay`` a query flag is set and the action taken must
    name the cue: reward +1 if it does, -1 if not, and the episode ends with ``info["is_success"]``.
    Actions before the query do nothing. A memoryless policy succeeds with probability ``1 / num_cues``.

    Observation: ``[cue one-hot (num_cues), query flag, noise (noise_dims)]``.

    :param delay: steps between the cue and the query (the memory span needed), >= 1
    :param num_cues: number of different cues and actions, >= 2
    :param noise_dims: extra observation entries of uniform noise in [-1, 1] (distractors)
    :param render_mode: None or ``"rgb_array"`` (the observation drawn as a strip of grey cells)
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, delay: int = 40, num_cues: int = 2, noise_dims: int = 0, render_mode: str | None = None) -> None:
        if not isinstance(delay, (int, np.integer)) or delay < 1:
            raise ValueError(f"delay must be an integer >= 1, got {delay!r}")
        if not isinstance(num_cues, (int, np.integer)) or num_cues < 2:
            raise ValueError(f"num_cues must be an integer >= 2, got {num_cues!r}")
        if not isinstance(noise_dims, (int, np.integer)) or noise_dims < 0:
            raise ValueError(f"noise_dims must be an integer >= 0, got {noise_dims!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.delay = int(delay)
        self.num_cues = int(num_cues)
        self.noise_dims = int(noise_dims)
        size = self.num_cues + 1 + self.noise_dims
        self._obs_size = size
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(size,), dtype=np.float32)
        self.action_space = spaces.Discrete(self.num_cues)
        self._cue = 0
        self._t = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self._obs_size, dtype=np.float32)
        if self._t == 0:
            obs[self._cue] = 1.0
        if self._t == self.delay:
            obs[self.num_cues] = 1.0
        if self.noise_dims:
            obs[self.num_cues + 1 :] = self.np_random.uniform(-1.0, 1.0, self.noise_dims)
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._cue = int(self.np_random.integers(self.num_cues))
        self._t = 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if not self.action_space.contains(np.int64(action)):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        if self._t == self.delay:
            success = int(action) == self._cue
            self._t += 1
            return self._obs_terminal(), 1.0 if success else -1.0, True, False, {"is_success": success}
        self._t += 1
        return self._obs(), 0.0, False, False, {}

    def _obs_terminal(self) -> np.ndarray:
        return np.zeros(self._obs_size, dtype=np.float32)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        obs = self._obs() if self._t <= self.delay else self._obs_terminal()
        cells = ((obs + 1.0) * 127.5).astype(np.uint8)
        return np.repeat(np.repeat(cells[None, :, None], 16, axis=0), 16, axis=1).repeat(3, axis=2)
