"""RTRLA2C and its policies: the SB3 contract (spaces, predict, save/load, callbacks, logger)."""

import os
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import (
    FakeImageEnv,
    IdentityEnv,
    IdentityEnvBox,
    IdentityEnvMultiBinary,
    IdentityEnvMultiDiscrete,
    SimpleMultiObsEnv,
)
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_rtrl import RTRLA2C, RTRLActorCriticPolicy
from sb3_rtrl.a2c import default_ent_coef
from sb3_rtrl.envs import DELAYED_RECALL_ID

SMALL = dict(hidden_size=16)


def recall_env(n_envs=2, delay=5, seed=0):
    return make_vec_env(DELAYED_RECALL_ID, n_envs=n_envs, seed=seed, env_kwargs=dict(delay=delay))


@pytest.mark.parametrize(
    "policy, env_fn",
    [
        ("MlpLstmPolicy", lambda: IdentityEnv(4)),
        ("MlpELSTMPolicy", lambda: IdentityEnvBox(ep_length=10)),
        ("MlpLstmPolicy", lambda: IdentityEnvMultiDiscrete(3)),
        ("MlpELSTMPolicy", lambda: IdentityEnvMultiBinary(3)),
        ("CnnLstmPolicy", lambda: FakeImageEnv(screen_height=36, screen_width=36, n_channels=1)),
        ("CnnELSTMPolicy", lambda: FakeImageEnv(screen_height=36, screen_width=36, n_channels=3, discrete=False)),
        ("MultiInputLstmPolicy", lambda: SimpleMultiObsEnv(random_start=True)),
        ("MultiInputELSTMPolicy", lambda: SimpleMultiObsEnv(random_start=True)),
    ],
)
@pytest.mark.parametrize("gradient", ["rtrl", "tbptt"])
def test_aliases_and_spaces_learn_and_predict(policy, env_fn, gradient):
    env = DummyVecEnv([env_fn, env_fn])
    kwargs = dict(SMALL)
    if policy.startswith("Cnn"):
        kwargs["features_extractor_kwargs"] = dict(features_dim=32)
    model = RTRLA2C(policy, env, n_steps=4, gradient=gradient, policy_kwargs=kwargs, seed=0)
    model.learn(40)
    assert model.num_timesteps >= 40
    obs = env.reset()
    actions, state = model.predict(obs, state=None, episode_start=np.ones(2, bool))
    assert actions.shape == (2, *env.action_space.shape)
    assert len(state) == 1 and state[0].shape == (1, 2, 16)
    for a in actions:
        assert env.action_space.contains(a.astype(env.action_space.dtype) if hasattr(a, "astype") else a)
    sens = model._rtrl_state.sensitivities
    if gradient == "rtrl":
        assert any(s.abs().max() > 0 for s in sens)
    else:
        assert all(s.abs().max() == 0 for s in sens)


