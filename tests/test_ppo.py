"""RTRLPPO: exact minibatch gradients, RecurrentPPO's loss and arguments, and the SB3 contract."""

import inspect
import math

import numpy as np
import pytest
import torch as th
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_rtrl import RTRLPPO
from sb3_rtrl.envs import DELAYED_RECALL_ID
from sb3_rtrl.ppo.ppo import MinibatchEvaluation
from sb3_rtrl.rtrl import initial_state

SMALL = dict(hidden_size=16)


def recall_env(n_envs=2, delay=5, seed=0):
    return make_vec_env(DELAYED_RECALL_ID, n_envs=n_envs, seed=seed, env_kwargs=dict(delay=delay))


def ppo_loss(model, out, clip_range=0.2):
    """RecurrentPPO's loss (no value clipping), written out again for the reference."""
    adv = out["advantages"]
    if len(adv) > 1:  # as SB3's PPO: a single advantage is left as it is
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    ratio = th.exp(out["log_prob"] - out["old_log_prob"])
    policy_loss = -th.min(adv * ratio, adv * th.clamp(ratio, 1 - clip_range, 1 + clip_range)).mean()
    value_loss = ((out["returns"] - out["values"]) ** 2).mean()
    return policy_loss - model.ent_coef * out["entropy"].mean() + model.vf_coef * value_loss


# Per registered cell, the cell's keywords for the exactness test (the RTU's state is pairs of reals).
CELL_OPTIONS = {
    "elstm": dict(cell="elstm", forget_bias=(1.0, 3.0)),
    "rtu": dict(cell="rtu", hidden_size=6, cell_kwargs=dict(r_min=0.5)),
    "mixed": dict(cell="mixed", hidden_size=7, forget_bias=(1.0, 3.0), cell_kwargs=dict(r_min=0.5)),
    "gated": dict(cell="gated", hidden_size=5, cell_kwargs=dict(timescales=(2.0, 20.0))),
    "mixed_gated": dict(cell="mixed_gated", hidden_size=8, cell_kwargs=dict(r_min=0.5)),
    # A critic cell: each group's eLSTM outputs are normalized on their own before its head reads them (at this width
    # only with the threshold lowered).
    "mixed_gated_v3": dict(
        cell="mixed_gated_v3", hidden_size=8, enable_critic_lstm=True, cell_kwargs=dict(r_min=0.5, elstm_read_norm_above=4)
    ),
    # Each gated unit read standardized by running statistics, which move between updates.
    "mixed_gated_v4": dict(cell="mixed_gated_v4", hidden_size=8, cell_kwargs=dict(r_min=0.5)),
}


