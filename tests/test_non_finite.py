"""Non-finite values are caught where they arise, named, with the update, before the weights change."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_rtrl import RTRLA2C, RTRLPPO
from sb3_rtrl.common.finite import NonFiniteError, first_non_finite, where_non_finite


class Poisoned(gym.Env):
    """A 3-float observation, 2 actions; from step ``at`` on, the reward or one observation entry is ``value``."""

    observation_space = spaces.Box(-np.inf, np.inf, (3,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self, what: str = "reward", value: float = np.nan, at: int = 5):
        self.what, self.value, self.at, self.t = what, value, at, 0

    def _obs(self) -> np.ndarray:
        obs = np.full(3, 0.5, np.float32)
        if self.what == "observation" and self.t >= self.at:
            obs[1] = self.value
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        reward = self.value if self.what == "reward" and self.t >= self.at else 1.0
        return self._obs(), float(reward), False, self.t % 20 == 0, {}


def model_on(env_fn, n_envs: int = 2, **policy_kwargs) -> RTRLA2C:
    env = DummyVecEnv([env_fn] * n_envs)
    return RTRLA2C("MlpLstmPolicy", env, n_steps=4, seed=0, policy_kwargs=dict(hidden_size=4, **policy_kwargs))


def weights(model: RTRLA2C) -> list[th.Tensor]:
    return [p.detach().clone() for p in model.policy.parameters()]


def learn_raises(model: RTRLA2C, match: str, steps: int = 64, reset_num_timesteps: bool = True) -> NonFiniteError:
    """learn() raises NonFiniteError matching ``match``, with the weights as the last completed update left them."""
    last = [weights(model)]
    train = model.train

    def spy() -> None:
        train()
        last.append(weights(model))

    model.train = spy  # type: ignore[method-assign]
    with pytest.raises(NonFiniteError, match=match) as info:
        model.learn(steps, reset_num_timesteps=reset_num_timesteps)
    for p, q in zip(last[-1], model.policy.parameters()):
        assert th.equal(p, q.detach()), "the failed update changed the weights"
    return info.value


def test_nan_reward_is_named_with_the_update_and_the_weights_stay():
    err = learn_raises(
        model_on(lambda: Poisoned("reward", np.nan, at=6)),
        r"non-finite reward \(nan at rollout step 1, environment 0\) at update 2 .*weights were not changed",
    )
    assert isinstance(err, FloatingPointError)


def test_nan_reward_read_by_the_cell_is_named_while_acting():
    learn_raises(
        model_on(lambda: Poisoned("reward", np.nan, at=6), prev_reward=True),
        r"non-finite previous reward \(nan at environment 0\) reached the policy, at step 2 of the rollout "
        r"for update 2",
    )


def test_nan_observation_is_named_while_acting():
    learn_raises(
        model_on(lambda: Poisoned("observation", np.nan, at=3)),
        r"non-finite observation \(nan at environment 0\) reached the policy, at step 3 of the rollout for update 1",
    )


def test_infinite_observation_is_named_before_the_update():
    # The eLSTM's gates saturate on inf, so acting goes on and the rollout check names it before the update.
    poisoned = model_on(lambda: Poisoned("observation", np.inf, at=3), cell="elstm")
    learn_raises(poisoned, r"non-finite observation \(inf at rollout step")
    # The default cell's linear RTU units pass inf on: it is named while acting.
    learn_raises(model_on(lambda: Poisoned("observation", np.inf, at=3)), r"non-finite observation \(inf at environment 0\)")


def test_huge_reward_names_the_loss_and_the_value_targets():
    learn_raises(
        model_on(lambda: Poisoned("reward", 1e30, at=1)),
        r"non-finite loss \(inf: .*value inf.*largest \|value target\| is [\d.]+e\+30: scale the rewards",
    )


@pytest.mark.parametrize("algo", [RTRLA2C, RTRLPPO])
def test_an_overflowing_gaussian_names_its_log_std(algo):
    """A log standard deviation near 44 overflows the log-probabilities; the error says so, not "scale the rewards"."""
    model = algo("MlpLstmPolicy", "Pendulum-v1", n_steps=8, policy_kwargs=dict(hidden_size=8), seed=0)
    with th.no_grad():
        model.policy.log_std.fill_(44.0)
    learn_raises(model, r"non-finite loss .*log standard deviation has reached 44: an entropy bonus")


def test_infinite_sensitivity_is_named_by_parameter():
    model = model_on(lambda: Poisoned("reward", 1.0))
    model.learn(8)
    model._rtrl_state.sensitivities[1][0, 0] = float("inf")  # the eLSTM units' weight_hh's sensitivity, environment 0
    learn_raises(
        model,
        r"non-finite sensitivity of cell\.elstm\.weight_hh \(inf at index \(0, 0\)\) at update 2",
        reset_num_timesteps=False,
    )


def test_non_finite_cell_state_is_named_while_acting():
    model = model_on(lambda: Poisoned("reward", 1.0))
    model.learn(8)
    model._last_cell_state = model._last_cell_state.clone()
    model._last_cell_state[1, 0] = float("nan")
    learn_raises(model, r"non-finite cell state \(nan at environment 1\) reached the policy", reset_num_timesteps=False)


def test_non_finite_gradient_is_named_by_parameter():
    model = model_on(lambda: Poisoned("reward", 1.0))
    model.policy.value_net.weight.register_hook(lambda grad: grad * float("nan"))
    learn_raises(model, r"non-finite gradient of value_net\.weight \(nan at index \(0, 0\)\) at update 1")


def test_finite_runs_are_untouched_and_bit_identical():
    """The checks change no numbers: two runs with one seed stay equal, and training still moves the weights."""
    runs = []
    for _ in range(2):
        model = model_on(lambda: Poisoned("reward", 1.0))
        start = weights(model)
        model.learn(64)
        runs.append(weights(model))
        assert any(not th.equal(p, q) for p, q in zip(start, runs[-1]))
    for p, q in zip(*runs):
        assert th.equal(p, q)


def test_where_non_finite_reports_the_first_bad_entry():
    assert where_non_finite(np.array([1.0, 2.0])) is None
    assert where_non_finite(np.array([1, 2], dtype=np.uint8)) is None
    assert where_non_finite(np.array([[0.0, 1.0], [np.nan, -np.inf]]), ("step", "env")) == "nan at step 1, env 0"
    assert where_non_finite(th.tensor([0.0, -float("inf")])) == "-inf at index (1,)"
    found = first_non_finite([("a", None), ("b", {"x": np.zeros(2), "y": np.array([np.inf])}), ("c", np.array([np.nan]))])
    assert found == "b['y'] (inf at index (0,))"
