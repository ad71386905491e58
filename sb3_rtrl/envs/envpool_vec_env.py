"""EnvPool's batched C++ environments behind SB3's VecEnv API (extra ``envpool``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn


def make_envpool_vec_env(task_id: str, num_envs: int, seed: int | None, engine_help: str = "", **kwargs: Any) -> VecEnv:
    """
    ``envpool.make(task_id, env_type="gymnasium", ...)`` as an :class:`EnvPoolVecEnv`.

    :param engine_help: what to install when EnvPool is there but the task's engine does not load (an ImportError)
    :param kwargs: the task's EnvPool options
    """
    try:
        import envpool
    except ImportError as err:
        raise ImportError("backend='envpool' needs EnvPool: pip install 'sb3-rtrl[envpool]'") from err
    try:
        pool = envpool.make(task_id, env_type="gymnasium", num_envs=num_envs, seed=seed or 0, **kwargs)
    except ImportError as err:
        raise ImportError(engine_help or str(err)) from err
    return EnvPoolVecEnv(pool)


class EnvPoolVecEnv(VecEnv):
    """
    An EnvPool batch (gymnasium API, synchronous) as an SB3 VecEnv: all environments step in one C++ call.

    SB3's semantics on top of EnvPool's: a finished environment is reset in the same step (one ``reset`` call for
    all that finished, not EnvPool's reset on the following step), its last observation in
    ``info["terminal_observation"]``, ``info["TimeLimit.truncated"]`` at a time limit. With lives (Atari's
    ``episodic_life``) a lost life ends the agent's episode and the game goes on; the game ends at its last life
    or its time limit, and only then is it reset and ``info["episode"]`` holds the true score and length (what
    SB3's Monitor records, EnvPool's unclipped ``info["reward"]`` summed). Python touches only the environments
    that finished in a step.

    :param pool: an ``envpool.make(..., env_type="gymnasium")`` environment (not its async mode)
    :param channels_last: present image observations ``(C, H, W)`` as ``(H, W, C)``, the layout of SB3's Atari
        and ProcGen wrappers
    """

    def __init__(self, pool: Any, channels_last: bool = True) -> None:
        self.pool = pool
        n = int(pool.config["num_envs"])
        space = pool.observation_space
        self._transpose = channels_last and len(space.shape) == 3
        if self._transpose:
            c, h, w = space.shape
            space = spaces.Box(0, 255, (h, w, c), dtype=space.dtype)
        super().__init__(n, space, pool.action_space)
        self._returns = np.zeros(n)
        self._lengths = np.zeros(n, dtype=np.int64)
        self._infos: list[dict[str, Any]] = [{} for _ in range(n)]
        self._touched = np.empty(0, dtype=np.int64)
        self._actions: np.ndarray | None = None
        self._start = time.time()

    def _layout(self, obs: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(obs.transpose(0, 2, 3, 1)) if self._transpose else obs

    def reset(self) -> VecEnvObs:
        obs, _ = self.pool.reset()
        self._returns[:] = 0.0
        self._lengths[:] = 0
        return self._layout(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        assert self._actions is not None, "step_async first"
        obs, reward, terminated, truncated, info = self.pool.step(self._actions)
        self._returns += info.get("reward", reward)
        self._lengths += 1
        for i in self._touched:  # the dicts handed out last step for finished environments
            self._infos[i] = {}
        done = terminated | truncated
        ended = np.flatnonzero(done)
        if ended.size:
            lives = info.get("lives")
            game_over = truncated | (terminated if lives is None else terminated & (lives <= 0))
            terminal = self._layout(obs[ended])
            for j, i in enumerate(ended):
                entry: dict[str, Any] = {
                    "terminal_observation": terminal[j],
                    "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                }
                if game_over[i]:
                    entry["episode"] = {
                        "r": float(self._returns[i]),
                        "l": int(self._lengths[i]),
                        "t": round(time.time() - self._start, 6),
                    }
                self._infos[i] = entry
            over = np.flatnonzero(game_over)
            if over.size:
                obs = obs.copy()
                obs[over] = self.pool.reset(over)[0]
                self._returns[over] = 0.0
                self._lengths[over] = 0
        self._touched = ended
        return self._layout(obs), reward.astype(np.float32), done, list(self._infos)

    def close(self) -> None:
        self.pool.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        if attr_name == "render_mode":
            return [None] * len(list(self._get_indices(indices)))
        raise AttributeError(f"EnvPoolVecEnv has no per-environment attribute {attr_name!r}")

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(f"EnvPoolVecEnv cannot set {attr_name!r} on its C++ environments")

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any) -> list:
        raise AttributeError(f"EnvPoolVecEnv cannot call {method_name!r} on its C++ environments")

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        # The episode statistics are Monitor's (true scores at the game's end), so SB3's evaluation may use them.
        return [wrapper_class is Monitor] * len(list(self._get_indices(indices)))

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs
