"""Every bad input gets an error that names the problem, at construction, at learn, at predict and at load."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import IdentityEnv, SimpleMultiObsEnv
from stable_baselines3.common.vec_env import VecEnv

from sb3_rtrl import RTRLA2C, RTRLPPO
from sb3_rtrl.envs import DELAYED_RECALL_ID, make_atari_env
from sb3_rtrl.safe_load import load_model


def recall_env(n_envs: int = 2):
    return make_vec_env(DELAYED_RECALL_ID, n_envs=n_envs, seed=0, env_kwargs=dict(delay=3))


class SpaceEnv(gym.Env):
    """An environment with the given observation space (never stepped: the error comes first)."""

    def __init__(self, space: spaces.Space):
        self.observation_space = space
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, True, False, {}


def make(**kwargs) -> RTRLA2C:
    kwargs.setdefault("policy_kwargs", dict(hidden_size=4))
    policy = kwargs.pop("policy", "MlpLstmPolicy")
    env = kwargs.pop("env", None) or recall_env()
    return RTRLA2C(policy, env, **kwargs)


def predict_with(prev_action_shape=None, reward=None) -> Callable[[], object]:
    def run():
        model = make(policy_kwargs=dict(hidden_size=4, prev_action=True, prev_reward=True))
        obs = model.get_env().reset()
        _, state = model.predict(obs, episode_start=np.ones(2, bool), reward=np.zeros(2))
        if prev_action_shape is not None:
            state = (state[0], np.zeros(prev_action_shape, np.float32))
        model.predict(obs, state=state, reward=np.zeros(2) if reward is None else reward)

    return run


CASES: list[tuple[str, Callable[[], object], str]] = [
    ("n_steps=0", lambda: make(n_steps=0), r"n_steps must be an integer >= 1, got 0"),
    ("n_steps=-3", lambda: make(n_steps=-3), r"n_steps must be an integer >= 1, got -3"),
    ("n_steps=2.5", lambda: make(n_steps=2.5), r"n_steps must be an integer >= 1, got 2.5"),
    (
        "normalize_advantage, one advantage",
        lambda: make(n_steps=1, env=recall_env(1), normalize_advantage=True),
        r"normalize_advantage=True needs more than one advantage per update.*= 1",
    ),
    ("gamma=1.5", lambda: make(gamma=1.5), r"gamma must be in \[0, 1\], got 1.5"),
    ("gamma=nan", lambda: make(gamma=float("nan")), r"gamma must be a finite number"),
    ("gae_lambda=-0.1", lambda: make(gae_lambda=-0.1), r"gae_lambda must be in \[0, 1\], got -0.1"),
    ("gae_lambda=1.1", lambda: make(gae_lambda=1.1), r"gae_lambda must be in \[0, 1\], got 1.1"),
    ("max_grad_norm=0", lambda: make(max_grad_norm=0), r"max_grad_norm must be in \(0, inf\], got 0"),
    ("max_grad_norm=-1", lambda: make(max_grad_norm=-1.0), r"max_grad_norm must be in \(0, inf\], got -1"),
    ("learning_rate=-1e-3", lambda: make(learning_rate=-1e-3), r"learning_rate must be in \[0, inf\], got -0.001"),
    ("vf_coef=-1", lambda: make(vf_coef=-1), r"vf_coef must be in \[0, inf\]"),
    ("rms_prop_eps=0", lambda: make(rms_prop_eps=0), r"rms_prop_eps must be in \(0, inf\]"),
    ("ent_coef='auto'", lambda: make(ent_coef="auto"), r"ent_coef must be a number"),
    ("hidden_size=8.7", lambda: make(policy_kwargs=dict(hidden_size=8.7)), r"hidden_size must be an integer >= 1, got 8.7"),
    (
        "lstm_hidden_size=True",
        lambda: make(policy_kwargs=dict(lstm_hidden_size=True)),
        r"lstm_hidden_size must be an integer >= 1, got True",
    ),
    ("init_std=-1", lambda: with_policy(init_std=-1), r"init_std must be in \[0, inf\]"),
    ("action_latent_gain=0", lambda: with_policy(action_latent_gain=0), r"action_latent_gain must be in \(0, inf\]"),
    ("action_latent_gain=nan", lambda: with_policy(action_latent_gain=float("nan")), r"action_latent_gain must be"),
    ("action_latent_gain='3'", lambda: with_policy(action_latent_gain="3"), r"action_latent_gain must be"),
    ("learn(-5)", lambda: make().learn(-5), r"total_timesteps must be in \[0, inf\], got -5"),
    ("learn(nan)", lambda: make().learn(float("nan")), r"total_timesteps must be a finite number"),
    ("Text observations", lambda: make(env=SpaceEnv(spaces.Text(5))), r"observation space Text is not supported"),
    (
        "Graph observations",
        lambda: make(env=SpaceEnv(spaces.Graph(spaces.Box(0, 1, (2,)), None))),
        r"observation space Graph is not supported",
    ),
    (
        "Sequence observations",
        lambda: make(env=SpaceEnv(spaces.Sequence(spaces.Discrete(2)))),
        r"observation space Sequence is not supported",
    ),
    ("Dict inside Text", lambda: make(env=SpaceEnv(spaces.Dict(a=spaces.Text(3)))), r"observation space key 'a' is Text"),
    (
        "Dict observations, MlpLstmPolicy",
        lambda: make(env=SimpleMultiObsEnv()),
        r"Dict observations need MultiInputLstmPolicy",
    ),
    (
        "Dict observations, CnnLstmPolicy",
        lambda: make(policy="CnnLstmPolicy", env=SimpleMultiObsEnv()),
        r"Dict observations need MultiInputLstmPolicy",
    ),
    (
        "Box observations, MultiInputLstmPolicy",
        lambda: make(policy="MultiInputLstmPolicy", env=IdentityEnv(3)),
        r"MultiInputLstmPolicy reads Dict observations, but the observation space is Discrete",
    ),
    (
        "predict, previous action of the wrong size",
        predict_with(prev_action_shape=(1, 2, 5)),
        r"state\[1\] \(the previous action\) has shape \(1, 2, 5\), but 2 observation\(s\) need \(1, 2, 2\)",
    ),
    ("predict, reward of the wrong size", predict_with(reward=np.zeros(3)), r"reward has 3 entries for 2 observation"),
    (
        "rtrl_backend='cupy' on a CPU model",
        lambda: make(rtrl_backend="cupy", device="cpu"),
        r"rtrl_backend='cupy' runs CUDA kernels, but this model is on cpu",
    ),
    # Numbers given as text pass a range check by float() but would fail deep inside.
    ("gamma='0.99'", lambda: make(gamma="0.99"), r"gamma must be a number in \[0, 1\], got '0.99'"),
    ("gae_lambda='0.9'", lambda: make(gae_lambda="0.9"), r"gae_lambda must be a number .*got '0.9'"),
    ("ent_coef='0.01'", lambda: make(ent_coef="0.01"), r"ent_coef must be a number .*got '0.01'"),
    ("clip_range='0.2'", lambda: make_ppo(clip_range="0.2"), r"clip_range must be a number .*got '0.2'"),
    ("target_kl='0.01'", lambda: make_ppo(target_kl="0.01"), r"target_kl must be a number .*got '0.01'"),
    ("chunk_length=0", lambda: make_ppo(chunk_length=0), r"chunk_length must be .*got 0"),
    ("chunk_length='16'", lambda: make_ppo(chunk_length="16"), r"chunk_length must be .*got '16'"),
    ("sde_sample_freq='x'", lambda: make(sde_sample_freq="x"), r"sde_sample_freq must be an integer >= -1, got 'x'"),
    ("stats_window_size=0", lambda: make(stats_window_size=0), r"stats_window_size must be an integer >= 1, got 0"),
    ("stats_window_size=-1", lambda: make(stats_window_size=-1), r"stats_window_size must be an integer >= 1, got -1"),
    ("stats_window_size=2.5", lambda: make(stats_window_size=2.5), r"stats_window_size must be an integer >= 1, got 2.5"),
    ("net_arch=[0]", lambda: with_policy(net_arch=[0]), r"net_arch\[0\] must be an integer >= 1, got 0"),
    ("net_arch=[-1]", lambda: with_policy(net_arch=[-1]), r"net_arch\[0\] must be an integer >= 1, got -1"),
    ("net_arch=[8.5]", lambda: with_policy(net_arch=[8.5]), r"net_arch\[0\] must be an integer >= 1, got 8.5"),
    ("net_arch='64'", lambda: with_policy(net_arch="64"), r"net_arch must be a list of layer widths"),
    ("net_arch=dict(q=[4])", lambda: with_policy(net_arch=dict(q=[4])), r"takes the keys 'pi' and 'vf', got \['q'\]"),
    ("ortho_init='no'", lambda: with_policy(ortho_init="no"), r"ortho_init must be True or False, got 'no'"),
    ("skip_connection=1", lambda: with_policy(skip_connection=1), r"skip_connection must be True or False"),
    (
        "activation_fn='relu'",
        lambda: with_policy(activation_fn="relu"),
        r"activation_fn must be a subclass of torch.nn.modules.module.Module \(the class itself\), got the text 'relu'",
    ),
    (
        "activation_fn=ReLU()",
        lambda: with_policy(activation_fn=th.nn.ReLU()),
        r"activation_fn must be a subclass .*got an instance of ReLU",
    ),
    (
        "optimizer_class='adam'",
        lambda: with_policy(optimizer_class="adam"),
        r"optimizer_class must be a subclass of torch.optim.optimizer.Optimizer",
    ),
    (
        "optimizer_class=a function",
        lambda: with_policy(optimizer_class=lambda *a, **k: None),
        r"optimizer_class must be a subclass of torch.optim.optimizer.Optimizer",
    ),
    (
        "cell_optimizer_kwargs lr",
        lambda: with_policy(cell_optimizer_kwargs={"gated": dict(lr=1e-3)}),
        r"cell_optimizer_kwargs cannot set 'lr'.*learning rate schedule",
    ),
    (
        "cell_optimizer_kwargs eps=0",
        lambda: with_policy(cell_optimizer_kwargs={"gated": dict(eps=0.0)}),
        r"cell_optimizer_kwargs\['gated'\]\['eps'\] must be in \(0, inf\]",
    ),
    (
        "cell_optimizer_kwargs eps=nan",
        lambda: with_policy(cell_optimizer_kwargs={"*": dict(eps=float("nan"))}),
        r"cell_optimizer_kwargs\['\*'\]\['eps'\] must be a finite number",
    ),
    (
        "cell_optimizer_kwargs a list",
        lambda: with_policy(cell_optimizer_kwargs=[("eps", 1e-8)]),
        r"cell_optimizer_kwargs must be None or a dict",
    ),
    (
        "cell_optimizer_kwargs without a part",
        lambda: with_policy(cell_optimizer_kwargs=dict(eps=1e-8)),
        r"cell_optimizer_kwargs maps a part of the cell .* got 'eps': 1e-08",
    ),
    (
        "cell_optimizer_kwargs a part the cell lacks",
        lambda: with_policy(cell="elstm", cell_optimizer_kwargs={"gated": dict(eps=1e-8)}),
        r"cell_optimizer_kwargs names \['gated'\], not parts of the 'elstm' cell .*'\*' is the whole cell",
    ),
    (
        "cell_optimizer_kwargs not the optimizer's",
        lambda: with_policy(optimizer_class=th.optim.SGD, cell_optimizer_kwargs={"gated": dict(eps=1e-8)}),
        r"cell_optimizer_kwargs \['eps'\] are not keywords of SGD",
    ),
    (
        "cell_kwargs max_phase=inf",
        lambda: with_policy(cell="rtu", cell_kwargs=dict(max_phase=float("inf"))),
        r"finite numbers for r_min, r_max and max_phase, got 0.0, 1.0, inf",
    ),
    (
        "cell_kwargs forget_bias=nan",
        lambda: with_policy(cell="elstm", cell_kwargs=dict(forget_bias=float("nan"))),
        r"finite forget_bias",
    ),
    (
        "hidden_size below the default cell's least width",
        lambda: make(policy_kwargs=dict(hidden_size=3)),
        r"hidden_size=3 with cell 'mixed_gated_v4': MixedCell needs .* at least 3 units per group .* beside its 1 gated",
    ),
    (
        "RTU, odd hidden_size with a critic cell",
        lambda: make(policy_kwargs=dict(hidden_size=3, cell="rtu", enable_critic_lstm=True)),
        r"hidden_size=3 with cell 'rtu' \(the critic's cell doubles the cell's width to 6\)",
    ),
    (
        "learning-rate schedule going negative",
        lambda: make(learning_rate=lambda p: p - 0.5).learn(64),
        r"learning_rate \(the schedule's value at progress remaining .*\) must be in \[0, inf\], got -",
    ),
    (
        "clip_range schedule going negative",
        lambda: make_ppo(clip_range=lambda p: p - 0.9).learn(64),
        r"clip_range \(the schedule's value at progress remaining .*\) must be in \[0, inf\], got -",
    ),
    (
        "predict, episode_start as text",
        lambda: make().predict(np.zeros((2, 3), np.float32), episode_start=np.array(["False", "True"])),
        r"episode_start must hold bools \(or 0/1\), got dtype <U5",
    ),
    ("make_atari_env n_envs=0", lambda: make_atari_env("Pong", n_envs=0), r"n_envs must be an integer >= 1, got 0"),
    ("Text observations in the user's VecEnv", lambda: make(env=TextVecEnv()), r"observation space Text is not supported"),
]


class TextVecEnv(VecEnv):
    """A user's own VecEnv with Text observations (SB3's DummyVecEnv cannot even hold them)."""

    def __init__(self):
        super().__init__(2, spaces.Text(5), spaces.Discrete(2))

    def get_attr(self, attr_name, indices=None):
        return [None] * self.num_envs

    reset = step_async = step_wait = close = set_attr = env_method = env_is_wrapped = None  # never called


def with_policy(**policy_kwargs) -> RTRLA2C:
    return make(policy_kwargs=dict(hidden_size=4, **policy_kwargs))


def make_ppo(**kwargs) -> RTRLPPO:
    return RTRLPPO("MlpLstmPolicy", recall_env(), n_steps=8, batch_size=8, policy_kwargs=dict(hidden_size=4), **kwargs)


@pytest.mark.parametrize("what, call, match", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_named(what, call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "key, value, match",
    [("n_steps", -3, "n_steps must be"), ("gamma", 2.0, "gamma must be"), ("gradient", "bptt", "gradient must be one of")],
)
def test_bad_plain_values_in_a_saved_file_are_named_at_load(tmp_path, key, value, match):
    make(n_steps=2).save(tmp_path / "m.zip")
    with zipfile.ZipFile(tmp_path / "m.zip") as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(files["data"])
    data[key] = value
    files["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    for load in (load_model, RTRLA2C.load):
        with pytest.raises(ValueError, match=match):
            load(str(tmp_path / "bad.zip"))


def test_good_values_at_the_bounds_are_accepted():
    model = make(
        gamma=1.0,
        gae_lambda=0.0,
        max_grad_norm=float("inf"),
        n_steps=np.int64(2),
        vf_coef=0.0,
        policy_kwargs=dict(hidden_size=np.int32(4)),  # the default cell's least width: one unit of each kind
    )
    assert model.n_steps == 2 and isinstance(model.n_steps, int) and model.policy.hidden_size == 4
    model.learn(8)
    model.learn(0, reset_num_timesteps=False)
    model.learn(4.0, reset_num_timesteps=False)  # SB3 accepts float step counts such as 1e5
