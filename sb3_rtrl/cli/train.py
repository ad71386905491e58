"""``sb3-rtrl train``: a preset of ``compare``, RTRLA2C with exact RTRL beside truncated BPTT on one task."""

from __future__ import annotations

import os
from typing import Any

from sb3_rtrl.cli.compare.learners import LEARNERS
from sb3_rtrl.cli.compare.runner import run_specs
from sb3_rtrl.cli.compare.worker import RunResult, RunSpec
from sb3_rtrl.cli.plotting import plot_curves
from sb3_rtrl.common.recurrent.presets import LONG_MEMORY_NETWORK
from sb3_rtrl.envs import DELAYED_RECALL_ID


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
    policy_kwargs: dict[str, Any] | None = None,
    jobs: int = 1,
) -> list[RunResult]:
    """
    Train RTRLA2C once per gradient mode with the same settings and seed, as the ``compare`` runs of the learners
    ``rtrl_a2c`` and ``tbptt_a2c``; evaluate each greedily; write compare's table, curves and CSV to ``out``, each
    run's Monitor logs and model to ``out/<gradient>/`` and the training curves to ``out/learning_curve.png``.

    :param env_id: the task (default: the built-in delayed recall)
    :param steps: env steps per run
    :param n_envs: parallel environments
    :param n_steps: steps per environment between updates
    :param seed: random seed of both runs
    :param out: output folder
    :param hidden_size: the policy's ``hidden_size``
    :param learning_rate: learning rate
    :param delay: the delayed recall's delay (other tasks ignore it)
    :param gradients: ``"rtrl"``, ``"tbptt"`` or both
    :param eval_episodes: episodes of the final greedy evaluation
    :param progress_bar: show the progress of the runs together
    :param policy_kwargs: the policy's options besides ``hidden_size``. None: on the delayed-recall task the
        network of its shipped zoo config (:data:`sb3_rtrl.common.recurrent.presets.LONG_MEMORY_NETWORK`),
        elsewhere the policy's defaults
    :param jobs: runs at a time (each in its own process when more than 1)
    :return: one result per gradient mode
    """
    if not gradients or set(gradients) - {"rtrl", "tbptt"} or len(set(gradients)) < len(gradients):
        raise ValueError(f"gradients must be 'rtrl' and/or 'tbptt', each once, got {list(gradients)}")
    if policy_kwargs is None:
        policy_kwargs = LONG_MEMORY_NETWORK if env_id == DELAYED_RECALL_ID else {}
    specs = []
    for gradient in gradients:
        learner = LEARNERS[f"{gradient}_a2c"]
        kwargs = dict(n_steps=n_steps, learning_rate=learning_rate, policy_kwargs=dict(policy_kwargs, hidden_size=hidden_size))
        specs.append(
            RunSpec(
                learner=learner.name,
                algorithm=learner.algorithm,
                env_id=env_id,
                seed=seed,
                steps=steps,
                n_envs=n_envs,
                policy=learner.policy,
                kwargs={**kwargs, **learner.fixed},
                env_kwargs=dict(delay=delay) if env_id == DELAYED_RECALL_ID else {},
                eval_every=max(steps // 10, 1),
                eval_episodes=10,
                final_eval_episodes=eval_episodes,
                source="sb3-rtrl train",
                save_dir=os.path.join(out, gradient),
            )
        )
    print(f"RTRLA2C, gradient={' and '.join(gradients)}, on {env_id}: {steps} steps, {n_envs} envs, n_steps={n_steps}")
    results = run_specs(specs, jobs=jobs, out=out, progress_bar=progress_bar)
    key = "is_success" if env_id == DELAYED_RECALL_ID else "r"
    curves = {
        f"{spec.kwargs['gradient']} (n_steps={n_steps})": spec.save_dir
        for spec, result in zip(specs, results)
        if result.error is None and spec.save_dir is not None
    }
    if curves:
        png = plot_curves(curves, os.path.join(out, "learning_curve.png"), key=key, title=f"RTRLA2C on {env_id}")
        print(f"training curves: {png}\nmodels and Monitor logs: {out}/<gradient>/")
    return results
