"""One run of ``compare``: build the task and the learner, train, and evaluate greedily along the way."""

from __future__ import annotations

import copy
import os
import signal
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.vec_env import (
    VecEnv,
    VecNormalize,
    VecTransposeImage,
    is_vecenv_wrapped,
    sync_envs_normalization,
)

from sb3_rtrl import envs
from sb3_rtrl.cli.compare.learners import import_algorithm
from sb3_rtrl.envs.factory import is_atari_id

MULTI_INPUT = {"MlpPolicy": "MultiInputPolicy", "MlpLstmPolicy": "MultiInputLstmPolicy"}
CNN = {"MlpPolicy": "CnnPolicy", "MlpLstmPolicy": "CnnLstmPolicy"}


def policy_for(policy: str, observation_space: gym.Space) -> str:
    """
    The policy a run uses for these observations: an ``Mlp`` policy becomes its ``MultiInput`` variant for Dict
    observations and its ``Cnn`` variant for images (SB3's ``is_image_space``), as no ``Mlp`` policy takes them whole;
    other names as given.
    """
    if isinstance(observation_space, gym.spaces.Dict):
        return MULTI_INPUT.get(policy, policy)
    if is_image_space(observation_space, check_channels=False):
        return CNN.get(policy, policy)
    return policy


@dataclass
class RunSpec:
    """
    What one run trains and how it is measured.

    :param learner: the learner's name (for the report)
    :param algorithm: ``"module:Class"`` of its algorithm
    :param env_id: a gymnasium id (``popgym-...`` ids import popgym, ``module:Name-v0`` ids their module; ``ALE/...``
        and ``...NoFrameskip-v4`` use the paper's Atari stack; ``procgen:<game>`` a ProcGen game)
    :param seed: random seed
    :param steps: env steps to train for (the same for every learner)
    :param n_envs: parallel environments
    :param policy: policy name
    :param kwargs: the algorithm's keyword arguments, the learner's fixed ones included
    :param normalize: wrap in VecNormalize (rl-zoo3's ``normalize: true``), or with these keywords of it (rl-zoo3's
        ``normalize: "{'norm_obs': False, 'norm_reward': True}"``)
    :param frame_stack: frames stacked (Atari)
    :param env_kwargs: keyword arguments of the task's constructor (rl-zoo3's ``env_kwargs``; gymnasium ids only)
    :param eval_every: env steps between greedy evaluations
    :param eval_episodes: episodes per evaluation along the way
    :param final_eval_episodes: episodes of the evaluation at the end
    :param source: where the hyperparameters came from, for the report
    :param overrides: the ``--set`` values applied over them, for the report
    :param save_dir: folder for the run's Monitor logs and, at the end, its model (``model.zip``) and, with
        ``normalize``, the VecNormalize statistics (``vecnormalize.pkl``); None: nothing
    :param unset: the ``--unset`` keys removed from the hyperparameters (``"key"`` or ``"key.subkey"``), for the report
    """

    learner: str
    algorithm: str
    env_id: str
    seed: int
    steps: int
    n_envs: int
    policy: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    normalize: bool | dict[str, Any] = False
    frame_stack: int = 4
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    eval_every: int = 10_000
    eval_episodes: int = 10
    final_eval_episodes: int = 30
    source: str = "defaults"
    overrides: dict[str, Any] = field(default_factory=dict)
    save_dir: str | None = None
    unset: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    """
    What a run measured. ``points`` are ``(env steps, training seconds, mean return, std)`` of each greedy
    evaluation (training seconds exclude evaluation time); ``final_success`` is the share of the final evaluation's
    episodes that ended with ``info["is_success"]`` true (None where the task reports no success); ``error`` is set
    when the run failed.
    """

    spec: RunSpec
    points: list[tuple[int, float, float, float]] = field(default_factory=list)
    final_mean: float = float("nan")
    final_std: float = float("nan")
    final_success: float | None = None
    train_seconds: float = float("nan")
    steps_done: int = 0
    error: str | None = None

    @property
    def steps_per_second(self) -> float:
        return self.steps_done / self.train_seconds if self.train_seconds > 0 else float("nan")


def make_env(
    env_id: str,
    n_envs: int,
    seed: int,
    frame_stack: int = 4,
    env_kwargs: dict[str, Any] | None = None,
    monitor_dir: str | None = None,
) -> VecEnv:
    """A run's VecEnv (:func:`sb3_rtrl.envs.make_env`); ``env_kwargs`` for gymnasium ids only, as rl-zoo3's."""
    if env_kwargs and (env_id.startswith(("procgen:", "dmlab:")) or is_atari_id(env_id)):
        raise ValueError(f"env_kwargs are passed to gymnasium ids only, not to {env_id}")
    return envs.make_env(
        env_id, n_envs=n_envs, seed=seed, monitor_dir=monitor_dir, env_kwargs=env_kwargs, frame_stack=frame_stack
    )


