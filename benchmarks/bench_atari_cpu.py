"""
Atari training throughput on this CPU with the paper's network (IMPALA stem, eLSTM 256, M = 50):
env-steps/s of gradient="rtrl" and "tbptt", collection and updates together, in alternating rounds.

    OMP_NUM_THREADS=1 python benchmarks/bench_atari_cpu.py [--game Breakout] [--n-envs 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import setup_threads  # noqa: E402

from sb3_rtrl.cli.experiments import make_model  # noqa: E402
from sb3_rtrl.envs import make_atari_env  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", default="Breakout")
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--n-steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--updates", type=int, default=4, help="updates per round")
    args = parser.parse_args()
    setup_threads()
    models = {
        gradient: make_model(
            "atari",
            make_atari_env(args.game, n_envs=args.n_envs, seed=0),
            gradient,
            n_steps=args.n_steps,
            device="cpu",
            verbose=0,
        )
        for gradient in ("rtrl", "tbptt")
    }
    steps = args.updates * args.n_steps * args.n_envs
    rates: dict[str, list[float]] = {g: [] for g in models}
    for model in models.values():
        model.learn(args.n_steps * args.n_envs)  # warm-up
    for _ in range(args.rounds):
        for gradient, model in models.items():
            start = time.perf_counter()
            model.learn(steps, reset_num_timesteps=False)
            rates[gradient].append(steps / (time.perf_counter() - start))
    print(f"{args.game}: {args.n_envs} envs, M={args.n_steps}, IMPALA stem + eLSTM 256, threads=1, {args.rounds} rounds")
    for gradient, r in rates.items():
        print(f"  {gradient:<6} {statistics.median(r):7.1f} env-steps/s  (rounds: {', '.join(f'{x:.1f}' for x in r)})")
    print(f"  rtrl/tbptt time per step: {statistics.median(rates['tbptt']) / statistics.median(rates['rtrl']):.2f}x")


if __name__ == "__main__":
    main()
