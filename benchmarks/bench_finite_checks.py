"""
Cost of the non-finite checks in an RTRLA2C update, as a fraction of the whole update.

The checks add one pass over the rollout's float arrays (observations, rewards, values, value targets),
an ``isfinite`` of the loss and three of scalars; the gradient norm, the sensitivity norm and the cell-state
norm they test were already computed for the logger, and the gradient clip is done in its two steps
(``get_total_norm``, ``clip_grads_with_norm_``), which is how ``clip_grad_norm_`` itself works. So this times
``train()`` and, in the same interleaved rounds, the added work on the same rollout, for three shapes:

- ``mlp``: CartPole without velocities, 8 envs, n_steps 16, hidden 64 (a cheap update: the worst ratio);
- ``float-image``: 64x64x3 float observations, NatureCNN, 8 envs, n_steps 16, hidden 256 (a large float rollout);
- ``atari``: 84x84x4 uint8 observations (skipped by the check: integers are finite), the paper's IMPALA
  stem, 8 envs, n_steps 50, hidden 256.

    OMP_NUM_THREADS=1 python benchmarks/bench_finite_checks.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch as th  # noqa: E402
from _timing import interleaved_medians, setup_threads  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402
from stable_baselines3.common.envs import FakeImageEnv  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack  # noqa: E402

from sb3_rtrl import RTRLA2C  # noqa: E402
from sb3_rtrl.torch_layers import ImpalaCNN  # noqa: E402


def make(shape: str) -> RTRLA2C:
    if shape == "mlp":
        env = make_vec_env("sb3_rtrl/CartPoleNoVel-v1", n_envs=8, seed=0)
        return RTRLA2C("MlpLstmPolicy", env, n_steps=16, seed=0, policy_kwargs=dict(hidden_size=64))
    if shape == "float-image":

        def float_env():
            from gymnasium import spaces
            from gymnasium.wrappers import TransformObservation

            env = FakeImageEnv(screen_height=64, screen_width=64, n_channels=3)
            space = spaces.Box(0.0, 1.0, (3, 64, 64), np.float32)  # channel first, as NatureCNN reads it
            return TransformObservation(env, lambda o: o.transpose(2, 0, 1).astype(np.float32) / 255.0, space)

        env = DummyVecEnv([float_env] * 8)
        return RTRLA2C(
            "CnnLstmPolicy",
            env,
            n_steps=16,
            seed=0,
            policy_kwargs=dict(hidden_size=256, features_extractor_kwargs=dict(normalized_image=True)),
        )
    env = VecFrameStack(DummyVecEnv([lambda: FakeImageEnv(screen_height=84, screen_width=84, n_channels=1)] * 8), 4)
    return RTRLA2C(
        "CnnLstmPolicy",
        env,
        n_steps=50,
        seed=0,
        policy_kwargs=dict(hidden_size=256, prev_reward=True, features_extractor_class=ImpalaCNN),
    )


def added_checks(model: RTRLA2C, loss: th.Tensor) -> None:
    """What the checks add to an update that passes them (the same calls as in ``RTRLA2C.train``)."""
    model._check_rollout_finite()
    math.isfinite(loss.item())
    np.isfinite(1.0), np.isfinite(1.0), np.isfinite(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--shapes", nargs="+", default=["mlp", "float-image", "atari"])
    args = parser.parse_args()
    setup_threads()
    print(f"{'shape':>12} {'update ms':>10} {'checks ms':>10} {'share':>7}")
    for shape in args.shapes:
        model = make(shape)
        model.learn(model.n_steps * model.n_envs)  # one rollout in the buffer
        loss = th.tensor(1.0)
        checks = functools.partial(added_checks, model, loss)
        times = interleaved_medians({"update": model.train, "checks": checks}, args.rounds)
        share = times["checks"] / times["update"]
        print(f"{shape:>12} {times['update'] * 1e3:10.2f} {times['checks'] * 1e3:10.3f} {share:7.2%}")


if __name__ == "__main__":
    main()
