"""
The recurrent algorithms against the same network without its recurrence: RTRLPPO against SB3's PPO and RTRLA2C
against SB3's A2C at one config, env-steps/s (collection and updates together) timed in interleaved rounds in one
process, with every registered cell and, for RTRLPPO, several ``chunk_length`` values; prints the median of each and
its ratio to the memoryless algorithm's (one untimed round first).

Config: 8 envs, one thread; PPO n_steps 128, batch_size 128, n_epochs 10; A2C n_steps 16; net_arch [64, 64]; the
recurrent policies' cell is ``--hidden`` wide.

    OMP_NUM_THREADS=1 python benchmarks/bench_memoryless_limit.py [--env CartPole-v1] [--rounds 3] [--chunks none 16 8]
        [--cells elstm mixed_gated]
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import interleaved_medians, setup_threads  # noqa: E402
from stable_baselines3 import A2C, PPO  # noqa: E402

from sb3_rtrl import RTRLA2C, RTRLPPO  # noqa: E402
from sb3_rtrl.cells import CELLS  # noqa: E402
from sb3_rtrl.envs import make_env  # noqa: E402

PPO_CONFIG = dict(n_steps=128, batch_size=128, n_epochs=10)
A2C_CONFIG = dict(n_steps=16)
NET_ARCH = [64, 64]


def build(env_id: str, n_envs: int, hidden: int, chunks: list[int | None], cells: list[str]) -> dict[str, tuple[object, int]]:
    """Name -> (model, env steps per round)."""

    def env():
        return make_env(env_id, n_envs=n_envs, seed=0)

    models: dict[str, tuple[object, int]] = {
        "PPO": (PPO("MlpPolicy", env(), policy_kwargs=dict(net_arch=NET_ARCH), seed=0, **PPO_CONFIG), 4 * 128 * n_envs),
        "A2C": (A2C("MlpPolicy", env(), policy_kwargs=dict(net_arch=NET_ARCH), seed=0, **A2C_CONFIG), 16 * 128 * n_envs),
    }
    for cell in cells:
        policy_kwargs = dict(cell=cell, lstm_hidden_size=hidden, net_arch=NET_ARCH)
        for chunk in chunks:
            model = RTRLPPO("MlpLstmPolicy", env(), chunk_length=chunk, policy_kwargs=policy_kwargs, seed=0, **PPO_CONFIG)
            models[f"RTRLPPO {cell} chunk {chunk or 'default'}"] = (model, 4 * 128 * n_envs)
        model = RTRLA2C("MlpLstmPolicy", env(), policy_kwargs=policy_kwargs, seed=0, **A2C_CONFIG)
        models[f"RTRLA2C {cell}"] = (model, 16 * 128 * n_envs)
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--chunks", nargs="+", default=["none", "16", "8"], help="RTRLPPO chunk_length values")
    parser.add_argument("--cells", nargs="+", default=sorted(CELLS), choices=sorted(CELLS), help="registered cells")
    args = parser.parse_args()
    setup_threads()
    chunks = [None if c == "none" else int(c) for c in args.chunks]
    models = build(args.env, args.n_envs, args.hidden, chunks, args.cells)
    fns = {name: partial(model.learn, steps, reset_num_timesteps=False) for name, (model, steps) in models.items()}
    seconds = interleaved_medians(fns, args.rounds)
    med = {name: models[name][1] / s for name, s in seconds.items()}
    print(f"{args.env}, {args.n_envs} envs, hidden {args.hidden}, threads=1, {args.rounds} rounds")
    for name, rate in med.items():
        base = med["PPO" if name.startswith(("PPO", "RTRLPPO")) else "A2C"]
        print(f"{name:32s} {rate:8.0f} env-steps/s  {rate / base:5.2f}x")


if __name__ == "__main__":
    main()
