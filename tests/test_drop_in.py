"""
The drop-in promise on sb3-contrib's own benchmark: RecurrentPPO's CartPoleNoVel performance config (its test
suite's ``test_ppo_lstm_performance``: 50k steps, VecNormalize, 8 envs, a critic cell, a return of 450), with the
class swapped for RTRLPPO and nothing else changed, at its defaults for everything the config leaves out.
"""

import numpy as np
import pytest
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize

from sb3_rtrl import RTRLPPO

# sb3-contrib's config for this test, as its test suite writes it.
CONFIG = dict(
    n_steps=128,
    learning_rate=0.0007,
    batch_size=256,
    n_epochs=10,
    max_grad_norm=1,
    gae_lambda=0.98,
    policy_kwargs=dict(net_arch=dict(vf=[64], pi=[]), lstm_hidden_size=64, ortho_init=False, enable_critic_lstm=True),
)
ENV_ID = "sb3_rtrl/CartPoleNoVel-v1"  # CartPole-v1 without the velocities, 500 steps at most, as sb3-contrib's


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_recurrent_ppo_cartpole_novel_config(seed):
    env = VecNormalize(make_vec_env(ENV_ID, n_envs=8))
    eval_env = VecNormalize(make_vec_env(ENV_ID, n_envs=4), training=False, norm_reward=False)
    model = RTRLPPO("MlpLstmPolicy", env, seed=seed, **CONFIG)
    model.learn(total_timesteps=50_000, callback=EvalCallback(eval_env, n_eval_episodes=20, eval_freq=5000 // 8))
    # As sb3-contrib: evaluated on the training env (its normalization still updating), 10 episodes.
    mean, _ = evaluate_policy(model, env)
    print(f"seed {seed}: mean return {mean:.1f}")  # the figure, with pytest -s
    assert np.isfinite(mean) and mean >= 450, f"seed {seed}: mean return {mean:.1f} (threshold 450)"