@pytest.mark.parametrize("cell", sorted(CELL_OPTIONS))
@pytest.mark.parametrize(
    "batch_size, chunk_length",
    [(3, None), (5, None), (14, None), (6, 2)],
    ids=["chunks-3-3-1", "chunks-5-2", "whole-rollout", "three-chunks-of-2-from-any-time"],
)
def test_every_minibatch_gradient_equals_autograd_over_the_uncut_history(batch_size, chunk_length, cell):
    """
    With the weights held (learning rate 0), each minibatch's gradient is the gradient of the same loss by
    autograd through the whole history of its sequences since the first step: across the previous rollout,
    episode resets inside chunks, chunks of different lengths, chunks of different times in one minibatch (fp64).
    """
    default = th.get_default_dtype()
    th.set_default_dtype(th.float64)
    try:
        model = RTRLPPO(
            "MlpLstmPolicy",
            recall_env(n_envs=2, delay=2),
            n_steps=7,
            batch_size=batch_size,
            n_epochs=2,
            chunk_length=chunk_length,
            learning_rate=0.0,
            max_grad_norm=math.inf,
            ent_coef=0.01,
            seed=3,
            policy_kwargs=dict(dict(hidden_size=5, net_arch=[6], prev_action=True, prev_reward=True), **CELL_OPTIONS[cell]),
        )
        policy = model.policy
        assert cell != "mixed_gated_v3" or policy.cell.elstm_read_norm == 0.25
        assert (cell == "mixed_gated_v4") is hasattr(policy.cell, "gated_read_rows")
        policy.extract_features = lambda obs, features_extractor=None: obs.to(th.float64)  # type: ignore[method-assign]
        records = []
        train, get_chunks, chunk_starts = model.train, model.rollout_buffer.get_chunks, model._chunk_starts
        optimizer_step = policy.optimizer.step

        def recording_train():
            buf = model.rollout_buffer
            arrays = dict(
                obs=buf.observations,
                actions=buf.actions,
                starts=buf.episode_starts,
                adv=buf.advantages,
                returns=buf.returns,
                log_probs=buf.log_probs,
                prev_a=buf.prev_actions,
                prev_r=buf.prev_rewards,
            )
            records.append(dict({k: v.copy() for k, v in arrays.items()}, batches=[], grads=[]))
            train()

        def recording_chunk_starts():
            records[-1]["chunks"] = chunk_starts()
            return records[-1]["chunks"]

        def recording_get_chunks(ids):
            records[-1]["batches"].append(ids)
            # The running statistics a cell keeps for its read (none but "mixed_gated_v4"'s) as this minibatch reads them.
            records[-1].setdefault("read_stats", []).append({k: v.clone() for k, v in policy.cell.named_buffers()})
            return get_chunks(ids)

        def recording_step(*args, **kwargs):
            records[-1]["grads"].append([p.grad.clone() for p in policy.parameters()])
            return optimizer_step(*args, **kwargs)

        model.train, model._chunk_starts = recording_train, recording_chunk_starts
        model.rollout_buffer.get_chunks = recording_get_chunks
        policy.optimizer.step = recording_step
        model.learn(2 * 7 * 2)
        assert len(records) == 2
        history = {k: np.concatenate([r[k] for r in records]) for k in ("obs", "actions", "starts", "prev_a", "prev_r")}
        assert history["starts"][8:].any(), "the second rollout must contain an episode start"

        def flat(a):
            flat = th.as_tensor(a.reshape(a.shape[0] * a.shape[1], *a.shape[2:]))
            return flat.double() if flat.is_floating_point() else flat

        def ground_truth(read_stats):
            """Autograd through the whole history from the zero state, nothing cut, read as a minibatch read it."""
            policy.cell.load_state_dict(read_stats, strict=False)
            values, log_prob, entropy, _ = policy.evaluate_segment(
                flat(history["obs"]),
                flat(history["actions"]).long().flatten(),
                th.as_tensor(history["starts"]).bool(),
                initial_state(policy.cell, 2),
                flat(history["prev_a"]),
                flat(history["prev_r"]),
                gradient="tbptt",
            )
            return dict(values=values, log_prob=log_prob, entropy=entropy)

        policy.set_training_mode(False)  # a training read would move the statistics
        tracked = bool(records[0]["read_stats"][0])
        # With running statistics each update's reference is built below, from the statistics it read.
        outputs = {} if tracked else ground_truth({})
        names = [name for name, _ in policy.named_parameters()]
        lengths = set()
        for update, record in enumerate(records):
            bounds = record["chunks"].bounds
            lengths |= {t1 - t0 for t0, t1 in bounds}
            assert len(record["grads"]) == len(record["batches"]) > 0
            if tracked:
                # Every minibatch of an update reads with the statistics its rollout was collected with.
                first = record["read_stats"][0]
                for read_stats in record["read_stats"][1:]:
                    assert all(th.equal(read_stats[k], v) for k, v in first.items() if k != "gated_read_pending")
                outputs = ground_truth(first)
            for ids, got in zip(record["batches"], record["grads"]):
                rows = th.as_tensor([(7 * update + t) * 2 + i % 2 for i in ids for t in range(*bounds[i // 2])])
                local = th.as_tensor([t * 2 + i % 2 for i in ids for t in range(*bounds[i // 2])])
                out = {k: v[rows] for k, v in outputs.items()}
                out.update(
                    advantages=flat(record["adv"])[local],
                    returns=flat(record["returns"])[local],
                    old_log_prob=flat(record["log_probs"])[local],
                )
                truth = th.autograd.grad(ppo_loss(model, out), list(policy.parameters()), retain_graph=True)
                for name, g, expected in zip(names, got, truth):
                    error = (g - expected).norm() / expected.norm().clamp_min(1e-300)
                    assert error <= 1e-10, f"update {update}, chunks {ids}: {name} has relative error {error:.2e}"
        chunk = chunk_length or min(7, batch_size)
        assert lengths == {chunk, 7 % chunk or chunk}
        if chunk_length is not None:  # minibatches held chunks of different times
            assert any(len(np.unique(np.asarray(ids) // 2)) > 1 for r in records for ids in r["batches"])
    finally:
        th.set_default_dtype(default)


def loss_inputs(**changes):
    batch = dict(
        values=th.zeros(4, requires_grad=True),
        log_prob=th.zeros(4, requires_grad=True),
        entropy=th.zeros(4),
        advantages=th.tensor([1.0, 1.0, -1.0, -1.0]),
        returns=th.full((4,), 5.0),
        old_values=th.zeros(4),
        old_log_prob=th.tensor([-0.5, 0.0, 0.5, 0.0]),
    )
    batch.update(changes)
    return MinibatchEvaluation(**batch)


def test_clipped_surrogate_stops_the_gradient_outside_the_trust_region():
    model = RTRLPPO("MlpLstmPolicy", recall_env(), n_steps=8, normalize_advantage=False, policy_kwargs=SMALL, seed=0)
    batch = loss_inputs()
    loss, stats = model._minibatch_loss(batch, clip_range=0.2, clip_range_vf=None)
    loss.backward()
    # ratios e^0.5, 1, e^-0.5, 1: the first is above 1.2 with a positive advantage, the third below 0.8 with a
    # negative one; both are clipped, so their log-probabilities get no gradient.
    np.testing.assert_allclose(batch.log_prob.grad.numpy(), [0.0, -0.25, 0.0, 0.25], atol=1e-7)
    assert stats["clip_fraction"] == 0.5
    # The policy loss itself: -mean(min(A r, A clip(r))) = -(1.2 + 1 - 0.8 - 1) / 4
    assert stats["policy_loss"] == pytest.approx(-0.1, abs=1e-6)


def test_value_clipping_around_the_old_values():
    model = RTRLPPO("MlpLstmPolicy", recall_env(), n_steps=8, policy_kwargs=SMALL, seed=0)
    batch = loss_inputs(old_values=th.tensor([0.0, 0.05, 0.5, 0.0]))
    loss, _ = model._minibatch_loss(batch, clip_range=0.2, clip_range_vf=0.1)
    loss.backward()
    grad = batch.values.grad.numpy()
    # Entry 2 is 0.5 below its old value: clipped to old - 0.1, its gradient is zero; the others move freely.
    assert grad[2] == 0.0 and np.all(grad[[0, 1, 3]] < 0)
    batch = loss_inputs(old_values=th.tensor([0.0, 0.05, 0.5, 0.0]))
    loss, _ = model._minibatch_loss(batch, clip_range=0.2, clip_range_vf=None)
    loss.backward()
    assert batch.values.grad[2] < 0


def test_advantage_normalization_makes_the_loss_scale_free():
    model = RTRLPPO("MlpLstmPolicy", recall_env(), n_steps=8, normalize_advantage=True, policy_kwargs=SMALL, seed=0)
    small = model._minibatch_loss(loss_inputs(advantages=th.tensor([1.0, 2.0, -1.0, 0.5])), 0.2, None)[1]
    large = model._minibatch_loss(loss_inputs(advantages=th.tensor([100.0, 200.0, -100.0, 50.0])), 0.2, None)[1]
    assert small["policy_loss"] == pytest.approx(large["policy_loss"], rel=1e-5)
    model.normalize_advantage = False
    raw = model._minibatch_loss(loss_inputs(advantages=th.tensor([100.0, 200.0, -100.0, 50.0])), 0.2, None)[1]
    assert abs(raw["policy_loss"]) > 10 * abs(small["policy_loss"])


def test_target_kl_stops_the_epochs_early():
    model = RTRLPPO(
        "MlpLstmPolicy",
        recall_env(n_envs=4),
        n_steps=16,
        batch_size=16,
        n_epochs=5,
        learning_rate=1e-2,
        target_kl=1e-9,
        policy_kwargs=SMALL,
        seed=0,
    )
    steps = []
    step = model.policy.optimizer.step
    model.policy.optimizer.step = lambda *a, **k: steps.append(1) or step(*a, **k)
    model.learn(64)
    # The first minibatch has KL 0 and updates; the next one has moved away and stops the whole update.
    assert len(steps) == 1 and model._n_updates == 1
    model = RTRLPPO(
        "MlpLstmPolicy",
        recall_env(n_envs=4),
        n_steps=16,
        batch_size=16,
        n_epochs=5,
        learning_rate=1e-2,
        policy_kwargs=SMALL,
        seed=0,
    )
    model.learn(64)
    assert model._n_updates == 5


def test_recurrent_ppo_arguments_and_defaults():
    """Every RecurrentPPO argument exists with its default; every RecurrentPPO policy keyword is taken or refused."""
    ours = inspect.signature(RTRLPPO.__init__).parameters
    for name, param in inspect.signature(RecurrentPPO.__init__).parameters.items():
        assert name in ours, f"RecurrentPPO's {name} is missing"
        assert ours[name].default == param.default, f"{name}: default {ours[name].default} != {param.default}"
    from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy

    from sb3_rtrl.policies import RTRLActorCriticPolicy

    policy_params = inspect.signature(RTRLActorCriticPolicy.__init__).parameters
    missing = set(inspect.signature(RecurrentActorCriticPolicy.__init__).parameters) - set(policy_params)
    assert not missing, f"RecurrentPPO policy keywords the eLSTM policies do not take: {missing}"
    env = recall_env()
    for kwargs, match in [
        (dict(n_lstm_layers=2), "n_lstm_layers"),
        (dict(lstm_kwargs=dict(dropout=0.1)), "lstm_kwargs"),
        (dict(shared_lstm=True, enable_critic_lstm=True), "shared_lstm"),
    ]:
        with pytest.raises(ValueError, match=match):
            RTRLPPO("MlpLstmPolicy", env, policy_kwargs=kwargs)
    for kwargs, match in [
        (dict(n_epochs=0), "n_epochs"),
        (dict(batch_size=0), "batch_size"),
        (dict(clip_range=-0.1), "clip_range"),
        (dict(clip_range_vf=0.0), "clip_range_vf"),
        (dict(target_kl=-1.0), "target_kl"),
        (dict(batch_size=1), "normalize_advantage"),
    ]:
        with pytest.raises(ValueError, match=match):
            RTRLPPO("MlpLstmPolicy", env, **kwargs)


def test_recurrent_ppo_script_runs_with_the_class_changed(tmp_path):
    env = recall_env(n_envs=4)
    kwargs = dict(
        n_steps=32,
        batch_size=64,
        n_epochs=2,
        learning_rate=7e-4,
        gae_lambda=0.98,
        max_grad_norm=1.0,
        clip_range=lambda progress: 0.2 * progress,
        clip_range_vf=0.5,
        target_kl=0.5,
        policy_kwargs=dict(lstm_hidden_size=16, net_arch=dict(vf=[16], pi=[]), ortho_init=False),
        seed=0,
    )
    model = RTRLPPO("MlpLstmPolicy", env, **kwargs)
    model.learn(256)
    assert model.logger.name_to_value["train/clip_range"] < 0.2
    mean, _ = evaluate_policy(model, recall_env(n_envs=1, seed=5), n_eval_episodes=4)
    assert np.isfinite(mean)
    model.save(tmp_path / "ppo")
    loaded = RTRLPPO.load(tmp_path / "ppo", env=recall_env(n_envs=3))
    obs = recall_env(n_envs=1, seed=7).reset()
    a, state = model.predict(obs, None, np.ones(1, bool), deterministic=True)
    b, state_b = loaded.predict(obs, None, np.ones(1, bool), deterministic=True)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(state[0], state_b[0])
    loaded.learn(128, reset_num_timesteps=False)
    assert loaded.num_timesteps >= model.num_timesteps + 128
    for key in ("train/approx_kl", "train/clip_fraction", "train/policy_gradient_loss", "train/rtrl_sensitivity_rms"):
        assert key in loaded.logger.name_to_value


@pytest.mark.parametrize(
    "policy_kwargs, gain",
    [
        (None, 2.0),
        (dict(lstm_hidden_size=16), 2.0),
        (dict(cell="mixed_gated_v4"), 2.0),  # the default cell named: the default network still
        (dict(cell="mixed_gated_v2"), 2.0),  # the default before, the same layer: as it was
        (dict(cell="mixed_gated_v3"), 1.0),
        (dict(action_latent_gain=1.0), 1.0),
        (dict(cell="elstm"), 1.0),
        (dict(cell="rtu"), 1.0),
    ],
)
def test_the_default_network_reads_its_actions_at_twice_the_latent(tmp_path, policy_kwargs, gain):
    """
    RTRLPPO's default cell (and the default before it, the same layer) gets the action layer's gain 2 unless the gain is
    named; another cell keeps SB3's head. A new model names the gain in its saved policy_kwargs, so it keeps it through
    save and load, safely too.
    """
    from sb3_rtrl import RTRLA2C
    from sb3_rtrl.safe_load import load_model

    model = RTRLPPO("MlpLstmPolicy", recall_env(), n_steps=8, batch_size=8, policy_kwargs=policy_kwargs, seed=0)
    assert model.policy.action_latent_gain == gain
    model.save(tmp_path / "ppo.zip")
    for loaded in (RTRLPPO.load(tmp_path / "ppo.zip"), load_model(tmp_path / "ppo.zip")):
        assert loaded.policy.action_latent_gain == gain
        assert loaded.policy_kwargs == model.policy_kwargs
    # RTRLA2C's default network keeps SB3's head.
    assert RTRLA2C("MlpLstmPolicy", recall_env(), policy_kwargs=policy_kwargs).policy.action_latent_gain == 1.0


@pytest.mark.parametrize("algo", ["RTRLPPO", "RTRLA2C"])
@pytest.mark.parametrize(
    "policy_kwargs, parts",
    [
        (None, {}),
        (dict(cell="elstm"), {}),
        (dict(optimizer_kwargs=dict(eps=1e-6)), {}),
        (dict(cell="rtu", cell_optimizer_kwargs={"*": dict(eps=1e-7)}), {"*": 1e-7}),
        (dict(cell_optimizer_kwargs={"gated": dict(eps=1e-8)}, enable_critic_lstm=True), {"gated": 1e-8}),
        (dict(cell_optimizer_kwargs={"*": dict(eps=1e-6), "rtu": dict(eps=1e-7)}), {"rtu": 1e-7, "*": 1e-6}),
    ],
)
def test_parts_of_the_cell_step_with_their_own_optimizer_keywords(tmp_path, algo, policy_kwargs, parts):
    """
    By default every parameter is in one group (SB3's eps of 1e-5); ``cell_optimizer_kwargs`` put each part of the cell
    it names (``"*"``: the rest of the cell) in a group of its own with its keywords, each parameter in one group. The
    groups (and their optimizer state) survive save and load, safely too.
    """
    from sb3_rtrl import RTRLA2C
    from sb3_rtrl.safe_load import load_model

    cls = {"RTRLPPO": RTRLPPO, "RTRLA2C": RTRLA2C}[algo]
    kwargs = dict(n_steps=8, batch_size=8) if cls is RTRLPPO else dict(n_steps=4)
    model = cls("MlpLstmPolicy", recall_env(), policy_kwargs=policy_kwargs, seed=0, **kwargs)
    groups = model.policy.optimizer.param_groups
    # RTRLA2C, as SB3's A2C, replaces optimizer_kwargs by RMSprop's unless optimizer_class is named.
    rest_eps = (policy_kwargs or {}).get("optimizer_kwargs", {}).get("eps", 1e-5) if cls is RTRLPPO else 1e-5
    assert [group["eps"] for group in groups] == [rest_eps, *parts.values()]
    cell = model.policy.cell
    named = [part for part in parts if part != "*"]
    for part, group in zip(parts, groups[1:]):
        if part == "*":
            others = {id(p) for name in named for p in getattr(cell, name).parameters()}
            expected = {id(p) for p in cell.parameters()} - others
        else:
            expected = {id(p) for p in getattr(cell, part).parameters()}
        assert {id(p) for p in group["params"]} == expected and expected, part
    ids = [id(p) for group in groups for p in group["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.policy.parameters())  # each parameter in one group
    model.learn(16)
    model.save(tmp_path / "model.zip")
    for loaded in (cls.load(tmp_path / "model.zip"), load_model(tmp_path / "model.zip")):
        assert [group["eps"] for group in loaded.policy.optimizer.param_groups] == [group["eps"] for group in groups]
        loaded_state = loaded.policy.optimizer.state_dict()["state"]
        for index, state in model.policy.optimizer.state_dict()["state"].items():
            for key, value in state.items():
                assert th.equal(loaded_state[index][key], value), (index, key)


def test_a_part_s_eps_is_what_moves_a_parameter_with_a_small_gradient():
    """
    The reason for the groups: a cell parameter whose gradient is far below 1e-5 takes a step of about the learning rate
    with eps 1e-8, and a small fraction of it with SB3's eps of 1e-5.
    """
    steps = {}
    for eps in (1e-5, 1e-8):
        model = RTRLPPO(
            "MlpLstmPolicy",
            recall_env(),
            n_steps=8,
            batch_size=8,
            learning_rate=1e-3,
            policy_kwargs=dict(lstm_hidden_size=8, cell_optimizer_kwargs={"gated": dict(eps=eps)}),
        )
        weight = model.policy.cell.gated.weight_ih
        before = weight.detach().clone()
        model.policy.optimizer.zero_grad()
        weight.grad = th.full_like(weight, 1e-7)
        model.policy.optimizer.step()
        steps[eps] = (before - weight.detach()).abs().max().item()
    # Adam's first step is lr * g / (|g| + eps): 0.91 lr with eps 1e-8, 0.01 lr with 1e-5.
    assert steps[1e-8] > 0.8e-3
    assert steps[1e-5] < 0.02e-3


@pytest.mark.parametrize("cell", ["elstm", "rtu"])
def test_safe_load_of_an_rtrl_ppo_model(tmp_path, cell):
    from sb3_rtrl.safe_load import load_model

    kwargs = dict(SMALL, cell=cell, cell_kwargs=dict(activation="relu") if cell == "rtu" else None)
    model = RTRLPPO(
        "MlpLstmPolicy", recall_env(), n_steps=8, batch_size=8, n_epochs=1, chunk_length=4, policy_kwargs=kwargs, seed=0
    )
    model.learn(16)
    model.save(tmp_path / "ppo.zip")
    loaded = load_model(tmp_path / "ppo.zip", trust_remote_code=False)
    assert type(loaded) is RTRLPPO
    assert loaded.clip_range(1.0) == 0.2 and loaded.n_epochs == 1 and loaded.chunk_length == 4
    assert loaded.policy.cell_name == cell and repr(loaded.policy.cell) == repr(model.policy.cell)
    for p, q in zip(model.policy.parameters(), loaded.policy.parameters()):
        assert th.equal(p, q)


def test_separate_features_extractors_train_save_and_load_safely(tmp_path):
    """RecurrentPPO's share_features_extractor=False: the critic's extractor and cell are trained, saved and loaded."""
    from sb3_rtrl.safe_load import load_model

    kwargs = dict(SMALL, share_features_extractor=False, cell="elstm")  # the masks on the eLSTM's weights, read below
    model = RTRLPPO("MlpLstmPolicy", recall_env(), n_steps=8, batch_size=8, n_epochs=2, policy_kwargs=kwargs, seed=0)
    before = model.policy.cell.weight_ih.detach().clone()
    model.learn(32)
    moved = (model.policy.cell.weight_ih.detach() - before).abs()
    # Both groups train, and neither weighs the other's features (one-hot observations of width 3 here).
    n, width = model.policy.hidden_size, model.policy.features_dim
    assert moved[:n, :width].sum() > 0 and moved[n : 2 * n, width : 2 * width].sum() > 0
    assert moved[:n, width : 2 * width].sum() == 0 and moved[n : 2 * n, :width].sum() == 0
    model.save(tmp_path / "ppo.zip")
    loaded = load_model(tmp_path / "ppo.zip", trust_remote_code=False)
    assert loaded.policy.share_features_extractor is False and loaded.policy.critic_cell
    obs = recall_env(n_envs=1, seed=3).reset()
    a, state = model.predict(obs, None, np.ones(1, bool), deterministic=True)
    b, state_b = loaded.predict(obs, None, np.ones(1, bool), deterministic=True)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(state[0], state_b[0])
