"""
The copy task trained fully online (one update per token) with exact RTRL.

CPU, T = 20:           python examples/copy_task.py --max-length 20 --curriculum
GPU, T = 1000 (paper): python examples/copy_task.py --max-length 1000 --hidden-size 2048 --device cuda --curriculum
"""

import argparse

from sb3_rtrl.copy_task import train_copy_task

parser = argparse.ArgumentParser()
parser.add_argument("--max-length", type=int, default=20)
parser.add_argument("--hidden-size", type=int, default=128)
parser.add_argument("--device", default="cpu")
parser.add_argument("--curriculum", action="store_true")
parser.add_argument("--max-tokens", type=int, default=2_000_000)
args = parser.parse_args()
result = train_copy_task(max_length=args.max_length, hidden_size=args.hidden_size, device=args.device,
                         curriculum=args.curriculum, max_tokens=args.max_tokens)  # fmt: skip
print(result)
