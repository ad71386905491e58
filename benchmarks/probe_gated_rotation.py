"""
Why the gated linear cell does not rotate: complex diagonal units whose decay an input gate scales, trained supervised on
the noisy delayed recall of ``bench_supervised_recall.py`` (same task, heads and optimizer), with the angle each step
turns by scaled by the gate too (``--angle gated``, a selective state-space step ``exp(delta(x) (-e^nu + i theta))``),
fixed (``--angle fixed``) or zero (``--angle none``). Autograd only (a probe of the design, not a cell of the
package). Prints the accuracy over every 100 batches and the batch at which it first passed 90%.

    OMP_NUM_THREADS=1 python benchmarks/probe_gated_rotation.py --angle gated --seed 0
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3.common.torch_layers import MlpExtractor
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import setup_threads  # noqa: E402
from bench_supervised_recall import batch  # noqa: E402


class GatedComplexUnits(nn.Module):
    """``c(t) = lambda(t) c(t-1) + sqrt(1 - |lambda(t)|^2) (W x(t))``, ``lambda(t) = exp(delta(t) (-e^nu) + i phi(t))``."""

    def __init__(self, inputs: int, units: int, angle: str, gate: bool) -> None:
        super().__init__()
        std = inputs**-0.5
        self.angle, self.gate = angle, gate
        self.weight = nn.Parameter(th.randn(units, inputs, 2) * std)
        self.gate_weight = nn.Parameter(th.randn(units, inputs) * std)
        self.gate_bias = nn.Parameter(th.zeros(units))
        tau = 1000.0 ** th.linspace(0.0, 1.0, units)  # time constants 1 to 1000 steps at delta = 1
        self.nu = nn.Parameter(-th.log(tau))
        self.theta_log = nn.Parameter(th.log(2 * math.pi * (1 - th.rand(units))).clamp_min(-13.0))

    def forward(self, x: th.Tensor) -> th.Tensor:
        """The last state as ``(B, 2 units)`` reals, (real, imaginary) adjacent."""
        delta = th.exp(F.linear(x, self.gate_weight, self.gate_bias)) if self.gate else th.ones(*x.shape[:2], len(self.nu))
        log_modulus = -delta * th.exp(self.nu)
        theta = th.exp(self.theta_log)
        phi = {"gated": delta * theta, "fixed": theta.expand_as(delta), "none": th.zeros_like(delta)}[self.angle]
        lam = th.exp(th.complex(log_modulus, phi))
        drive = th.complex(F.linear(x, self.weight[..., 0]), F.linear(x, self.weight[..., 1]))
        drive = drive * th.sqrt(-th.expm1(2 * log_modulus))
        c = th.zeros_like(drive[0])
        for t in range(x.shape[0]):
            c = lam[t] * c + drive[t]
        return th.stack([c.real, c.imag], dim=-1).flatten(-2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--angle", choices=["gated", "fixed", "none"], default="gated")
    parser.add_argument("--no-gate", action="store_true", help="delta = 1 at every step (no input gate)")
    parser.add_argument("--hidden", type=int, default=32, help="reals: hidden // 2 complex units")
    parser.add_argument("--batches", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setup_threads()
    th.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    cues, delay, inputs = 3, 200, 5
    cell = GatedComplexUnits(inputs, args.hidden // 2, args.angle, not args.no_gate)
    mlp = MlpExtractor(args.hidden + inputs, dict(pi=[64, 64], vf=[]), nn.Tanh).policy_net
    action = nn.Linear(64, cues)
    for layer, gain in [(m, np.sqrt(2)) for m in mlp if isinstance(m, nn.Linear)] + [(action, 0.01)]:
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)
    optimizer = th.optim.RMSprop([*cell.parameters(), *mlp.parameters(), *action.parameters()], lr=3e-3, alpha=0.99, eps=1e-5)
    hits: list[float] = []
    for i in range(args.batches):
        x, y = batch(rng, 16, delay, cues, 1)
        logits = action(mlp(th.cat([cell(x), x[-1]], dim=-1)))
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        hits.append(float((logits.argmax(-1) == y).float().mean()))
        if (i + 1) % 100 == 0:
            accuracy = float(np.mean(hits[-100:]))
            print(f"  batches {i + 1:5d}: accuracy {accuracy:.2f}", flush=True)
            if accuracy >= 0.9:
                print(f"passed 90% at {i + 1} batches")
                return
    print(f"not within {args.batches} batches")


if __name__ == "__main__":
    main()
