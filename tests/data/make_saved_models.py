"""
Writes the model files that tests/test_saved_models.py loads, and the predictions they must keep.

Run with the sb3-rtrl of the commit that is to have saved them (``PYTHONPATH=<that checkout> python
tests/data/make_saved_models.py [NAME ...]``; ``SAVED_BY=<commit>`` names it): the files stand for what users saved
with that version. Each model's entry in ``saved_models.json`` names its commit (the record's own ``commit`` for
entries that name none); the entries of the models not written are kept.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from sb3_rtrl import RTRLA2C, RTRLPPO
from sb3_rtrl.envs import DELAYED_RECALL_ID

HERE = os.path.dirname(os.path.abspath(__file__))
CRITIC_CELL = dict(lstm_hidden_size=8, enable_critic_lstm=True)
MODELS = {
    "rtrl_a2c_default": (RTRLA2C, dict(n_steps=4, policy_kwargs=dict(hidden_size=8))),
    "rtrl_ppo_default_critic_cell": (RTRLPPO, dict(n_steps=8, batch_size=8, policy_kwargs=CRITIC_CELL)),
    "rtrl_ppo_rtu": (RTRLPPO, dict(n_steps=8, batch_size=8, policy_kwargs=dict(hidden_size=8, cell="rtu"))),
    # Saved when the default cell had just become the mixed layer.
    "rtrl_ppo_mixed_critic_cell": (
        RTRLPPO,
        dict(n_steps=8, batch_size=8, policy_kwargs=dict(lstm_hidden_size=12, enable_critic_lstm=True)),
    ),
    # Saved by the last commit whose default cell was the mixed layer without gated units.
    "rtrl_a2c_mixed_default": (RTRLA2C, dict(n_steps=4, policy_kwargs=dict(hidden_size=8))),
    # The default "mixed_gated", saved by the last commit before the eLSTM units had an output scale (31cccc2).
    "rtrl_ppo_mixed_gated_default": (RTRLPPO, dict(n_steps=8, batch_size=8, policy_kwargs=dict(lstm_hidden_size=16))),
    # The default "mixed_gated" wider than 64 units, saved by the last commit before "mixed_gated_v2" (40a0d54).
    "rtrl_a2c_mixed_gated_wide": (RTRLA2C, dict(n_steps=4, policy_kwargs=dict(hidden_size=72))),
    # Continuous actions, saved by the last main whose RTRLA2C gave them no entropy bonus by default (dc7f88d).
    "rtrl_a2c_box_actions": (RTRLA2C, dict(n_steps=4, policy_kwargs=dict(hidden_size=8))),
    # The default "mixed_gated_v2" wider than 64 units, with a critic cell (040f41c): "mixed_gated_v3", the same layer,
    # reads its eLSTM outputs normalized there, so the file's values show which read it loads with.
    "rtrl_ppo_mixed_gated_v2_wide": (
        RTRLPPO,
        dict(n_steps=8, batch_size=8, policy_kwargs=dict(lstm_hidden_size=72, enable_critic_lstm=True)),
    ),
    # RTRLPPO's default network before its action layer's gain became 2 (16b8265): it names its cell and no gain.
    "rtrl_ppo_default_before_gain": (RTRLPPO, dict(n_steps=8, batch_size=8, policy_kwargs=dict(lstm_hidden_size=16))),
    # The default "mixed_gated_v2" at 32 units a head, saved by the last commit before "mixed_gated_v4" (924e6ee), which
    # reads the gated units standardized there: the file's values show which read it loads with.
    "rtrl_a2c_default_before_gated_read": (RTRLA2C, dict(n_steps=4, policy_kwargs=dict(hidden_size=32))),
}
# The models' tasks: the delayed recall (3 inputs, 2 actions) unless named here; Pendulum-v1 has 3 inputs too.
ENVS = {"rtrl_a2c_box_actions": ("Pendulum-v1", {})}


def observations() -> np.ndarray:
    """A fixed sequence of 12 steps for 2 environments of the delayed-recall task (delay 4: 2 cues, a query)."""
    rng = np.random.default_rng(0)
    return rng.uniform(-1.0, 1.0, size=(12, 2, 3)).astype(np.float32)


def predictions(model) -> list:
    """
    Greedy actions, the values and the cell states along :func:`observations`, with an episode start at step 6 of
    env 1. The values are the critic's at each step from the state before it: they move with anything the heads read.
    """
    state, out = None, []
    for t, obs in enumerate(observations()):
        starts = np.array([t == 0, t in (0, 6)])
        before = np.zeros(model.policy.state_shape(len(obs)), np.float32) if state is None else state[0]
        with th.no_grad():
            values = model.policy.predict_values(th.as_tensor(obs), th.as_tensor(before[0]), th.as_tensor(starts))
        action, state = model.predict(obs, state=state, episode_start=starts, deterministic=True)
        out.append({"action": action.tolist(), "value": values.flatten().tolist(), "state": state[0].tolist()})
    return out


def main() -> None:
    th.set_num_threads(1)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=sys.path[0] or "."
    ).stdout.strip()
    commit = os.environ.get("SAVED_BY", commit)
    path = os.path.join(HERE, "saved_models.json")
    record: dict = {"commit": commit, "models": {}}
    if os.path.exists(path):
        with open(path) as f:
            record = json.load(f)
    for name in sys.argv[1:] or list(MODELS):
        cls, kwargs = MODELS[name]
        env_id, env_kwargs = ENVS.get(name, (DELAYED_RECALL_ID, dict(delay=4)))
        env = make_vec_env(env_id, n_envs=2, seed=0, env_kwargs=env_kwargs)
        model = cls("MlpLstmPolicy", env, seed=0, **kwargs)
        model.learn(64)
        model.save(os.path.join(HERE, f"{name}.zip"))
        record["models"][name] = {"class": cls.__name__, "commit": commit, "predictions": predictions(model)}
    with open(path, "w") as f:
        json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
