"""
The paper's Atari experiment on Breakout (M = 50, 32 envs, IMPALA stem, eLSTM 256, RMSprop 6e-4 -> 0).

    python examples/atari_breakout.py --gradient rtrl --steps 10000000
Same as: sb3-rtrl experiment atari --env Breakout --gradient rtrl --steps 10000000
"""

import argparse

from sb3_rtrl.cli.experiments import run_experiment

parser = argparse.ArgumentParser()
parser.add_argument("--gradient", choices=["rtrl", "tbptt"], default="rtrl")
parser.add_argument("--steps", type=int, default=10_000_000)
parser.add_argument("--n-steps", type=int, default=50)
parser.add_argument("--out", default="runs/breakout")
args = parser.parse_args()
run_experiment(
    "atari", args.steps, gradient=args.gradient, env="Breakout", n_steps=args.n_steps, out=args.out, progress_bar=True
)
