"""
A STAND-IN for DeepMind Lab's ``deepmind_lab`` module, for tests only: DeepMind Lab cannot be installed
on this project's machines. It implements just the calls sb3_rtrl's adapter makes, with a toy world:
the screen brightness follows the agent's x position; moving forward past x = 3 gives reward 1; an
episode lasts ``episode_frames`` frames. It checks the arguments the real module would reject.
"""

import numpy as np

calls: list[tuple] = []  # a log of the calls, for tests to inspect


class Lab:
    def __init__(self, level, observations, config=None, renderer="hardware", level_cache=None):
        if not isinstance(level, str) or not level:
            raise ValueError("level must be a non-empty string")
        if list(observations) != ["RGB_INTERLEAVED"]:
            raise ValueError(f"stand-in supports only RGB_INTERLEAVED, got {observations}")
        config = dict(config or {})
        if not all(isinstance(v, str) for v in config.values()):
            raise TypeError("config values must be strings (as deepmind_lab requires)")
        self.width, self.height = int(config.get("width", 320)), int(config.get("height", 240))
        self.episode_frames = int(config.get("episode_frames", 60))
        self.level, self.renderer = level, renderer
        self._running, self._frame, self._x = False, 0, 0
        calls.append(("init", level, dict(config)))

    def reset(self, episode=-1, seed=None):
        self._running, self._frame, self._x = True, 0, 0
        self._rng = np.random.default_rng(seed)
        calls.append(("reset", seed))
        return True

    def step(self, action, num_steps=1):
        action = np.asarray(action)
        if action.shape != (7,) or action.dtype != np.intc:
            raise ValueError(f"action must be a (7,) array of intc, got {action.shape} {action.dtype}")
        if not self._running:
            raise RuntimeError("step() on a finished episode")
        reward = 0.0
        for _ in range(num_steps):
            self._frame += 1
            self._x += int(action[3])
            if self._x > 3:
                reward, self._x = reward + 1.0, 0
            if self._frame >= self.episode_frames:
                self._running = False
                break
        calls.append(("step", tuple(action.tolist()), num_steps))
        return reward

    def observations(self):
        if not self._running:
            raise RuntimeError("observations() on a finished episode")
        value = (self._x * 40 + self._frame) % 256
        frame = np.full((self.height, self.width, 3), value, dtype=np.uint8)
        frame[0, 0, 0] = self._frame % 256  # differs from frame to frame: lets tests see the max of 2 frames
        return {"RGB_INTERLEAVED": frame}

    def is_running(self):
        return self._running

    def close(self):
        calls.append(("close",))
