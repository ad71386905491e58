"""
Training throughput of each registered cell (env-steps/s, collection and updates together), RTRLPPO at
RecurrentPPO's defaults and RTRLA2C at n_steps 16, the same hidden size for every cell, timed in interleaved rounds
in one process on CartPole without velocities; prints the median of each and its ratio to the eLSTM's.

    OMP_NUM_THREADS=1 python benchmarks/bench_cell_throughput.py [--rounds 5] [--hidden 256] [--cells elstm rtu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch as th

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import setup_threads  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402

from sb3_rtrl import RTRLA2C, RTRLPPO  # noqa: E402
from sb3_rtrl.cells import CELLS  # noqa: E402

ENV_ID = "sb3_rtrl/CartPoleNoVel-v1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--a2c-steps", type=int, default=8_192, help="env steps per round for RTRLA2C")
    parser.add_argument("--ppo-steps", type=int, default=2_048, help="env steps per round for RTRLPPO (two rollouts)")
    parser.add_argument("--cells", nargs="+", default=sorted(CELLS), help="registered cells to time (the eLSTM always)")
    args = parser.parse_args()
    unknown = sorted(set(args.cells) - set(CELLS))
    if unknown:
        parser.error(f"unknown cells {unknown}; registered: {sorted(CELLS)}")
    setup_threads()
    models, steps = {}, {}
    for cell in sorted({"elstm", *args.cells}):
        kwargs = dict(policy_kwargs=dict(lstm_hidden_size=args.hidden, cell=cell), seed=0)
        env = make_vec_env(ENV_ID, n_envs=args.n_envs, seed=0)
        models[f"RTRLPPO {cell}"], steps[f"RTRLPPO {cell}"] = RTRLPPO("MlpLstmPolicy", env, **kwargs), args.ppo_steps
        env = make_vec_env(ENV_ID, n_envs=args.n_envs, seed=0)
        models[f"RTRLA2C {cell}"] = RTRLA2C("MlpLstmPolicy", env, n_steps=16, **kwargs)
        steps[f"RTRLA2C {cell}"] = args.a2c_steps
    for model in models.values():  # warm-up
        model.learn(model.n_steps * model.n_envs)
    rates: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            start = time.perf_counter()
            model.learn(steps[name], reset_num_timesteps=False)
            rates[name].append(steps[name] / (time.perf_counter() - start))
    med = {name: statistics.median(r) for name, r in rates.items()}
    print(
        f"CartPole without velocities, {args.n_envs} envs, hidden {args.hidden}, threads={th.get_num_threads()}, "
        f"device {models['RTRLPPO elstm'].device}, {args.rounds} rounds; "
        "RTRLPPO at RecurrentPPO's defaults, RTRLA2C n_steps 16"
    )
    width = max(map(len, med))
    for name, rate in sorted(med.items()):
        algorithm = name.split()[0]
        ratio = rate / med[f"{algorithm} elstm"]
        rounds = ", ".join(f"{r:.0f}" for r in rates[name])
        print(f"  {name:<{width}} {rate:8.0f} env-steps/s  {ratio:5.2f}x the eLSTM's  (rounds: {rounds})")


if __name__ == "__main__":
    main()
