"""Learning quality: exact RTRL learns a recall delay ten times its truncation span; TBPTT cannot."""

import numpy as np
import pytest

from sb3_rtrl import RTRLA2C
from sb3_rtrl.envs import DELAYED_RECALL_ID
from sb3_rtrl.train import evaluate, make_env


def success_after_training(gradient: str, delay: int, n_steps: int, steps: int, seed: int) -> float:
    env = make_env(DELAYED_RECALL_ID, 16, seed, None, dict(delay=delay))
    model = RTRLA2C("MlpLstmPolicy", env, n_steps=n_steps, learning_rate=3e-3, gradient=gradient, seed=seed,
                    policy_kwargs=dict(hidden_size=32))  # fmt: skip
    model.learn(steps)
    _, _, success = evaluate(model, make_env(DELAYED_RECALL_ID, 1, seed + 1000, None, dict(delay=delay)), 100)
    assert success is not None
    return success


def test_rtrl_learns_ten_times_beyond_truncation_small():
    """Delay 20 = 10 x n_steps 2, 100k steps (about 35 s for both runs)."""
    rtrl = success_after_training("rtrl", delay=20, n_steps=2, steps=100_000, seed=0)
    tbptt = success_after_training("tbptt", delay=20, n_steps=2, steps=100_000, seed=0)
    assert rtrl >= 0.95, f"rtrl success {rtrl:.2f}"
    assert tbptt <= 0.70, f"tbptt success {tbptt:.2f}: it should stay near chance (0.5)"


@pytest.mark.slow
def test_rtrl_learns_ten_times_beyond_truncation_seeds():
    """Delay 40 = 10 x n_steps 4, 300k steps, three seeds (about 3 minutes)."""
    seeds = (0, 1, 2)
    rtrl = [success_after_training("rtrl", delay=40, n_steps=4, steps=300_000, seed=s) for s in seeds]
    tbptt = [success_after_training("tbptt", delay=40, n_steps=4, steps=300_000, seed=s) for s in seeds]
    assert min(rtrl) >= 0.95, f"rtrl success per seed {rtrl}"
    assert np.mean(tbptt) <= 0.65, f"tbptt success per seed {tbptt}: it should stay near chance (0.5)"
