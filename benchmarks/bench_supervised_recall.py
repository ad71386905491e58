"""
How fast a cell can learn a long recall when the signal is clean: the delayed-recall task (a cue, a noise input every
step, a query ``delay`` steps later) trained supervised, cross-entropy on the cue at the query, with the gradient of
the whole uncut sequence (what exact RTRL computes, here by autograd), through the default policy's actor path (the
cell at its policy defaults, ``[64, 64]`` tanh MLP with orthogonal init reading ``[h; x]``, an action layer at gain
0.01) or the paper's heads (one linear layer on ``h``). Prints the accuracy over every 100 batches; the batch at which
it passes 90% is the figure to compare. An RL agent sees one reward per episode instead of a label, so this bounds
from below what RL needs on the same cell.

    OMP_NUM_THREADS=1 python benchmarks/bench_supervised_recall.py --cell mixed [--cell-kwargs '{"timescales": [1, 1000]}']
        [--heads paper] [--input-init-std 1.5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch as th
from stable_baselines3.common.torch_layers import MlpExtractor
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import setup_threads  # noqa: E402

from sb3_rtrl.cells import cell_entry, resolve_cell_kwargs  # noqa: E402


def batch(rng: np.random.Generator, size: int, delay: int, cues: int, noise: int) -> tuple[th.Tensor, th.Tensor]:
    """Observations ``(delay + 1, size, cues + 1 + noise)`` as DelayedRecallEnv writes them, and the cues."""
    x = np.zeros((delay + 1, size, cues + 1 + noise), np.float32)
    y = rng.integers(cues, size=size)
    x[0, np.arange(size), y] = 1.0
    x[delay, :, cues] = 1.0
    x[:, :, cues + 1 :] = rng.uniform(-1.0, 1.0, (delay + 1, size, noise))
    return th.from_numpy(x), th.from_numpy(y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cell", default="mixed")
    parser.add_argument("--cell-kwargs", default="{}", help="the cell's own keywords, as a JSON object")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--delay", type=int, default=200)
    parser.add_argument("--cues", type=int, default=3)
    parser.add_argument("--noise", type=int, default=1)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--batches", type=int, default=1200)
    parser.add_argument("--lr", type=float, default=3e-3, help="RMSprop, as A2C's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--heads",
        choices=["policy", "paper"],
        default="policy",
        help="policy: the default actor path; paper: one linear layer on h alone (net_arch=[], skip_connection=False)",
    )
    parser.add_argument("--input-init-std", type=float, default=None, help="the cell's input init (default: inputs**-0.5)")
    args = parser.parse_args()
    cell_kwargs = json.loads(args.cell_kwargs)
    if not isinstance(cell_kwargs, dict):
        parser.error(f"--cell-kwargs must be a JSON object, got {args.cell_kwargs!r}")
    setup_threads()
    th.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    inputs = args.cues + 1 + args.noise
    kwargs = resolve_cell_kwargs(args.cell, cell_kwargs)
    input_init_std = inputs**-0.5 if args.input_init_std is None else args.input_init_std
    cell = cell_entry(args.cell).cls(inputs, args.hidden, input_init_std=input_init_std, **kwargs)
    skip = args.heads == "policy"
    features = args.hidden + inputs if skip else args.hidden
    mlp = MlpExtractor(features, dict(pi=[64, 64] if skip else [], vf=[]), nn.Tanh).policy_net
    action = nn.Linear(64 if skip else features, args.cues)
    for layer, gain in [(m, np.sqrt(2)) for m in mlp if isinstance(m, nn.Linear)] + [(action, 0.01)]:
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)
    params = [*cell.parameters(), *mlp.parameters(), *action.parameters()]
    optimizer = th.optim.RMSprop(params, lr=args.lr, alpha=0.99, eps=1e-5)
    starts = th.zeros(args.delay + 1, args.batch, dtype=th.bool)
    print(f"{args.cell} {kwargs}, hidden {args.hidden}, delay {args.delay}, {args.cues} cues, noise {args.noise}")
    hits: list[float] = []
    for i in range(args.batches):
        x, y = batch(rng, args.batch, args.delay, args.cues, args.noise)
        h, _ = cell(x, th.zeros(args.batch, args.hidden), starts)
        logits = action(mlp(th.cat([h[-1], x[-1]], dim=-1) if skip else h[-1]))
        loss = nn.functional.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        hits.append(float((logits.argmax(-1) == y).float().mean()))
        if (i + 1) % 100 == 0:
            print(f"  batches {i + 1:5d} ({(i + 1) * args.batch} sequences): accuracy {np.mean(hits[-100:]):.2f}", flush=True)


if __name__ == "__main__":
    main()
