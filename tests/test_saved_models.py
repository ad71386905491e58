"""Files saved by an earlier sb3-rtrl keep loading, safely too, with the same predictions and the same cell."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch as th

from sb3_rtrl import RTRLA2C, RTRLPPO
from sb3_rtrl.cells import ELSTMCell, MixedCell, RTUCell
from sb3_rtrl.safe_load import load_model

HERE = os.path.join(os.path.dirname(__file__), "data")
with open(os.path.join(HERE, "saved_models.json")) as _f:
    RECORD = json.load(_f)
CELLS = {
    "rtrl_a2c_default": ELSTMCell,
    "rtrl_ppo_default_critic_cell": ELSTMCell,
    "rtrl_ppo_rtu": RTUCell,
    "rtrl_ppo_mixed_critic_cell": MixedCell,
    "rtrl_a2c_mixed_default": MixedCell,
    "rtrl_ppo_mixed_gated_default": MixedCell,
    "rtrl_a2c_mixed_gated_wide": MixedCell,
    "rtrl_a2c_box_actions": MixedCell,
    "rtrl_ppo_mixed_gated_v2_wide": MixedCell,
    "rtrl_ppo_default_before_gain": MixedCell,
    "rtrl_a2c_default_before_gated_read": MixedCell,
}
# Files saved with the default "mixed_gated": before the eLSTM units had an output scale (they load with their gated
# units and their eLSTM outputs unscaled), and at 72 units, wider than "mixed_gated_v2" starts its gated units silent
# (they load as "mixed_gated", whose gated units start loud: the loaded weights are the file's either way).
MIXED_GATED = {"rtrl_ppo_mixed_gated_default", "rtrl_a2c_mixed_gated_wide"}
# Files saved with the default "mixed_gated_v2": one at 72 units a head, wider than "mixed_gated_v3" (the same layer)
# reads its eLSTM outputs normalized, and one at 32, where "mixed_gated_v4" (the same layer) reads its gated units
# standardized (they load as "mixed_gated_v2", read as they are).
MIXED_GATED_V2 = {
    "rtrl_a2c_box_actions",
    "rtrl_ppo_mixed_gated_v2_wide",
    "rtrl_ppo_default_before_gain",
    "rtrl_a2c_default_before_gated_read",
}
CLASSES = {"RTRLA2C": RTRLA2C, "RTRLPPO": RTRLPPO}


def observations() -> np.ndarray:
    # As tests/data/make_saved_models.py wrote them.
    return np.random.default_rng(0).uniform(-1.0, 1.0, size=(12, 2, 3)).astype(np.float32)


@pytest.mark.parametrize("name", sorted(RECORD["models"]))
@pytest.mark.parametrize("how", ["class load", "safe load"])
def test_files_saved_before_a_default_changed_load_with_their_cell(name, how):
    """
    Files saved when the default cell was the eLSTM (they name no cell) load as eLSTM models; files saved with the
    mixed layer as the default (0d5facc, b7307c2) load as the mixed layer they are, without gated units; a file
    saved with "mixed_gated" before the eLSTM units had an output scale (31cccc2) loads as that layer, unscaled; so
    does one saved at 72 units a head by the last commit whose default was "mixed_gated" (40a0d54). A file with
    continuous actions saved by the last main whose RTRLA2C gave them no entropy bonus by default (dc7f88d) loads as
    the "mixed_gated_v2" it was saved with; so does one saved at 72 units a head with a critic cell (040f41c), wider
    than "mixed_gated_v3" reads its eLSTM outputs normalized: its heads read the cell's outputs as they are, and its
    values are the saved ones; so does one saved at 32 units a head by the last main before the default became
    "mixed_gated_v4" (924e6ee), which reads its gated units standardized there. Every file loads with SB3's head (the
    action layer's gain 1), including RTRLPPO's default network saved by the last main before its gain became 2
    (16b8265).
    """
    entry = RECORD["models"][name]
    path = os.path.join(HERE, f"{name}.zip")
    cls = CLASSES[entry["class"]]
    model = cls.load(path) if how == "class load" else load_model(path)
    assert type(model) is cls
    assert type(model.policy.cell) is CELLS[name]
    if name in MIXED_GATED:
        assert model.policy.cell_name == "mixed_gated" and model.policy.cell.gated is not None
        assert model.policy.cell.elstm.output_scale == 1.0
    elif name in MIXED_GATED_V2:
        assert model.policy.cell_name == "mixed_gated_v2" and model.policy.cell.gated is not None
        h = th.randn(2, model.policy.cell.state_size)
        assert model.policy.cell.elstm_read_norm == 0.0 and not model.policy.cell.gated_read_norm
        assert model.policy.cell.read_out(h) is h
    else:
        assert getattr(model.policy.cell, "gated", None) is None
    # Saved before the action latent's gain existed, or before RTRLPPO's default network had 2: SB3's head.
    assert model.policy.action_latent_gain == 1.0
    # Saved before parts of the cell could have optimizer groups of their own: one group, as saved.
    assert model.policy.cell_optimizer_kwargs is None
    assert [group["eps"] for group in model.policy.optimizer.param_groups] == [1e-5]
    state = None
    for t, (obs, expected) in enumerate(zip(observations(), entry["predictions"])):
        starts = np.array([t == 0, t in (0, 6)])
        if "value" in expected:  # recorded for the files saved since the heads read the cell through read_out
            before = np.zeros(model.policy.state_shape(2), np.float32) if state is None else state[0]
            with th.no_grad():
                values = model.policy.predict_values(th.as_tensor(obs), th.as_tensor(before[0]), th.as_tensor(starts))
            np.testing.assert_allclose(values.flatten(), expected["value"], rtol=1e-5, atol=1e-6, err_msg=f"step {t}")
        action, state = model.predict(obs, state=state, episode_start=starts, deterministic=True)
        if action.dtype.kind == "f":  # continuous actions: float32 sums, as the state below
            np.testing.assert_allclose(action, np.array(expected["action"]), rtol=1e-5, atol=1e-6, err_msg=f"step {t}")
        else:
            assert action.tolist() == expected["action"], f"step {t}"
        # float32 sums differ in their last bits between CPUs, and the differences grow over the steps (seen: 2e-7 on
        # a state of 0.08 on one CPU, 2e-6 within twelve steps of the critic-cell file on another); a changed weight or
        # layout moves the state by far more.
        np.testing.assert_allclose(state[0], np.array(expected["state"]), rtol=1e-5, atol=1e-5)


def test_the_record_names_the_commit_that_saved_the_files():
    commits = {name: entry.get("commit", RECORD["commit"]) for name, entry in RECORD["models"].items()}
    assert commits == {
        "rtrl_a2c_default": "734902d",
        "rtrl_ppo_default_critic_cell": "734902d",
        "rtrl_ppo_rtu": "734902d",
        "rtrl_ppo_mixed_critic_cell": "0d5facc",
        "rtrl_a2c_mixed_default": "b7307c2",
        "rtrl_ppo_mixed_gated_default": "31cccc2",
        "rtrl_a2c_mixed_gated_wide": "40a0d54",
        "rtrl_a2c_box_actions": "dc7f88d",
        "rtrl_ppo_mixed_gated_v2_wide": "040f41c",
        "rtrl_ppo_default_before_gain": "16b8265",
        "rtrl_a2c_default_before_gated_read": "924e6ee",
    }


def test_the_policies_keep_their_old_module_path():
    """Files saved before the policies moved to sb3_rtrl.common.recurrent name them by sb3_rtrl.policies."""
    import sb3_rtrl.policies as old_path
    from sb3_rtrl.common.recurrent import policies
    from sb3_rtrl.safe_load import safe_classes

    for name in ("RTRLActorCriticPolicy", "RTRLActorCriticCnnPolicy", "RTRLMultiInputActorCriticPolicy"):
        cls = getattr(policies, name)
        assert getattr(old_path, name) is cls
        assert safe_classes()[f"sb3_rtrl.policies:{name}"] is cls
        assert safe_classes()[f"sb3_rtrl.common.recurrent.policies:{name}"] is cls


@pytest.mark.parametrize("how", ["class load", "safe load"])
def test_an_rtrl_a2c_file_keeps_the_entropy_coefficient_it_was_saved_with(how):
    """RTRLA2C's default ent_coef became 0.01; a file saved at the old default (0.0) keeps training with 0.0."""
    path = os.path.join(HERE, "rtrl_a2c_default.zip")
    model = RTRLA2C.load(path) if how == "class load" else load_model(path)
    assert model.ent_coef == 0.0
    assert RTRLA2C("MlpLstmPolicy", "CartPole-v1").ent_coef == 0.01