@pytest.mark.parametrize("cell", ["elstm", "rtu", "gated", "mixed_gated"])
def test_training_pass_replays_acting_exactly(cell):
    """Log-probabilities and values recomputed over the segment equal those recorded while acting."""
    env = recall_env(n_envs=3, delay=3)
    model = RTRLA2C(
        "MlpLstmPolicy",
        env,
        n_steps=7,
        seed=1,
        policy_kwargs=dict(hidden_size=8, prev_action=True, prev_reward=True, cell=cell),
    )
    model.learn(3 * 7 * 3)  # a few updates, so sensitivities and weights are non-trivial
    model._setup_learn(0, reset_num_timesteps=False)
    from stable_baselines3.common.callbacks import CallbackList

    callback = CallbackList([])
    callback.init_callback(model)
    assert model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
    buf = model.rollout_buffer
    sample = buf.get_rollout()
    assert sample.episode_starts.any(), "the segment must contain an episode start"
    assert sample.prev_actions is not None and sample.prev_rewards is not None
    with th.no_grad():
        values, log_prob, _, new_state = model.policy.evaluate_segment(
            sample.observations,
            sample.actions,
            sample.episode_starts,
            sample.start_state,
            sample.prev_actions,
            sample.prev_rewards,
        )
    np.testing.assert_allclose(log_prob.numpy(), buf.log_probs.reshape(-1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(values.numpy(), buf.values.reshape(-1), rtol=1e-5, atol=1e-5)
    th.testing.assert_close(new_state.c, model._last_cell_state, rtol=1e-5, atol=1e-6)


def test_determinism():
    def run():
        model = RTRLA2C("MlpLstmPolicy", recall_env(), n_steps=4, policy_kwargs=SMALL, seed=3)
        model.learn(200)
        obs = model.env.reset()
        out, state = [], None
        starts = np.ones(2, bool)
        for _ in range(10):
            action, state = model.predict(obs, state=state, episode_start=starts, deterministic=False)
            obs, reward, done, _ = model.env.step(action)
            starts = done
            out.append((action.copy(), reward.copy()))
        return out, [p.detach().clone() for p in model.policy.parameters()]

    (a1, p1), (a2, p2) = run(), run()
    for (x1, r1), (x2, r2) in zip(a1, a2):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(r1, r2)
    for x, y in zip(p1, p2):
        assert th.equal(x, y)


def rollout_actions(model, env, steps=15, seed=0):
    env.seed(seed)
    obs = env.reset()
    state, starts, actions = None, np.ones(env.num_envs, bool), []
    for _ in range(steps):
        action, state = model.predict(obs, state=state, episode_start=starts, deterministic=True)
        obs, _, starts, _ = env.step(action)
        actions.append(action)
    return np.array(actions)


@pytest.mark.parametrize(
    "cell_kwargs",
    [dict(forget_bias=2.0), dict(cell="rtu", cell_kwargs=dict(activation="relu")), dict(action_latent_gain=3.0)],
    ids=["elstm", "rtu", "action-gain"],
)
def test_save_load_round_trip_and_resume(tmp_path, cell_kwargs):
    env = recall_env()
    model = RTRLA2C("MlpLstmPolicy", env, n_steps=4, policy_kwargs=dict(hidden_size=16, **cell_kwargs), seed=0)
    model.learn(200)
    before = rollout_actions(model, recall_env())
    model.save(tmp_path / "model.zip")
    loaded = RTRLA2C.load(tmp_path / "model.zip", env=recall_env(n_envs=3))
    # The cell and its keywords come back (forget_bias 2.0, the RTU's ReLU).
    assert repr(loaded.policy.cell) == repr(model.policy.cell)
    assert loaded.policy.action_latent_gain == model.policy.action_latent_gain
    np.testing.assert_array_equal(rollout_actions(loaded, recall_env()), before)
    for p, q in zip(model.policy.parameters(), loaded.policy.parameters()):
        assert th.equal(p, q)
    # The per-env state was not saved, and training resumes with another number of environments.
    loaded.learn(120, reset_num_timesteps=False)
    assert loaded._last_cell_state.shape == (3, 16)
    assert loaded.num_timesteps > model.num_timesteps
    # policy.save / load alone
    model.policy.save(tmp_path / "policy.pth")
    policy = RTRLActorCriticPolicy.load(tmp_path / "policy.pth")
    np.testing.assert_array_equal(rollout_actions(policy, recall_env()), before)


def test_predict_contract_and_errors():
    model = RTRLA2C("MlpLstmPolicy", recall_env(), n_steps=4, policy_kwargs=SMALL, seed=0)
    obs = model.env.reset()
    # A single (non-vectorized) observation works too.
    action, state = model.predict(obs[0])
    assert np.shape(action) == () and state[0].shape == (1, 1, 16)
    _, state = model.predict(obs, episode_start=np.array([True, False]))
    with pytest.raises(ValueError, match=r"state\[0\] has shape \(1, 2, 16\), but 3 observation"):
        model.predict(np.concatenate([obs, obs[:1]]), state=state)
    with pytest.raises(ValueError, match="episode_start has 1 entries for 2"):
        model.predict(obs, state=state, episode_start=np.array([True]))
    with pytest.raises(ValueError, match="state must be a tuple of 1 arrays"):
        model.predict(obs, state=(state[0], state[0]))
    # The state carries memory: a cue seen earlier changes the next action's state.
    _, s1 = model.predict(obs, state=None)
    assert not np.allclose(s1[0], 0)
    _, s_reset = model.predict(obs, state=s1, episode_start=np.ones(2, bool))
    _, s_fresh = model.predict(obs, state=None, episode_start=np.ones(2, bool))
    np.testing.assert_allclose(s_reset[0], s_fresh[0])


def test_ppo_only_kwargs_warn_once_and_unknown_fail():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        RTRLA2C("MlpLstmPolicy", recall_env(), n_epochs=10, batch_size=64, clip_range=0.2, policy_kwargs=SMALL)
    messages = [str(w.message) for w in caught if "PPO-only" in str(w.message)]
    assert len(messages) == 1 and "n_epochs, batch_size, clip_range" in messages[0]
    with pytest.raises(TypeError):
        RTRLA2C("MlpLstmPolicy", recall_env(), not_a_kwarg=1)


def test_recurrent_ppo_script_runs_unchanged():
    """The same keyword arguments as a RecurrentPPO script, including its policy_kwargs."""
    policy_kwargs = dict(lstm_hidden_size=24, n_lstm_layers=1, enable_critic_lstm=False, net_arch=[16])
    kwargs = dict(
        n_steps=8, batch_size=16, n_epochs=2, gamma=0.98, ent_coef=0.01, learning_rate=1e-3, policy_kwargs=policy_kwargs
    )
    RecurrentPPO("MlpLstmPolicy", recall_env(), **kwargs).learn(32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = RTRLA2C("MlpLstmPolicy", recall_env(), **kwargs).learn(32)
    assert model.policy.cell.state_size == 24
    mean, _ = evaluate_policy(model, recall_env(), n_eval_episodes=4)
    assert -1.0 <= mean <= 1.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(gradient="bptt"), "gradient must be one of"),
        (dict(rtrl_method="scan"), "rtrl_method must be one of"),
        (dict(rtrl_backend="jax"), "rtrl_backend must be one of"),
        (dict(policy_kwargs=dict(n_lstm_layers=2)), "n_lstm_layers=2"),
        (dict(policy_kwargs=dict(share_features_extractor=False, shared_lstm=True)), "share_features_extractor=False"),
        (dict(policy_kwargs=dict(lstm_kwargs=dict(dropout=0.1))), "lstm_kwargs"),
        (dict(policy_kwargs=dict(hidden_size=0)), "hidden_size must be an integer >= 1, got 0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RTRLA2C("MlpLstmPolicy", recall_env(), **kwargs)


class TupleObsEnv(gym.Env):
    observation_space = spaces.Tuple([spaces.Discrete(2), spaces.Discrete(3)])
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        return (0, 0), {}

    def step(self, action):
        return (0, 0), 0.0, True, False, {}


def test_unsupported_spaces_rejected():
    with pytest.raises(ValueError, match="observation space Tuple is not supported"):
        RTRLA2C("MlpLstmPolicy", TupleObsEnv())


def test_evaluate_policy_and_callbacks(tmp_path):
    model = RTRLA2C("MlpLstmPolicy", recall_env(), n_steps=4, policy_kwargs=SMALL, seed=0)
    eval_cb = EvalCallback(recall_env(n_envs=1), n_eval_episodes=3, eval_freq=25, log_path=str(tmp_path), warn=False)
    ckpt_cb = CheckpointCallback(save_freq=50, save_path=str(tmp_path / "ckpt"), name_prefix="m")
    model.learn(200, callback=[eval_cb, ckpt_cb], progress_bar=True)
    assert os.path.exists(tmp_path / "evaluations.npz")
    assert len(np.load(tmp_path / "evaluations.npz")["results"]) >= 2
    saved = sorted(os.listdir(tmp_path / "ckpt"))
    assert saved and all(name.startswith("m_") for name in saved)
    RTRLA2C.load(tmp_path / "ckpt" / saved[-1])
    mean, std = evaluate_policy(model, recall_env(), n_eval_episodes=6)
    assert -1.0 <= mean <= 1.0 and std >= 0


def test_logger_has_a2c_and_rtrl_keys(tmp_path):
    model = RTRLA2C("MlpLstmPolicy", recall_env(), n_steps=4, policy_kwargs=SMALL, seed=0)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(80, log_interval=1)
    import csv

    with open(tmp_path / "progress.csv") as f:
        keys = set(next(csv.reader(f)))
    expected = {"train/policy_loss", "train/value_loss", "train/entropy_loss", "train/explained_variance"}
    expected |= {"train/learning_rate", "train/rtrl_sensitivity_rms", "train/rtrl_cell_state_rms", "rollout/success_rate"}
    assert expected <= keys, expected - keys


def test_prev_action_reward_inputs_and_predict_state():
    env = recall_env()
    model = RTRLA2C(
        "MlpLstmPolicy", env, n_steps=4, policy_kwargs=dict(hidden_size=8, prev_action=True, prev_reward=True), seed=0
    )
    assert model.policy.cell.input_size == env.observation_space.shape[0] + 2 + 1
    model.learn(100)
    obs = env.reset()
    with pytest.warns(UserWarning, match="reads the previous reward"):
        _, state = model.predict(obs)
    assert len(state) == 2 and state[1].shape == (1, 2, 2)
    np.testing.assert_allclose(state[1].sum(-1), 1.0)  # one-hot previous action
    action, state = model.predict(obs, state=state, reward=np.array([1.0, -1.0]))
    assert action.shape == (2,)


def test_frozen_features_extractor_loaded_from_a_saved_model(tmp_path):
    env = FakeImageEnv(screen_height=36, screen_width=36, n_channels=1)
    kwargs = dict(hidden_size=8, cell="elstm", features_extractor_kwargs=dict(features_dim=16))
    pre = RTRLA2C("CnnLstmPolicy", env, n_steps=4, gradient="tbptt", policy_kwargs=kwargs, seed=0)
    pre.learn(16)
    pre.save(tmp_path / "pre.zip")
    frozen_kwargs = dict(kwargs, freeze_features_extractor=True, features_extractor_weights=str(tmp_path / "pre.zip"))
    model = RTRLA2C("CnnLstmPolicy", env, n_steps=4, policy_kwargs=frozen_kwargs, seed=1)
    for p, q in zip(pre.policy.features_extractor.parameters(), model.policy.features_extractor.parameters()):
        assert th.equal(p, q) and not q.requires_grad
    before = [p.clone() for p in model.policy.features_extractor.parameters()]
    cell_before = model.policy.cell.weight_ih.clone()
    model.learn(16)
    for p, q in zip(before, model.policy.features_extractor.parameters()):
        assert th.equal(p, q)
    assert not th.equal(cell_before, model.policy.cell.weight_ih)
    with pytest.raises(ValueError, match="no saved model at"):
        RTRLA2C("CnnLstmPolicy", env, policy_kwargs=dict(kwargs, features_extractor_weights=str(tmp_path / "missing.zip")))


@pytest.mark.parametrize(
    "env_fn", [lambda: IdentityEnv(4), lambda: IdentityEnvMultiBinary(3), lambda: IdentityEnvBox(ep_length=10)]
)
def test_the_entropy_bonus_is_the_same_for_every_action_space(env_fn):
    """0.01 by default for discrete and Box actions alike, left out or None (default_ent_coef stays); a value is kept."""
    env = env_fn()
    assert default_ent_coef(env.action_space) == 0.01
    assert RTRLA2C("MlpLstmPolicy", env, policy_kwargs=SMALL).ent_coef == 0.01
    assert RTRLA2C("MlpLstmPolicy", env, ent_coef=None, policy_kwargs=SMALL).ent_coef == 0.01
    assert RTRLA2C("MlpLstmPolicy", env, ent_coef=0.0, policy_kwargs=SMALL).ent_coef == 0.0


class _SilentBoxEnv(gym.Env):
    """Box actions that change nothing and earn nothing: only the entropy bonus moves the standard deviation."""

    def __init__(self, low: float, high: float):
        self.observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Box(low, high, (2,), np.float32)
        self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self._t += 1
        return np.zeros(1, np.float32), 0.0, False, self._t >= 20, {}


@pytest.mark.parametrize("low, high", [(-2.0, 2.0), (-8.0, 8.0)])
def test_the_entropy_bonus_stops_raising_a_gaussians_std_at_half_the_action_range(low, high):
    """Under the bonus alone the log std climbs about the learning rate an update, up to log(half the range)."""
    env = DummyVecEnv([lambda: _SilentBoxEnv(low, high)] * 2)
    model = RTRLA2C("MlpLstmPolicy", env, n_steps=4, learning_rate=3e-3, ent_coef=1.0, policy_kwargs=SMALL, seed=0)
    start = float(np.log(2.0)) - 0.1
    with th.no_grad():
        model.policy.log_std.fill_(start)
    model.learn(4 * 2 * 150)
    log_std = model.policy.log_std.detach()
    if high == 2.0:
        assert log_std.max().item() <= np.log(2.0) + 0.05
        assert log_std.min().item() > np.log(2.0) - 0.05  # it did climb to the cap
    else:
        assert log_std.min().item() > start + 0.3  # its cap, log(8), is far above: the bonus keeps pushing


def test_the_capped_entropy_bonus_passes_no_gradient_above_the_cap():
    model = RTRLA2C("MlpLstmPolicy", IdentityEnvBox(low=-2.0, high=2.0, ep_length=10), policy_kwargs=SMALL)
    cap = float(np.log(2.0))
    for value, expected in ((cap - 0.5, -1.0), (cap + 0.5, 0.0), (cap + 40.0, 0.0)):
        with th.no_grad():
            model.policy.log_std.fill_(value)
        model.policy.log_std.grad = None
        mean = th.zeros(3, 1)
        entropy = model.policy.action_dist.proba_distribution(mean, model.policy.log_std).entropy()
        bonus_loss = model._bounded_entropy_loss(-entropy.mean())
        bonus_loss.backward()
        assert model.policy.log_std.grad.item() == pytest.approx(expected, abs=1e-6)
        # Its value is minus the entropy of the Gaussian with its std capped.
        capped = model.policy.action_dist.proba_distribution(mean, th.full((1,), min(value, cap))).entropy()
        assert bonus_loss.item() == pytest.approx(-capped.mean().item(), rel=1e-5)


def test_the_entropy_bonus_caps_the_widest_float32_bounds_without_warning():
    """Bounds at float32's largest value (SB3 refuses infinite ones): their width overflows float32, their cap is ~88.7."""
    bound = float(np.finfo(np.float32).max)
    env = _SilentBoxEnv(-bound, bound)
    model = RTRLA2C("MlpLstmPolicy", env, policy_kwargs=SMALL)
    with th.no_grad():
        model.policy.log_std.fill_(30.0)
    model.policy.log_std.grad = None
    entropy = model.policy.action_dist.proba_distribution(th.zeros(3, 2), model.policy.log_std).entropy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bonus_loss = model._bounded_entropy_loss(-entropy.mean())
    bonus_loss.backward()
    assert model.policy.log_std.grad.tolist() == pytest.approx([-1.0, -1.0])