def evaluate(model: Any, env: VecEnv, episodes: int) -> tuple[float, float, float | None]:
    """
    Greedy evaluation (SB3's ``evaluate_policy``): the mean and std of the episode returns, and the share of
    episodes that ended with ``info["is_success"]`` true (None if the task reports no success).
    """
    successes: list[bool] = []

    def record(local_vars: dict[str, Any], _globals: dict[str, Any]) -> None:
        if local_vars["done"] and "is_success" in local_vars["info"]:
            successes.append(bool(local_vars["info"]["is_success"]))

    returns, _ = evaluate_policy(
        model, env, n_eval_episodes=episodes, deterministic=True, return_episode_rewards=True, callback=record
    )
    success = float(np.mean(successes)) if successes else None
    return float(np.mean(returns)), float(np.std(returns)), success


class _Evaluations(BaseCallback):
    """Greedy evaluations every ``spec.eval_every`` env steps, on a clock that stops while evaluating."""

    def __init__(self, spec: RunSpec, eval_env: VecEnv, result: RunResult, progress: Any = None, index: int = 0):
        super().__init__()
        self.spec, self.eval_env, self.result, self.progress, self.index = spec, eval_env, result, progress, index
        self.next_eval = spec.eval_every
        self.train_seconds = 0.0
        self.started = 0.0

    def _on_training_start(self) -> None:
        self.started = time.perf_counter()

    def evaluate(self, episodes: int) -> tuple[float, float, float | None]:
        sync_envs_normalization(self.training_env, self.eval_env)
        return evaluate(self.model, self.eval_env, episodes)

    def pause(self) -> None:
        self.train_seconds += time.perf_counter() - self.started

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_eval:
            self.pause()
            mean, std, _ = self.evaluate(self.spec.eval_episodes)
            self.result.points.append((self.num_timesteps, self.train_seconds, mean, std))
            self.next_eval += self.spec.eval_every
            if self.progress is not None:
                self.progress.put(("progress", self.index, self.num_timesteps))
            self.started = time.perf_counter()
        return True


def run_one(spec: RunSpec, progress: Any = None, index: int = 0) -> RunResult:
    """
    Train and evaluate one (learner, task, seed); a failure is returned in ``error``, not raised.

    :param spec: what to run
    :param progress: a queue that receives ``("progress", index, env steps)`` at each evaluation
    :param index: this run's number, for ``progress``
    """
    result = RunResult(spec)
    try:
        algorithm = import_algorithm(spec.algorithm)
        env = make_env(spec.env_id, spec.n_envs, spec.seed, spec.frame_stack, spec.env_kwargs, spec.save_dir)
        eval_env = make_env(spec.env_id, 1, spec.seed + 10_000, spec.frame_stack, spec.env_kwargs)
        if spec.normalize:
            options = spec.normalize if isinstance(spec.normalize, dict) else {}
            env = VecNormalize(env, **options)
            # Greedy evaluations read the training statistics (synced before each) and the raw rewards.
            eval_env = VecNormalize(eval_env, **{**options, "training": False, "norm_reward": False})
        policy = policy_for(spec.policy, env.observation_space)
        # A copy: algorithms write into their policy_kwargs (SB3's A2C adds its optimizer), and in this
        # process the specs of other seeds share the zoo entry's dicts.
        model = algorithm(policy, env, seed=spec.seed, **copy.deepcopy(spec.kwargs))
        if is_vecenv_wrapped(model.get_env(), VecTransposeImage) and not is_vecenv_wrapped(eval_env, VecTransposeImage):
            # The algorithm put channel-last images first; the greedy evaluation must see them as it does.
            eval_env = VecTransposeImage(eval_env)
        callback = _Evaluations(spec, eval_env, result, progress, index)
        model.learn(spec.steps, callback=callback)
        callback.pause()
        result.train_seconds, result.steps_done = callback.train_seconds, model.num_timesteps
        result.final_mean, result.final_std, result.final_success = callback.evaluate(spec.final_eval_episodes)
        result.points.append((model.num_timesteps, callback.train_seconds, result.final_mean, result.final_std))
        if spec.save_dir is not None:
            model.save(os.path.join(spec.save_dir, "model.zip"))
            if isinstance(env, VecNormalize):
                # The model reads normalized observations: its statistics go with it, as rl-zoo3 keeps them.
                env.save(os.path.join(spec.save_dir, "vecnormalize.pkl"))
        env.close()
        eval_env.close()
    except Exception as err:  # noqa: BLE001  (reported as a failed run; the others go on)
        result.error = f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=-3)}"
    if not np.isfinite(result.train_seconds) and result.error is None:
        result.error = "no training time was measured"
    return result


def worker_main(spec: RunSpec, queue: Any, index: int) -> None:
    """Entry point of a run's process: one torch thread, the result sent back on ``queue``."""
    # Ctrl-C reaches the whole process group: the main process ends the runs and keeps what finished.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch as th

    th.set_num_threads(1)
    queue.put(("result", index, run_one(spec, queue, index)))
