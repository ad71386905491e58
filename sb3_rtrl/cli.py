"""The ``sb3-rtrl`` command line."""

from __future__ import annotations

import argparse
import os
import sys


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sb3-rtrl", description="Exact RTRL for Stable-Baselines3")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="show RTRL-vs-BPTT gradient agreement and the update timing")
    train = sub.add_parser(
        "train",
        help="train RTRLA2C with gradient=rtrl and gradient=tbptt, evaluate both, plot the learning curves",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument("--env", default="sb3_rtrl/DelayedRecall-v0", help="gymnasium environment id")
    train.add_argument("--steps", type=_positive, default=300_000, help="environment steps per run")
    train.add_argument("--n-envs", type=_positive, default=16, help="parallel environments")
    train.add_argument("--n-steps", type=_positive, default=4, help="steps per environment between updates (M)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default="runs/train", help="output folder (models, Monitor logs, PNG)")
    train.add_argument("--hidden-size", type=_positive, default=32)
    train.add_argument("--learning-rate", type=float, default=3e-3)
    train.add_argument("--delay", type=_positive, default=40, help="recall delay of the built-in memory task")
    train.add_argument("--gradients", nargs="+", choices=["rtrl", "tbptt"], default=["rtrl", "tbptt"])
    train.add_argument("--eval-episodes", type=_positive, default=100)
    train.add_argument("--no-progress-bar", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch as th

    th.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    if args.command == "check":
        from sb3_rtrl.check import main as check_main

        check_main()
    elif args.command == "train":
        from sb3_rtrl.train import check_env_id, run

        try:
            check_env_id(args.env)
        except ValueError as err:
            parser.exit(2, f"sb3-rtrl train: error: {err}\n")
        run(
            env_id=args.env, steps=args.steps, n_envs=args.n_envs, n_steps=args.n_steps, seed=args.seed, out=args.out,
            hidden_size=args.hidden_size, learning_rate=args.learning_rate, delay=args.delay,
            gradients=tuple(args.gradients), eval_episodes=args.eval_episodes, progress_bar=not args.no_progress_bar,
        )  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
