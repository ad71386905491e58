"""Small memory tasks: a cue shown at the start of an episode must be recalled after a delay."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

#: the observation forms of :class:`DelayedRecallEnv`
OBSERVATIONS = ("vector", "image", "dict")
#: the side of its image observation: the least that SB3's NatureCNN takes
IMAGE_SIZE = 36


class DelayedRecallEnv(gym.Env):
    """
    Recall a cue after a delay, the memory test of a T-maze without the maze.

    At step 0 the observation shows one of ``num_cues`` cues (one-hot). For the next ``delay - 1`` steps
    it is blank (optionally with noise); at step ``delay`` a query flag is set and the action taken must
    name the cue: reward +1 if it does, -1 if not, and the episode ends with ``info["is_success"]``.
    Actions before the query do nothing. A memoryless policy succeeds with probability ``1 / num_cues``.

    Observation (``observation="vector"``): ``[cue one-hot (num_cues), query flag, noise (noise_dims)]``. The same
    entries as an image (``"image"``: a ``(36, 36, 1)`` uint8 grid of grey squares, one per entry, at the least size
    SB3's ``NatureCNN`` takes, for ``CnnLstmPolicy``) or as a Dict (``"dict"``: ``"cue"``, ``"query"`` and, with noise,
    ``"noise"``, for ``MultiInputLstmPolicy``): one task for each kind of policy.

    :param delay: steps between the cue and the query (the memory span needed), >= 1
    :param num_cues: number of different cues and actions, >= 2
    :param noise_dims: extra observation entries of uniform noise in [-1, 1] (distractors)
    :param render_mode: None or ``"rgb_array"`` (the observation drawn as a strip of grey cells)
    :param observation: ``"vector"``, ``"image"`` or ``"dict"``
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        delay: int = 40,
        num_cues: int = 2,
        noise_dims: int = 0,
        render_mode: str | None = None,
        observation: str = "vector",
    ) -> None:
        if not isinstance(delay, (int, np.integer)) or delay < 1:
            raise ValueError(f"delay must be an integer >= 1, got {delay!r}")
        if not isinstance(num_cues, (int, np.integer)) or num_cues < 2:
            raise ValueError(f"num_cues must be an integer >= 2, got {num_cues!r}")
        if not isinstance(noise_dims, (int, np.integer)) or noise_dims < 0:
            raise ValueError(f"noise_dims must be an integer >= 0, got {noise_dims!r}")
        if observation not in OBSERVATIONS:
            raise ValueError(f"observation must be one of {OBSERVATIONS}, got {observation!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.delay = int(delay)
        self.num_cues = int(num_cues)
        self.noise_dims = int(noise_dims)
        self.observation = observation
        size = self.num_cues + 1 + self.noise_dims
        self._obs_size = size
        self._grid = math.ceil(math.sqrt(size))
        if observation == "image" and self._grid > IMAGE_SIZE // 2:
            raise ValueError(f"observation='image' draws at most {(IMAGE_SIZE // 2) ** 2} entries, got {size}")
        self.observation_space: spaces.Space = spaces.Box(-1.0, 1.0, shape=(size,), dtype=np.float32)
        if observation == "image":
            self.observation_space = spaces.Box(0, 255, shape=(IMAGE_SIZE, IMAGE_SIZE, 1), dtype=np.uint8)
        elif observation == "dict":
            parts: dict[str, spaces.Space] = {"cue": spaces.Box(0.0, 1.0, shape=(self.num_cues,), dtype=np.float32)}
            parts["query"] = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
            if self.noise_dims:
                parts["noise"] = spaces.Box(-1.0, 1.0, shape=(self.noise_dims,), dtype=np.float32)
            self.observation_space = spaces.Dict(parts)
        self.action_space = spaces.Discrete(self.num_cues)
        self._cue = 0
        self._t = 0
        self._last = np.zeros(size, dtype=np.float32)

    def _vector(self) -> np.ndarray:
        obs = np.zeros(self._obs_size, dtype=np.float32)
        if self._t == 0:
            obs[self._cue] = 1.0
        if self._t == self.delay:
            obs[self.num_cues] = 1.0
        if self.noise_dims:
            obs[self.num_cues + 1 :] = self.np_random.uniform(-1.0, 1.0, self.noise_dims)
        return obs

    def _observe(self, vector: np.ndarray) -> Any:
        """The observation in this env's form, from its entries as a vector."""
        if self.observation == "image":
            # Entry i fills square i of a grid read row by row, its grey level from -1 (black) to 1 (white).
            cell = IMAGE_SIZE // self._grid
            squares = np.zeros(self._grid * self._grid, dtype=np.uint8)
            squares[: vector.size] = np.round((vector + 1.0) * 127.5).astype(np.uint8)
            image = np.zeros((IMAGE_SIZE, IMAGE_SIZE, 1), dtype=np.uint8)
            block = np.kron(squares.reshape(self._grid, self._grid), np.ones((cell, cell), dtype=np.uint8))
            image[: block.shape[0], : block.shape[1], 0] = block
            return image
        if self.observation == "dict":
            parts = {"cue": vector[: self.num_cues].copy(), "query": vector[self.num_cues : self.num_cues + 1].copy()}
            if self.noise_dims:
                parts["noise"] = vector[self.num_cues + 1 :].copy()
            return parts
        return vector

    def _obs(self) -> Any:
        self._last = self._vector()
        return self._observe(self._last)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self._cue = int(self.np_random.integers(self.num_cues))
        self._t = 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        if not self.action_space.contains(np.int64(action)):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        if self._t == self.delay:
            success = int(action) == self._cue
            self._t += 1
            return self._obs_terminal(), 1.0 if success else -1.0, True, False, {"is_success": success}
        self._t += 1
        return self._obs(), 0.0, False, False, {}

    def _obs_terminal(self) -> Any:
        return self._observe(np.zeros(self._obs_size, dtype=np.float32))

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        # The entries last observed: drawing them again would show other noise and move the episode's generator.
        obs = self._last if self._t <= self.delay else np.zeros(self._obs_size, dtype=np.float32)
        cells = ((obs + 1.0) * 127.5).astype(np.uint8)
        return np.repeat(np.repeat(cells[None, :, None], 16, axis=0), 16, axis=1).repeat(3, axis=2)
