"""
RTRLA2C from images: the CNN below the cell trained (its truncated gradients) or held at its initialisation.

The features extractor gets gradients only through the steps of its own rollout segment; RTRL carries the
cell's gradients to the episode start, not the extractor's. This trains RTRLA2C at its defaults
(``CnnLstmPolicy``, n_steps 5) on the image form of the delayed recall, a 3-way cue ``--delay`` steps back
(10) with a noise square every step, once as it is ("trained") and once with every features-extractor parameter frozen
("frozen"), and prints the greedy return (SB3's ``evaluate_policy``) every 50k steps and at the end.
``--gradient tbptt`` truncates the cell's gradient at each rollout start as well. With the same seed,
"trained" follows the same run as ``sb3-rtrl compare`` with ``--learners rtrl_a2c``.

    OMP_NUM_THREADS=1 python benchmarks/probe_a2c_stem.py --seed 0 --stem frozen
"""

from __future__ import annotations

import argparse
import time

import torch as th
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecTransposeImage

from sb3_rtrl import RTRLA2C
from sb3_rtrl.envs.factory import DELAYED_RECALL_ID as TASK
from sb3_rtrl.envs.factory import make_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--stem", choices=("trained", "frozen"), default="frozen")
    parser.add_argument("--delay", type=int, default=10)
    parser.add_argument("--gradient", choices=("rtrl", "tbptt"), default="rtrl")
    args = parser.parse_args()
    th.set_num_threads(1)
    env_kwargs = dict(delay=args.delay, num_cues=3, noise_dims=1, observation="image")
    env = make_env(TASK, 8, args.seed, env_kwargs=env_kwargs)
    model = RTRLA2C("CnnLstmPolicy", env, gradient=args.gradient, seed=args.seed)
    if args.stem == "frozen":
        # A parameter without a gradient is skipped by the optimizer and by the gradient clipping.
        for name, parameter in model.policy.named_parameters():
            if "features_extractor" in name:
                parameter.requires_grad_(False)
    # Seeded as compare seeds its evaluation env, and channel-first as the algorithm's own env.
    eval_env = VecTransposeImage(make_env(TASK, 1, args.seed + 10_000, env_kwargs=env_kwargs))
    start = time.perf_counter()
    every = 50_000
    while model.num_timesteps < args.steps:
        model.learn(min(every, args.steps - model.num_timesteps), reset_num_timesteps=False)
        mean, _ = evaluate_policy(model, eval_env, n_eval_episodes=30, deterministic=True)
        print(
            f"{args.gradient}, {args.stem} seed {args.seed}: {model.num_timesteps} steps, greedy return {mean:.3f}, "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
    mean, _ = evaluate_policy(model, eval_env, n_eval_episodes=100, deterministic=True)
    print(f"{args.gradient}, {args.stem} seed {args.seed}: final greedy return {mean:.3f} (100 episodes)")


if __name__ == "__main__":
    main()
