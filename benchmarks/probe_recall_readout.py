"""
Where RTRLA2C's time goes on the noisy long recall (``DelayedRecall``: a cue, a noise input every step, a query
``delay`` steps later): in holding the cue, or in reading it out. Trains RTRLA2C with its default policy but the width
(hidden 32, n_steps 16, 16 envs, lr 3e-3 unless told) and after every ``--eval-every`` env steps prints the greedy
return and, from the states at the query step of ``--episodes`` fresh episodes:

- ``probe``: per part of the layer (eLSTM, RTU, gated units; one column for the whole layer), the accuracy of a
  least-squares read of the cue fitted on two thirds of the episodes and tested on the rest: whether the part holds
  the cue at all, at any scale;
- ``between/within``: per part as the heads read it, and for the actor's logits, the root mean square distance of the
  class means from their mean against that of the states from their class mean: how large the cue is beside
  everything else the heads see;
- ``best unit``: the unit of the layer whose own between/within is largest, that ratio and its between: a unit that
  holds the cue cleanly, however small.

    OMP_NUM_THREADS=1 python benchmarks/probe_recall_readout.py --seed 1 [--steps 3000000] [--cell-kwargs
        '{"gated_fraction": 0.5}']
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.distributions import CategoricalDistribution
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import setup_threads  # noqa: E402
from bench_supervised_recall import batch  # noqa: E402

from sb3_rtrl import RTRLA2C  # noqa: E402
from sb3_rtrl.cells import ElementwiseRecurrentCell, MixedCell  # noqa: E402
from sb3_rtrl.common.recurrent.policies import RTRLActorCriticPolicy  # noqa: E402
from sb3_rtrl.envs import make_env  # noqa: E402


def probe_accuracy(h: np.ndarray, y: np.ndarray, cues: int) -> float:
    """Test accuracy of a least-squares read of the one-hot cue from ``h`` (with a bias), fitted on two thirds."""
    features = np.c_[h, np.ones(len(h))]
    split = 2 * len(h) // 3
    weights = np.linalg.lstsq(features[:split], np.eye(cues)[y[:split]], rcond=None)[0]
    return float(np.mean(np.argmax(features[split:] @ weights, axis=1) == y[split:]))


def between_within(h: np.ndarray, y: np.ndarray, cues: int) -> tuple[float, float]:
    """RMS distance of the class means from their mean, and RMS distance of the states from their class mean."""
    means = np.stack([h[y == k].mean(axis=0) for k in range(cues)])
    between = np.sqrt(np.mean(np.sum((means - means.mean(axis=0)) ** 2, axis=1)))
    within = np.sqrt(np.mean(np.sum((h - means[y]) ** 2, axis=1)))
    return float(between), float(within)


def best_unit(h: np.ndarray, y: np.ndarray, cues: int) -> tuple[int, float, float]:
    """The column of ``h`` with the largest between/within of its own (:func:`between_within`), that ratio, its between."""
    ratios = [between_within(h[:, [unit]], y, cues) for unit in range(h.shape[1])]
    unit = int(np.argmax([between / max(within, 1e-12) for between, within in ratios]))
    return unit, ratios[unit][0] / max(ratios[unit][1], 1e-12), ratios[unit][0]


class ReadoutProbe(BaseCallback):
    """Every ``every`` env steps: the greedy return on ``eval_env`` and the probes of the module docstring."""

    def __init__(self, every: int, eval_env: VecEnv, eval_episodes: int, x: th.Tensor, y: np.ndarray, cues: int):
        super().__init__()
        self.every, self.eval_env, self.eval_episodes = every, eval_env, eval_episodes
        self.x, self.y, self.cues = x, y, cues
        self.next = every

    def report(self) -> None:
        returns, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.eval_episodes, deterministic=True)
        policy = self.model.policy
        assert isinstance(policy, RTRLActorCriticPolicy)
        cell = policy.cell
        assert isinstance(cell, ElementwiseRecurrentCell)
        steps, count = self.x.shape[:2]
        starts = th.zeros(steps, count, dtype=th.bool)
        starts[0] = True
        with th.no_grad():
            h, _, _ = cell.scan(self.x, th.zeros(count, cell.state_size), starts)
            query_h, query_x = h[-1], self.x[-1]
            distribution = policy._heads(query_h, query_x)[0]
            assert isinstance(distribution, CategoricalDistribution), "the task's actions are discrete"
            logits = distribution.distribution.logits
            read = cell.read_out(query_h)  # what the heads read
            parts = cell.split_parts(read) if isinstance(cell, MixedCell) else [read]
        names = ["eLSTM", "RTU", "gated"][: len(parts)] if len(parts) > 1 else ["cell"]
        probes = " ".join(f"{n} {probe_accuracy(p.numpy(), self.y, self.cues):.2f}" for n, p in zip(names, parts))
        if len(parts) > 1:
            probes += f" all {probe_accuracy(query_h.numpy(), self.y, self.cues):.2f}"
        sizes = " ".join(
            "{} {:.3f}/{:.3f}".format(n, *between_within(p.numpy(), self.y, self.cues)) for n, p in zip(names, parts)
        )
        sizes += " logits {:.3f}/{:.3f}".format(*between_within(logits.numpy(), self.y, self.cues))
        unit, ratio, between = best_unit(read.numpy(), self.y, self.cues)
        print(
            f"{self.num_timesteps:>9} return {np.mean(returns):+.2f} | probe {probes} | between/within {sizes} | "
            f"best unit {unit} {ratio:.2f} ({between:.3f})",
            flush=True,
        )

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next:
            self.report()
            self.next += self.every
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=3_000_000)
    parser.add_argument("--eval-every", type=int, default=250_000)
    parser.add_argument("--eval-episodes", type=int, default=30)
    parser.add_argument("--episodes", type=int, default=600, help="episodes the state probes read")
    parser.add_argument("--n-envs", type=int, default=16)
    parser.add_argument("--n-steps", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--delay", type=int, default=200)
    parser.add_argument("--cues", type=int, default=3)
    parser.add_argument("--noise", type=int, default=1)
    parser.add_argument("--cell", default=None, help="a registered cell (default: the policies')")
    parser.add_argument("--cell-kwargs", default="{}", help="the cell's own keywords, as a JSON object")
    args = parser.parse_args()
    setup_threads()

    env_kwargs = dict(delay=args.delay, num_cues=args.cues, noise_dims=args.noise)
    env = make_env("sb3_rtrl/DelayedRecall-v0", n_envs=args.n_envs, seed=args.seed, env_kwargs=env_kwargs)
    eval_env = make_env("sb3_rtrl/DelayedRecall-v0", n_envs=1, seed=args.seed + 10_000, env_kwargs=env_kwargs)
    policy_kwargs: dict[str, Any] = dict(lstm_hidden_size=args.hidden)
    if args.cell is not None:
        policy_kwargs["cell"] = args.cell
    cell_kwargs = json.loads(args.cell_kwargs)
    if cell_kwargs:
        policy_kwargs["cell_kwargs"] = cell_kwargs
    model = RTRLA2C(
        "MlpLstmPolicy", env, n_steps=args.n_steps, learning_rate=args.lr, seed=args.seed, policy_kwargs=policy_kwargs
    )
    x, cues = batch(np.random.default_rng(12345), args.episodes, args.delay, args.cues, args.noise)
    y = cues.numpy()
    print(model.policy.cell, flush=True)
    model.learn(args.steps, callback=ReadoutProbe(args.eval_every, eval_env, args.eval_episodes, x, y, args.cues))


if __name__ == "__main__":
    main()
