"""
The same script with sb3-contrib's RecurrentPPO, RTRLPPO (the drop-in) and RTRLA2C (the paper's R2AC): only
the import and the class change.

    python examples/migrate_from_recurrent_ppo.py [--steps 100000]
"""

import argparse

import numpy as np
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_rtrl import RTRLA2C, RTRLPPO

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=100_000)
args = parser.parse_args()

for algo in (RecurrentPPO, RTRLPPO, RTRLA2C):
    env = make_vec_env("sb3_rtrl/CartPoleNoVel-v1", n_envs=8, seed=0)
    # Unchanged RecurrentPPO arguments: RTRLA2C warns once that it ignores the PPO-only ones (n_epochs, batch_size).
    model = algo(
        "MlpLstmPolicy",
        env,
        n_steps=16,
        batch_size=128,
        n_epochs=4,
        learning_rate=1e-3,
        policy_kwargs=dict(lstm_hidden_size=64),
        seed=0,
    )
    model.learn(args.steps)
    model.save(f"cartpole_novel_{algo.__name__}")
    model = algo.load(f"cartpole_novel_{algo.__name__}")

    # The recurrent prediction loop, identical for both.
    obs = env.reset()
    lstm_states, episode_starts = None, np.ones((env.num_envs,), dtype=bool)
    for _ in range(100):
        actions, lstm_states = model.predict(obs, state=lstm_states, episode_start=episode_starts, deterministic=True)
        obs, rewards, episode_starts, infos = env.step(actions)

    mean, std = evaluate_policy(model, env, n_eval_episodes=20)
    print(f"{algo.__name__}: mean reward {mean:.1f} +/- {std:.1f}")