@pytest.mark.parametrize("how", ["class load", "safe load"])
def test_an_rtrl_a2c_file_with_continuous_actions_keeps_its_entropy_coefficient(how):
    """
    One main (dc7f88d) gave continuous actions no entropy bonus by default (0.0); RTRLA2C's default is 0.01 for every
    action space again. A file saved there keeps training with 0.0, and its Gaussian's log standard deviation is the
    file's.
    """
    path = os.path.join(HERE, "rtrl_a2c_box_actions.zip")
    model = RTRLA2C.load(path) if how == "class load" else load_model(path)
    assert model.ent_coef == 0.0
    assert model.policy.log_std.detach().abs().max().item() > 0  # trained from its zero start
    assert RTRLA2C("MlpLstmPolicy", "Pendulum-v1").ent_coef == 0.01


def test_the_default_layer_starts_its_gated_units_silent_in_wide_heads_and_reads_them_standardized_in_narrow_ones():
    """
    The default became "mixed_gated_v2": at RecurrentPPO's width (256) its gated units start silent, at 64 loud; then
    "mixed_gated_v4", the same layer whose heads read the gated units standardized at 64 units a head and below.
    """
    wide = RTRLPPO("MlpLstmPolicy", "CartPole-v1").policy
    narrow = RTRLPPO("MlpLstmPolicy", "CartPole-v1", policy_kwargs=dict(lstm_hidden_size=64)).policy
    for policy, silent in ((wide, True), (narrow, False)):
        assert policy.cell_name == "mixed_gated_v4" and policy.cell.gated is not None
        drive = policy.cell.gated.weight_ih[: policy.cell.gated.state_size]
        assert (drive.abs().max().item() == 0) is silent
        assert policy.cell.gated_read_norm is not silent
