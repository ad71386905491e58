"""
Environment engines side by side, 8 and 32 environments, interleaved rounds: for Atari (Breakout, the paper's
stack) ale-py with SB3's wrappers (DummyVecEnv) against EnvPool's C++ batch (``make_atari_env(backend=...)``), for
ProcGen (chaser, hard, 500 levels) procgen2 against EnvPool (``make_procgen_env(backend=...)``):

- random play: env-steps/s of ``VecEnv.step`` alone;
- RTRLA2C training: env-steps/s of ``learn`` with the paper's model (IMPALA stem, eLSTM 256, M = 50).

    OMP_NUM_THREADS=1 python benchmarks/bench_env_engines.py [--domain atari|procgen] [--rounds 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import setup_threads  # noqa: E402

from sb3_rtrl.envs import make_atari_env, make_procgen_env  # noqa: E402
from sb3_rtrl.experiments import make_model  # noqa: E402


def random_play(env, seconds: float) -> float:
    env.reset()
    rng = np.random.default_rng(0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(rng.integers(0, env.action_space.n, env.num_envs))
        steps += env.num_envs
    return steps / (time.perf_counter() - start)


def training(model, updates: int) -> float:
    steps = updates * model.n_steps * model.n_envs
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", choices=["atari", "procgen"], default="atari")
    parser.add_argument("--game", default=None, help="default: Breakout, chaser")
    parser.add_argument("--envs", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--updates", type=int, default=2)
    args = parser.parse_args()
    setup_threads()
    make, backends, game = {"atari": (make_atari_env, ("ale", "envpool"), "Breakout"),
                            "procgen": (make_procgen_env, ("procgen2", "envpool"), "chaser")}[args.domain]  # fmt: skip
    game = args.game or game
    envs = {(b, n): make(game, n_envs=n, seed=0, backend=b) for b in backends for n in args.envs}
    models = {key: make_model(args.domain, env, "rtrl", device="cpu", verbose=0) for key, env in envs.items()}
    for model in models.values():
        training(model, 1)  # warm-up: allocations, first rollout
    play: dict[tuple, list[float]] = {key: [] for key in envs}
    train: dict[tuple, list[float]] = {key: [] for key in envs}
    for _ in range(args.rounds):
        for key in envs:
            play[key].append(random_play(envs[key], args.seconds))
            train[key].append(training(models[key], args.updates))
    print(f"{game}, threads=1, {args.rounds} interleaved rounds (medians), env-steps/s")
    print(f"{'engine':<8} {'envs':>5} {'random play':>12} {'RTRLA2C training':>17}")
    for n in args.envs:
        for b in backends:
            print(f"{b:<8} {n:>5} {statistics.median(play[(b, n)]):>12,.0f} {statistics.median(train[(b, n)]):>17,.1f}")
        ratio_play = statistics.median(play[("envpool", n)]) / statistics.median(play[(backends[0], n)])
        ratio_train = statistics.median(train[("envpool", n)]) / statistics.median(train[(backends[0], n)])
        print(f"{'ratio':<8} {n:>5} {ratio_play:>11.2f}x {ratio_train:>16.2f}x")


if __name__ == "__main__":
    main()
