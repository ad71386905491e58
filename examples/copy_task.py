"""
The copy task trained fully online (one update per token) with exact RTRL.

CPU, T = 20:           python examples/copy_task.py --max-length 20
GPU, T = 1000:         python examples/copy_task.py --max-length 1000 --hidden-size 2048 --device cuda
(the paper's code went up to 500 bits, 1000 steps in all; docs/environments.md has its exact settings)

The settings are the fastest measured on the CPU (docs/benchmarks.md): 256 streams, a curriculum from
length 2, Adam at 1e-2 falling as 1/length, gradient norm clipped to 1, forget bias 0. At the end it prints
where recall still fails: the error rate of each bit position for each sequence length.
"""

import argparse

import numpy as np

from sb3_rtrl.cli.copy_task import falling_rate, recall_errors, train_copy_task

parser = argparse.ArgumentParser()
parser.add_argument("--max-length", type=int, default=20)
parser.add_argument("--hidden-size", type=int, default=256)
parser.add_argument("--device", default="cpu")
parser.add_argument("--max-tokens", type=int, default=2_000_000)
args = parser.parse_args()
result = train_copy_task(
    max_length=args.max_length,
    hidden_size=args.hidden_size,
    batch_size=256,
    learning_rate=falling_rate(1e-2),
    max_grad_norm=1.0,
    curriculum=True,
    device=args.device,
    max_tokens=args.max_tokens,
)
print(result)
print("error rate by bit position (columns) for each sequence length (rows), 2,000 fresh sequences:")
for row, errors in enumerate(recall_errors(result.model, args.max_length, 2000, np.random.default_rng(1)), start=1):
    print(f"{row:5d} " + " ".join(f"{e:4.2f}" for e in errors[:row]))
