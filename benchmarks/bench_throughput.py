"""
Training throughput (env-steps/s, collection and updates together) on CartPole with velocities masked.

RTRLA2C (MlpLstmPolicy alias, hidden 256, 8 envs, n_steps 16) against sb3-contrib's RecurrentPPO (same
hidden size and envs, its other defaults) and SB3's A2C (MlpPolicy, same envs and n_steps), timed in
interleaved rounds in one process; prints the median steps/s of each and the ratios.

    OMP_NUM_THREADS=1 python benchmarks/bench_throughput.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import setup_threads  # noqa: E402
from sb3_contrib import RecurrentPPO  # noqa: E402
from stable_baselines3 import A2C  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402

from sb3_rtrl import RTRLA2C  # noqa: E402

ENV_ID = "sb3_rtrl/CartPoleNoVel-v1"


def make_models(n_envs: int, hidden: int, n_steps: int, gradient: str) -> dict:
    def env():
        return make_vec_env(ENV_ID, n_envs=n_envs, seed=0)

    return {
        f"RTRLA2C ({gradient})": RTRLA2C(
            "MlpLstmPolicy", env(), n_steps=n_steps, gradient=gradient, policy_kwargs=dict(hidden_size=hidden), seed=0
        ),
        "RecurrentPPO": RecurrentPPO("MlpLstmPolicy", env(), policy_kwargs=dict(lstm_hidden_size=hidden), seed=0),
        "A2C": A2C("MlpPolicy", env(), n_steps=n_steps, seed=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--n-steps", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8_192, help="steps per round for RTRLA2C and A2C")
    parser.add_argument("--ppo-steps", type=int, default=2_048, help="steps per round for RecurrentPPO (two rollouts)")
    parser.add_argument("--gradient", default="rtrl")
    args = parser.parse_args()
    setup_threads()
    models = make_models(args.n_envs, args.hidden, args.n_steps, args.gradient)
    rates: dict[str, list[float]] = {name: [] for name in models}
    for model in models.values():  # warm-up
        model.learn(model.n_steps * model.n_envs)
    for _ in range(args.rounds):
        for name, model in models.items():
            steps = args.ppo_steps if name == "RecurrentPPO" else args.steps
            start = time.perf_counter()
            model.learn(steps, reset_num_timesteps=False)
            rates[name].append(steps / (time.perf_counter() - start))
    med = {name: statistics.median(r) for name, r in rates.items()}
    print(
        f"CartPole without velocities, {args.n_envs} envs, hidden {args.hidden}, n_steps {args.n_steps} "
        f"(RecurrentPPO: its default n_steps 128, 10 epochs), threads=1, {args.rounds} rounds"
    )
    for name, rate in med.items():
        print(f"  {name:<16} {rate:9.0f} env-steps/s   (rounds: {', '.join(f'{r:.0f}' for r in rates[name])})")
    ours = med[f"RTRLA2C ({args.gradient})"]
    print(f"  RTRLA2C / RecurrentPPO: {ours / med['RecurrentPPO']:.1f}x")
    print(f"  RTRLA2C / A2C:          {ours / med['A2C']:.2f}x")


if __name__ == "__main__":
    main()
