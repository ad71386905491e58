"""``sb3-rtrl train``: train RTRLA2C with exact RTRL and with truncated BPTT, evaluate, compare."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_rtrl.a2c import RTRLA2C
from sb3_rtrl.cli.plotting import plot_curves
from sb3_rtrl.common.recurrent.presets import LONG_MEMORY_NETWORK
from sb3_rtrl.envs import DELAYED_RECALL_ID, make_env


@dataclass
class RunResult:
    gradient: str
    train_seconds: float
    steps: int
    mean_reward: float
    std_reward: float
    success_rate: float | None


def evaluate(model: RTRLA2C, env, episodes: int) -> tuple[float, float, float | None]:
    """Greedy evaluation: mean and std of the episode reward, and the success rate if the env reports one."""
    successes: list[bool] = []

    def record(local_vars: dict, _globals: dict) -> None:
        if local_vars["done"] and "is_success" in local_vars["info"]:
            successes.append(bool(local_vars["info"]["is_success"]))

    mean, std = evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=True, callback=record)
    assert isinstance(mean, float) and isinstance(std, float), "evaluate_policy's mean and std"
    return float(mean), float(std), (float(np.mean(successes)) if successes else None)


def run(
    env_id: str = DELAYED_RECALL_ID,
    steps: int = 300_000,
    n_envs: int = 16,
    n_steps: int = 4,
    seed: int = 0,
    out: str = "runs/train",
    hidden_size: int = 32,
    learning_rate: float = 3e-3,
    delay: int = 40,
    gradients: tuple[str, ...] = ("rtrl", "tbptt"),
    eval_episodes: int = 100,
    progress_bar: bool = True,
    policy_kwargs: dict | None = None,
) -> list[RunResult]:
    """
    Train one model per gradient mode with the same settings and seed, evaluate each, plot their curves.

    :param policy_kwargs: the policy's options besides ``hidden_size``. None: on the delayed-recall task the
        network of its shipped zoo config (:data:`sb3_rtrl.policies.LONG_MEMORY_NETWORK`), elsewhere the
        policy's defaults
    :return: one result per gradient mode
    """
    if policy_kwargs is None:
        policy_kwargs = LONG_MEMORY_NETWORK if env_id == DELAYED_RECALL_ID else {}
    env_kwargs = dict(delay=delay) if env_id == DELAYED_RECALL_ID else {}
    results, curves = [], {}
    for gradient in gradients:
        run_dir = os.path.join(out, gradient)
        env = make_env(env_id, n_envs, seed, run_dir, env_kwargs)
        model = RTRLA2C(
            "MlpLstmPolicy",
            env,
            n_steps=n_steps,
            learning_rate=learning_rate,
            gradient=gradient,
            seed=seed,
            policy_kwargs=dict(policy_kwargs, hidden_size=hidden_size),
        )
        print(f"training gradient={gradient} on {env_id} for {steps} steps ({n_envs} envs, n_steps={n_steps})")
        start = time.perf_counter()
        model.learn(steps, progress_bar=progress_bar)
        seconds = time.perf_counter() - start
        model.save(os.path.join(run_dir, "model.zip"))
        env.close()
        eval_env = make_env(env_id, 1, seed + 1000, None, env_kwargs)
        mean, std, success = evaluate(model, eval_env, eval_episodes)
        eval_env.close()
        results.append(RunResult(gradient, seconds, model.num_timesteps, mean, std, success))
        curves[f"{gradient} (n_steps={n_steps})"] = run_dir
    key = "is_success" if env_id == DELAYED_RECALL_ID else "r"
    png = plot_curves(curves, os.path.join(out, "learning_curve.png"), key=key, title=f"RTRLA2C on {env_id}")
    print_table(results, n_steps, eval_episodes)
    print(f"\nlearning curves: {png}\nmodels and Monitor logs: {out}/<gradient>/")
    return results


def print_table(results: list[RunResult], n_steps: int, eval_episodes: int) -> None:
    print(f"\ngreedy evaluation over {eval_episodes} episodes, n_steps={n_steps}:")
    print(f"{'gradient':<9} {'steps':>9} {'train s':>8} {'steps/s':>8} {'reward':>14} {'success':>8}")
    for r in results:
        success = "-" if r.success_rate is None else f"{100 * r.success_rate:.0f}%"
        print(
            f"{r.gradient:<9} {r.steps:>9} {r.train_seconds:>8.1f} {r.steps / r.train_seconds:>8.0f} "
            f"{r.mean_reward:>7.2f} ± {r.std_reward:<4.2f} {success:>8}"
        )
