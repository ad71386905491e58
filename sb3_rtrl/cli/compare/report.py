"""What a comparison reports: a table, learning curves against env steps and wall seconds, a CSV of every point."""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sb3_rtrl.cli.compare.worker import RunResult


@dataclass
class Summary:
    """One (task, learner) over its seeds; ``source``, ``unset`` and ``overrides`` say where its hyperparameters came from."""

    env_id: str
    learner: str
    seeds: int
    failed: list[str]
    final_mean: float
    final_std: float
    mmer: float
    steps_per_second: float
    reached: int
    steps_to_threshold: float
    seconds_to_threshold: float
    source: str
    success: float | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    unset: list[str] = field(default_factory=list)


def first_reach(result: RunResult, threshold: float) -> tuple[int, float] | None:
    """The env steps and training seconds of the first evaluation at or above ``threshold``."""
    for steps, seconds, mean, _ in result.points:
        if mean >= threshold:
            return steps, seconds
    return None


def summarize(results: list[RunResult], threshold: float | None = None) -> list[Summary]:
    """
    Per (task, learner): the final greedy return's mean and std over the seeds that finished, the MMER (the
    POPGym paper's measure: the maximum over training of the mean return, here of the greedy evaluations, averaged
    over the seeds), env-steps/s, the final evaluation's success rate where the task reports one, and, with a
    threshold, how many seeds reached it and their median env steps and seconds to it.
    """
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for result in results:
        groups.setdefault((result.spec.env_id, result.spec.learner), []).append(result)
    summaries = []
    for (env_id, learner), runs in groups.items():
        ok = [r for r in runs if r.error is None]
        finals = np.array([r.final_mean for r in ok])
        reaches = [x for x in (first_reach(r, threshold) for r in ok) if x is not None] if threshold is not None else []
        successes = [r.final_success for r in ok if r.final_success is not None]
        summaries.append(
            Summary(
                env_id=env_id,
                learner=learner,
                seeds=len(runs),
                failed=[f"seed {r.spec.seed}: {(r.error or '').splitlines()[0]}" for r in runs if r.error is not None],
                final_mean=float(finals.mean()) if ok else math.nan,
                final_std=float(finals.std()) if ok else math.nan,
                mmer=float(np.mean([max(p[2] for p in r.points) for r in ok])) if ok else math.nan,
                steps_per_second=float(np.mean([r.steps_per_second for r in ok])) if ok else math.nan,
                reached=len(reaches),
                steps_to_threshold=float(np.median([s for s, _ in reaches])) if reaches else math.nan,
                seconds_to_threshold=float(np.median([t for _, t in reaches])) if reaches else math.nan,
                source=runs[0].spec.source,
                overrides=runs[0].spec.overrides,
                unset=runs[0].spec.unset,
                success=float(np.mean(successes)) if successes else None,
            )
        )
    return summaries


def format_table(summaries: list[Summary], threshold: float | None = None) -> str:
    """The summaries as a plain-text table, failures listed under it."""
    task_w = max([28, *(len(s.env_id) for s in summaries)])
    learner_w = max([14, *(len(s.learner) for s in summaries)])
    head = (
        f"{'task':<{task_w}} {'learner':<{learner_w}} {'seeds':>5} {'return (mean ± std over seeds)':>31} "
        f"{'MMER':>9} {'steps/s':>8}"
    )
    with_success = any(s.success is not None for s in summaries)
    if with_success:
        head += f" {'success':>8}"
    if threshold is not None:
        head += f"  {'reached ' + format(threshold, 'g'):>12} {'steps to it':>12} {'seconds':>8}"
    lines = [head, "-" * len(head)]
    for s in summaries:
        ok = s.seeds - len(s.failed)
        score = f"{s.final_mean:10.3f} ± {s.final_std:<8.3f}" if ok else "failed"
        line = (
            f"{s.env_id:<{task_w}} {s.learner:<{learner_w}} {f'{ok}/{s.seeds}':>5} {score:>31} {s.mmer:>9.3f} "
            f"{s.steps_per_second:>8.0f}"
        )
        if with_success:
            line += f" {'-' if s.success is None else format(s.success, '.0%'):>8}"
        if threshold is not None:
            line += f"  {f'{s.reached}/{ok}':>12} {s.steps_to_threshold:>12.0f} {s.seconds_to_threshold:>8.1f}"
        lines.append(line)
    for s in summaries:
        for failure in s.failed:
            lines.append(f"FAILED {s.learner} on {s.env_id}, {failure}")
    lines.append("")
    for s in summaries:
        removed = "; --unset " + ", ".join(s.unset) if s.unset else ""
        overridden = "; --set " + ", ".join(f"{key}={value!r}" for key, value in s.overrides.items()) if s.overrides else ""
        lines.append(f"hyperparameters of {s.learner} on {s.env_id}: {s.source}{removed}{overridden}")
    return "\n".join(lines)


