"""
Writes ``pinned_runs.json``: the parameters after short seeded training runs, which tests/test_pinned_runs.py
repeats so that a change meant to keep behaviour (a refactoring, a faster path) is seen to keep it.

Run with the sb3-rtrl whose behaviour is to be pinned (``python tests/data/make_pinned_runs.py [NAME ...]``); the
entries of the runs not named are kept. A change that alters learning on purpose writes the runs it alters again
and says why in its commit message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import torch as th
from stable_baselines3.common.env_util import make_vec_env

from sb3_rtrl import RTRLA2C, RTRLPPO
from sb3_rtrl.envs import DELAYED_RECALL_ID

HERE = os.path.dirname(os.path.abspath(__file__))
PATH = os.path.join(HERE, "pinned_runs.json")
SMALL = dict(lstm_hidden_size=8, net_arch=[8])
PPO = dict(n_steps=16, batch_size=16, n_epochs=2)
# RTRLA2C at the entropy coefficient its runs were pinned with (its default was 0.0 then).
A2C = dict(n_steps=4, ent_coef=0.0)
# name: (algorithm, its keywords); each run trains 128 steps on 2 environments of the delayed recall (delay 6).
RUNS: dict[str, tuple[type, dict[str, Any]]] = {
    "rtrl_ppo_mixed_gated": (RTRLPPO, dict(PPO, policy_kwargs=dict(SMALL, cell="mixed_gated"))),
    "rtrl_a2c_mixed_gated": (RTRLA2C, dict(A2C, policy_kwargs=dict(SMALL, cell="mixed_gated"))),
    # The default layer before "mixed_gated_v4"; its gated units start silent at this width only with the threshold
    # lowered.
    "rtrl_ppo_mixed_gated_v2": (RTRLPPO, dict(PPO, policy_kwargs=dict(SMALL, cell="mixed_gated_v2"))),
    # The default layer, its gated units read standardized (the running statistics are pinned with the parameters).
    "rtrl_ppo_mixed_gated_v4": (RTRLPPO, dict(PPO, policy_kwargs=SMALL)),
    "rtrl_a2c_mixed_gated_v4": (RTRLA2C, dict(A2C, policy_kwargs=SMALL)),
    # The default layer with its parts in optimizer groups of their own (the gated units and the rest of the cell).
    "rtrl_a2c_mixed_gated_v4_cell_groups": (
        RTRLA2C,
        dict(A2C, policy_kwargs=dict(SMALL, cell_optimizer_kwargs={"gated": dict(eps=1e-8), "*": dict(eps=1e-7)})),
    ),
    "rtrl_ppo_mixed_gated_v4_cell_groups": (
        RTRLPPO,
        dict(PPO, policy_kwargs=dict(SMALL, cell_optimizer_kwargs={"gated": dict(eps=1e-8), "*": dict(eps=1e-7)})),
    ),
    "rtrl_ppo_mixed_gated_v2_silent": (
        RTRLPPO,
        dict(PPO, policy_kwargs=dict(SMALL, cell="mixed_gated_v2", cell_kwargs=dict(gated_silent_above=4))),
    ),
    "rtrl_a2c_mixed_gated_v2_silent": (
        RTRLA2C,
        dict(A2C, policy_kwargs=dict(SMALL, cell="mixed_gated_v2", cell_kwargs=dict(gated_silent_above=4))),
    ),
    "rtrl_ppo_mixed": (RTRLPPO, dict(PPO, policy_kwargs=dict(SMALL, cell="mixed"))),
    "rtrl_ppo_mixed_critic_cell": (RTRLPPO, dict(PPO, policy_kwargs=dict(SMALL, cell="mixed", enable_critic_lstm=True))),
    "rtrl_ppo_elstm": (RTRLPPO, dict(PPO, policy_kwargs=dict(SMALL, cell="elstm"))),
    "rtrl_ppo_rtu": (RTRLPPO, dict(PPO, policy_kwargs=dict(SMALL, cell="rtu"))),
    "tbptt_ppo_mixed": (RTRLPPO, dict(PPO, gradient="tbptt", policy_kwargs=dict(SMALL, cell="mixed"))),
    "rtrl_a2c_mixed": (RTRLA2C, dict(A2C, policy_kwargs=dict(SMALL, cell="mixed"))),
    "rtrl_a2c_elstm": (RTRLA2C, dict(A2C, policy_kwargs=dict(SMALL, cell="elstm"))),
    "tbptt_a2c_rtu": (RTRLA2C, dict(A2C, gradient="tbptt", policy_kwargs=dict(SMALL, cell="rtu"))),
}
TOTAL_STEPS = 128


def train(name: str) -> dict[str, list[float]]:
    """The run's parameters after training, by name, flattened."""
    cls, kwargs = RUNS[name]
    env = make_vec_env(DELAYED_RECALL_ID, n_envs=2, seed=0, env_kwargs=dict(delay=6))
    model = cls("MlpLstmPolicy", env, seed=0, **kwargs)
    model.learn(TOTAL_STEPS)
    return {key: value.detach().flatten().tolist() for key, value in model.policy.state_dict().items()}


def main() -> None:
    th.set_num_threads(1)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=HERE).stdout.strip()
    record: dict[str, Any] = {}
    if os.path.exists(PATH):
        with open(PATH) as f:
            record = json.load(f)
    for name in sys.argv[1:] or list(RUNS):
        record[name] = {"commit": commit, "parameters": train(name)}
    with open(PATH, "w") as f:
        json.dump(record, f)


if __name__ == "__main__":
    main()
