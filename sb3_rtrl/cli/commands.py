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
        help="train RTRLA2C with gradient=rtrl and gradient=tbptt, evaluate both, plot the learning curves "
        "(a preset of compare)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument("--env", default="sb3_rtrl/DelayedRecall-v0", help="gymnasium environment id")
    train.add_argument("--steps", type=_positive, default=300_000, help="environment steps per run")
    train.add_argument("--n-envs", type=_positive, default=16, help="parallel environments")
    train.add_argument("--n-steps", type=_positive, default=4, help="steps per environment between updates (M)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default="runs/train", help="output folder (table, CSV, curves, models, Monitor logs)")
    train.add_argument("--hidden-size", type=_positive, default=32)
    train.add_argument("--learning-rate", type=float, default=3e-3)
    train.add_argument("--delay", type=_positive, default=40, help="recall delay of the built-in memory task")
    train.add_argument("--gradients", nargs="+", choices=["rtrl", "tbptt"], default=["rtrl", "tbptt"])
    train.add_argument("--eval-episodes", type=_positive, default=100)
    train.add_argument("--jobs", type=_positive, default=2, help="runs at a time, each in its own process (1: in this one)")
    train.add_argument("--no-progress-bar", action="store_true")

    exp = sub.add_parser(
        "experiment",
        help="train one of the paper's domains with its settings (tensorboard, checkpoints, Monitor logs)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    exp.add_argument("domain", choices=["atari", "procgen", "dmlab", "memory"])
    exp.add_argument("--env", default=None, help="game / level / env id (default: the paper's)")
    exp.add_argument("--gradient", choices=["rtrl", "tbptt"], default="rtrl")
    exp.add_argument("--steps", type=_positive, default=200_000_000)
    exp.add_argument("--n-steps", type=_positive, default=None, help="M (default: the paper's for the domain)")
    exp.add_argument("--n-envs", type=_positive, default=None)
    exp.add_argument("--hidden-size", type=_positive, default=None)
    exp.add_argument("--seed", type=int, default=0)
    exp.add_argument("--out", default="runs/experiment")
    exp.add_argument("--device", default="auto")
    exp.add_argument("--checkpoint-every", type=_positive, default=1_000_000, help="environment steps")
    exp.add_argument("--no-tensorboard", action="store_true")
    exp.add_argument(
        "--pretrain-steps",
        type=_positive,
        default=None,
        help="dmlab only: the paper's protocol, TBPTT pre-training first, then RTRL on the frozen extractor",
    )

    cmp = sub.add_parser(
        "compare",
        help="learners side by side (rtrl_a2c, tbptt_a2c, recurrent_ppo, a2c, ppo, ...) on the same tasks and env steps",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    cmp.add_argument(
        "--env", nargs="+", required=True, help="gymnasium ids (popgym-..., ALE/..., procgen:<game>, module:Name-v0 too)"
    )
    cmp.add_argument("--learners", nargs="+", default=["rtrl_a2c", "recurrent_ppo"])
    cmp.add_argument("--steps", type=_positive, required=True, help="env steps per run, the same for every learner")
    cmp.add_argument("--seeds", type=_positive, default=3, help="number of seeds")
    cmp.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    cmp.add_argument("--jobs", type=_positive, default=1, help="runs at a time, each in its own process (1: in this one)")
    cmp.add_argument("--n-envs", type=_positive, default=None, help="environments per run (default: the zoo entry's, else 8)")
    cmp.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[LEARNER.]KEY=VALUE",
        help="override a hyperparameter: rtrl_a2c.learning_rate=lin_1e-3, 'policy_kwargs=dict(...)' (updates its dict)",
    )
    cmp.add_argument(
        "--unset",
        action="append",
        default=[],
        metavar="[LEARNER.]KEY[.SUBKEY]",
        help="remove a hyperparameter, or a key of a dict one, from the zoo entry before --set applies: "
        "ppo.policy_kwargs.lstm_hidden_size",
    )
    cmp.add_argument(
        "--hyperparams",
        action="append",
        default=[],
        metavar="LEARNER=FILE",
        help="an rl-zoo3-format yaml file for a learner, instead of its own",
    )
    cmp.add_argument("--threshold", type=float, default=None, help="report env steps and seconds to this return")
    cmp.add_argument("--eval-every", type=_positive, default=None, help="env steps between greedy evaluations (steps/20)")
    cmp.add_argument("--eval-episodes", type=_positive, default=10)
    cmp.add_argument("--final-eval-episodes", type=_positive, default=30)
    cmp.add_argument("--out", default="runs/compare")
    cmp.add_argument(
        "--resume",
        action="store_true",
        help="reuse the runs of this command already finished in --out (its runs.json, same code) and run the rest",
    )
    cmp.add_argument("--no-progress-bar", action="store_true")

    plot = sub.add_parser("plot", help="learning curves of one or more runs (Monitor logs or progress.csv) as a PNG")
    plot.add_argument("runs", nargs="+", help="run folders; LABEL=FOLDER to name a curve")
    plot.add_argument("--out", default="learning_curve.png")
    plot.add_argument("--key", default="r", help="'r' (episode reward), 'is_success', or another column")
    plot.add_argument("--window", type=_positive, default=100, help="moving average over episodes")
    plot.add_argument("--title", default=None)

    copy = sub.add_parser(
        "copy",
        help="the copy task: one eLSTM layer trained fully online (an update per token) with RTRL",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    copy.add_argument("--max-length", type=_positive, default=20)
    copy.add_argument("--hidden-size", type=_positive, default=256)
    copy.add_argument("--batch-size", type=_positive, default=256, help="parallel sequence streams")
    copy.add_argument("--learning-rate", type=float, default=1e-2, help="Adam's rate (at length 2 if it falls)")
    copy.add_argument(
        "--falling-rate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the rate falls as 1/length as the curriculum grows",
    )
    copy.add_argument("--max-grad-norm", type=float, default=1.0, help="clip the global gradient norm (0: off)")
    copy.add_argument("--forget-bias", type=float, default=0.0, help="added to the forget gate's bias at init")
    copy.add_argument("--max-tokens", type=_positive, default=2_000_000, help="steps per stream")
    copy.add_argument(
        "--curriculum", action=argparse.BooleanOptionalAction, default=True, help="grow the length from 2 as each is mastered"
    )
    copy.add_argument("--device", default="cpu")
    copy.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch as th

    th.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    if args.command == "check":
        from sb3_rtrl.cli.check import main as check_main

        check_main()
    elif args.command == "train":
        from sb3_rtrl.cli.compare.runner import ComparisonInterrupted
        from sb3_rtrl.cli.train import run
        from sb3_rtrl.envs import check_env_id

        try:
            check_env_id(args.env)
            results = run(
                env_id=args.env,
                steps=args.steps,
                n_envs=args.n_envs,
                n_steps=args.n_steps,
                seed=args.seed,
                out=args.out,
                hidden_size=args.hidden_size,
                learning_rate=args.learning_rate,
                delay=args.delay,
                gradients=tuple(args.gradients),
                eval_episodes=args.eval_episodes,
                progress_bar=not args.no_progress_bar,
                jobs=args.jobs,
            )
        except ValueError as err:
            parser.exit(2, f"sb3-rtrl train: error: {err}\n")
        except ComparisonInterrupted as err:
            parser.exit(130, f"sb3-rtrl train: {err}; their results are in {args.out}\n")
        failed = sum(r.error is not None for r in results)
        if failed:
            parser.exit(1, f"sb3-rtrl train: {failed} of {len(results)} runs failed (listed in the table)\n")
    elif args.command == "experiment":
        from sb3_rtrl.cli.experiments import run_dmlab_protocol, run_experiment

        common = dict(
            env=args.env,
            n_steps=args.n_steps,
            n_envs=args.n_envs,
            hidden_size=args.hidden_size,
            seed=args.seed,
            tensorboard=not args.no_tensorboard,
            checkpoint_every=args.checkpoint_every,
            device=args.device,
            progress_bar=True,
        )
        try:
            if args.pretrain_steps is not None:
                if args.domain != "dmlab":
                    parser.exit(2, "sb3-rtrl experiment: error: --pretrain-steps is the DMLab protocol (domain dmlab)\n")
                run_dmlab_protocol(args.pretrain_steps, args.steps, out=args.out, **common)
            else:
                run_experiment(args.domain, args.steps, gradient=args.gradient, out=args.out, **common)
        except (ImportError, ValueError) as err:
            parser.exit(2, f"sb3-rtrl experiment: error: {err}\n")
    elif args.command == "compare":
        from sb3_rtrl.cli.compare import compare
        from sb3_rtrl.cli.compare.hyperparams import parse_override
        from sb3_rtrl.cli.compare.runner import ComparisonInterrupted

        try:
            overrides = [parse_override(text) for text in args.set]
            files = dict(item.split("=", 1) for item in args.hyperparams if "=" in item)
            if len(files) != len(args.hyperparams):
                raise ValueError("--hyperparams takes LEARNER=FILE")
            seeds = list(range(args.first_seed, args.first_seed + args.seeds))
            results = compare(
                args.env,
                args.learners,
                args.steps,
                seeds=seeds,
                jobs=args.jobs,
                out=args.out,
                threshold=args.threshold,
                progress_bar=not args.no_progress_bar,
                n_envs=args.n_envs,
                overrides=overrides,
                unset=args.unset,
                hyperparams=files,
                eval_every=args.eval_every,
                eval_episodes=args.eval_episodes,
                final_eval_episodes=args.final_eval_episodes,
                resume=args.resume,
            )
        except ValueError as err:
            parser.exit(2, f"sb3-rtrl compare: error: {err}\n")
        except ComparisonInterrupted as err:
            parser.exit(130, f"sb3-rtrl compare: {err}; their results are in {args.out}\n")
        failed = sum(r.error is not None for r in results)
        if failed:
            parser.exit(1, f"sb3-rtrl compare: {failed} of {len(results)} runs failed (listed in the table)\n")
    elif args.command == "plot":
        from sb3_rtrl.cli.plotting import plot_curves

        runs = dict(run.split("=", 1) if "=" in run else (os.path.basename(os.path.normpath(run)), run) for run in args.runs)
        try:
            print(plot_curves(runs, args.out, key=args.key, window=args.window, title=args.title))
        except ValueError as err:
            parser.exit(2, f"sb3-rtrl plot: error: {err}\n")
    elif args.command == "copy":
        from sb3_rtrl.cli.copy_task import falling_rate, train_copy_task

        try:
            rate = falling_rate(args.learning_rate) if args.falling_rate else args.learning_rate
            result = train_copy_task(
                max_length=args.max_length,
                hidden_size=args.hidden_size,
                batch_size=args.batch_size,
                learning_rate=rate,
                max_tokens=args.max_tokens,
                seed=args.seed,
                device=args.device,
                curriculum=args.curriculum,
                forget_bias=args.forget_bias,
                max_grad_norm=args.max_grad_norm or None,
            )
        except ValueError as err:
            parser.exit(2, f"sb3-rtrl copy: error: {err}\n")
        print(f"sequence accuracy {result.accuracy:.1%} after {result.sequences} sequences ({result.seconds:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