def write_csv(results: list[RunResult], path: str) -> None:
    """Every evaluation point of every run (the last one of a run is its final evaluation)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["env_id", "learner", "seed", "env_steps", "train_seconds", "mean_return", "std_return", "final"])
        for r in results:
            for i, (steps, seconds, mean, std) in enumerate(r.points):
                final = r.error is None and i == len(r.points) - 1
                writer.writerow([r.spec.env_id, r.spec.learner, r.spec.seed, steps, f"{seconds:.3f}", mean, std, int(final)])


def plot(results: list[RunResult], path: str, threshold: float | None = None) -> str:
    """Mean return over seeds (band: min to max) against env steps and against training seconds, a row per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    env_ids = list(dict.fromkeys(r.spec.env_id for r in results))
    fig, axes = plt.subplots(len(env_ids), 2, figsize=(12, 4 * len(env_ids)), squeeze=False)
    for row, env_id in enumerate(env_ids):
        learners = list(dict.fromkeys(r.spec.learner for r in results if r.spec.env_id == env_id))
        for learner in learners:
            runs = [r for r in results if r.spec.env_id == env_id and r.spec.learner == learner and r.points]
            if not runs:
                continue
            n = min(len(r.points) for r in runs)
            points = np.array([r.points[:n] for r in runs])  # (seeds, n, 4)
            mean = points[:, :, 2].mean(axis=0)
            for col, x in enumerate((points[:, :, 0].mean(axis=0), points[:, :, 1].mean(axis=0))):
                line = axes[row, col].plot(x, mean, label=f"{learner} ({len(runs)} seeds)")[0]
                axes[row, col].fill_between(
                    x, points[:, :, 2].min(axis=0), points[:, :, 2].max(axis=0), alpha=0.2, color=line.get_color()
                )
        for col, label in enumerate(("env steps", "training seconds (evaluation excluded)")):
            ax = axes[row, col]
            if threshold is not None:
                ax.axhline(threshold, color="grey", linestyle=":", linewidth=1)
            ax.set_xlabel(label)
            ax.set_ylabel("greedy return")
            ax.set_title(env_id)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_table(results: list[RunResult], out: str, threshold: float | None = None) -> str:
    """Write ``table.txt`` and ``points.csv`` of the runs so far to ``out``; return the table."""
    table = format_table(summarize(results, threshold), threshold)
    with open(os.path.join(out, "table.txt"), "w") as f:
        f.write(table + "\n")
    write_csv(results, os.path.join(out, "points.csv"))
    return table


def write_report(results: list[RunResult], out: str, threshold: float | None = None) -> str:
    """Print the table and write ``table.txt``, ``points.csv`` and ``curves.png`` to ``out``; return the table."""
    table = write_table(results, out, threshold)
    print(table)
    plot(results, os.path.join(out, "curves.png"), threshold)
    print(f"\n{out}/table.txt, {out}/points.csv (every evaluation), {out}/curves.png")
    return table
