"""
Environment engines side by side, 8 and 32 environments, interleaved rounds: for Atari (Breakout, the paper's
stack) ale-py with SB3's wrappers (DummyVecEnv) against EnvPool's C++ batch (``make_atari_env(backend=...)``), for
ProcGen (chaser, hard, 500 levels) procgen2 against EnvPool (``make_procgen_env(backend=...)``):

- random play: env-steps/s of ``VecEnv.step`` alone;
- RTRLA2C training: env-steps/s of ``learn`` with the paper's model (IMPALA stem, eLSTM 256, M = 50).

    OMP_NUM_THREADS=1 python benchmarks/bench_env_engines.py [--domain atari|procgen] [--rounds 3] [--play-steps 500]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import interleaved_medians, setup_threads  # noqa: E402

from sb3_rtrl.cli.experiments import make_model  # noqa: E402
from sb3_rtrl.envs import make_atari_env, make_procgen_env  # noqa: E402


def random_play(env, steps: int) -> None:
    rng = np.random.default_rng(0)
    for _ in range(steps):
        env.step(rng.integers(0, env.action_space.n, env.num_envs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", choices=["atari", "procgen"], default="atari")
    parser.add_argument("--game", default=None, help="default: Breakout, chaser")
    parser.add_argument("--envs", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--play-steps", type=int, default=500, help="VecEnv.step calls per random-play round")
    parser.add_argument("--updates", type=int, default=2)
    args = parser.parse_args()
    setup_threads()
    make, backends, game = {
        "atari": (make_atari_env, ("ale", "envpool"), "Breakout"),
        "procgen": (make_procgen_env, ("procgen2", "envpool"), "chaser"),
    }[args.domain]
    game = args.game or game
    envs = {(b, n): make(game, n_envs=n, seed=0, backend=b) for b in backends for n in args.envs}
    models = {key: make_model(args.domain, env, "rtrl", device="cpu", verbose=0) for key, env in envs.items()}
    for env in envs.values():
        env.reset()
    fns = {}
    for (b, n), env in envs.items():
        model = models[(b, n)]
        fns[("play", b, n)] = lambda env=env: random_play(env, args.play_steps)
        steps = args.updates * model.n_steps * n
        fns[("train", b, n)] = lambda model=model, steps=steps: model.learn(steps, reset_num_timesteps=False)
    # One untimed round (allocations, first rollouts), then interleaved timed rounds.
    med = interleaved_medians(fns, repeats=args.rounds)
    rate = {
        key: (args.play_steps if key[0] == "play" else args.updates * models[key[1:]].n_steps) * key[2] / sec
        for key, sec in med.items()
    }
    print(f"{game}, threads=1, {args.rounds} interleaved rounds (medians), env-steps/s")
    print(f"{'engine':<8} {'envs':>5} {'random play':>12} {'RTRLA2C training':>17}")
    for n in args.envs:
        for b in backends:
            print(f"{b:<8} {n:>5} {rate[('play', b, n)]:>12,.0f} {rate[('train', b, n)]:>17,.1f}")
        first = backends[0]
        print(
            f"{'ratio':<8} {n:>5} {rate[('play', 'envpool', n)] / rate[('play', first, n)]:>11.2f}x "
            f"{rate[('train', 'envpool', n)] / rate[('train', first, n)]:>16.2f}x"
        )


if __name__ == "__main__":
    main()
