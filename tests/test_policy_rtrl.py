"""The policy's RTRL gradient is exact for every option of the network around the cell (fp64, uncut sequences)."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from sb3_rtrl.policies import RTRLActorCriticPolicy
from sb3_rtrl.rtrl import initial_state

OPTIONS = [
    dict(),  # the paper's network: the heads read the cell's output
    dict(net_arch=[6, 5], skip_connection=True),
    dict(net_arch=dict(pi=[4], vf=[6]), skip_connection=True, forget_bias=(0.0, 3.0), prev_action=True, prev_reward=True),
    # RecurrentPPO's default: the critic's own cell, trained by RTRL too
    dict(net_arch=dict(pi=[4], vf=[6]), skip_connection=True, shared_lstm=False, forget_bias=(0.0, 3.0)),
    # RecurrentPPO's share_features_extractor=False: the critic's cell reads the critic's extractor
    dict(
        net_arch=dict(pi=[4], vf=[6]), skip_connection=True, share_features_extractor=False, prev_action=True, prev_reward=True
    ),
    # The actor's latent scaled before the action layer.
    dict(net_arch=[6, 5], skip_connection=True, action_latent_gain=3.0),
    # The RTU cell (an even hidden size: pairs of reals), with the default network and with separate extractors.
    dict(cell="rtu", hidden_size=6, net_arch=[6, 5], skip_connection=True, prev_action=True, prev_reward=True),
    dict(
        cell="rtu",
        hidden_size=6,
        cell_kwargs=dict(activation="relu", r_min=0.5),
        net_arch=dict(pi=[4], vf=[6]),
        skip_connection=True,
        share_features_extractor=False,
    ),
]
IDS = [
    "paper",
    "skip+mlp",
    "skip+mlp+spread+prev",
    "critic-cell",
    "critic-extractor",
    "action-gain",
    "rtu",
    "rtu-relu-critic-extractor",
]


def sequence(policy: RTRLActorCriticPolicy, steps: int, batch: int, generator: th.Generator) -> dict:
    obs = th.randn(steps * batch, 3, generator=generator, dtype=th.float64)
    actions = th.randint(0, 3, (steps * batch,), generator=generator)
    starts = th.rand(steps, batch, generator=generator) < 0.1
    starts[0] = True
    prev_actions = policy.encode_actions(th.randint(0, 3, (steps * batch, 1), generator=generator)).double()
    prev_rewards = th.randn(steps * batch, generator=generator, dtype=th.float64)
    weights = th.randn(3, steps * batch, generator=generator, dtype=th.float64)
    return dict(
        obs=obs,
        actions=actions,
        starts=starts,
        prev_actions=prev_actions if policy.prev_action else None,
        prev_rewards=prev_rewards if policy.prev_reward else None,
        weights=weights,
    )


def loss_and_state(policy, data, rows, state, gradient):
    """A sum of per-step terms (values, log-probabilities, entropies) over the steps ``rows`` of the sequence."""
    batch = data["starts"].shape[1]
    flat = slice(rows.start * batch, rows.stop * batch)
    prev_a = None if data["prev_actions"] is None else data["prev_actions"][flat]
    prev_r = None if data["prev_rewards"] is None else data["prev_rewards"][flat]
    values, log_prob, entropy, new_state = policy.evaluate_segment(
        data["obs"][flat],
        data["actions"][flat],
        data["starts"][rows],
        state,
        prev_a,
        prev_r,
        gradient=gradient,
        backend="torch",
    )
    w = data["weights"][:, flat]
    return (w[0] * values + w[1] * log_prob + w[2] * entropy).sum(), new_state


@pytest.mark.parametrize("options", OPTIONS, ids=IDS)
def test_segment_gradients_sum_to_autograd_over_the_uncut_sequence(options):
    th.manual_seed(0)
    policy = RTRLActorCriticPolicy(
        spaces.Box(-1, 1, (3,)), spaces.Discrete(3), lambda _: 1e-3, **{"hidden_size": 5, **options}
    ).double()
    # SB3's preprocessing casts Box observations to float32; FlattenExtractor of a (3,) Box is the identity.
    separate = not policy.share_features_extractor
    policy.extract_features = lambda obs, extractor=None: (obs, obs) if separate else obs  # type: ignore[method-assign]
    generator = th.Generator().manual_seed(1)
    steps, batch = 30, 3
    data = sequence(policy, steps, batch, generator)

    # Ground truth: autograd through the whole sequence from the zero state (nothing is cut).
    loss, _ = loss_and_state(policy, data, slice(0, steps), initial_state(policy.cell, batch), "tbptt")
    truth = th.autograd.grad(loss, list(policy.parameters()))

    # RTRL: segments of different lengths, the state and sensitivities carried, the weights unchanged.
    policy.zero_grad()
    state = initial_state(policy.cell, batch)
    for a, b in [(0, 7), (7, 8), (8, 21), (21, 30)]:
        loss, state = loss_and_state(policy, data, slice(a, b), state, "rtrl")
        loss.backward()
    names = [name for name, _ in policy.named_parameters()]
    for name, p, expected in zip(names, policy.parameters(), truth):
        error = (p.grad - expected).norm() / expected.norm().clamp_min(1e-300)
        assert error <= 1e-10, f"{name}: relative error {error:.2e}"
    # The carried sensitivities matter: without them (TBPTT) the recurrent weights' gradient differs.
    policy.zero_grad()
    state = initial_state(policy.cell, batch)
    for a, b in [(0, 7), (7, 8), (8, 21), (21, 30)]:
        loss, state = loss_and_state(policy, data, slice(a, b), state, "tbptt")
        loss.backward()
    recurrent = [names.index(f"cell.{spec.name}") for spec in policy.cell.rtrl_specs]
    got = th.cat([policy.cell.get_parameter(names[i][len("cell.") :]).grad.flatten() for i in recurrent])
    assert not np.allclose(got.numpy(), th.cat([truth[i].flatten() for i in recurrent]).numpy(), rtol=1e-6)


@pytest.mark.parametrize("action_space", [spaces.Discrete(3), spaces.Box(-1, 1, (2,))], ids=["discrete", "box"])
def test_the_action_latent_gain_is_the_action_layer_scaled(action_space):
    def make(gain):
        th.manual_seed(0)
        kwargs = dict(hidden_size=5, net_arch=[6], action_latent_gain=gain)
        return RTRLActorCriticPolicy(spaces.Box(-1, 1, (3,)), action_space, lambda _: 1e-3, **kwargs).double()

    plain, scaled = make(1.0), make(3.0)
    # The gain is no parameter: both start from the same weights.
    for p, q in zip(plain.parameters(), scaled.parameters()):
        assert th.equal(p, q)
    with th.no_grad():
        plain.action_net.weight.mul_(3.0)
    h = th.randn(4, plain.cell.state_size, dtype=th.float64)
    x = th.randn(4, 3, dtype=th.float64)

    def actions(dist):
        return dist.distribution.logits if isinstance(action_space, spaces.Discrete) else dist.distribution.mean

    (dist_plain, values_plain), (dist_scaled, values_scaled) = plain._heads(h, x), scaled._heads(h, x)
    th.testing.assert_close(actions(dist_scaled), actions(dist_plain), rtol=1e-12, atol=1e-12)
    # The values do not see the gain, and at gain 1 the actions differ.
    assert th.equal(values_plain, values_scaled)
    with th.no_grad():
        plain.action_net.weight.div_(3.0)
    assert not th.allclose(actions(plain._heads(h, x)[0]), actions(dist_scaled))


class LinearExtractor(BaseFeaturesExtractor):
    def __init__(self, observation_space: spaces.Box, features_dim: int = 4):
        super().__init__(observation_space, features_dim)
        self.linear = nn.Linear(observation_space.shape[0], features_dim)

    def forward(self, obs: th.Tensor) -> th.Tensor:
        return self.linear(obs)


@pytest.mark.parametrize("skip_connection", [True, False])
def test_separate_extractors_feed_separate_cells(skip_connection):
    """share_features_extractor=False: the actor's outputs depend on the actor's extractor only, the values on the critic's."""
    th.manual_seed(0)
    policy = RTRLActorCriticPolicy(
        spaces.Box(-1, 1, (3,)),
        spaces.Discrete(3),
        lambda _: 1e-3,
        hidden_size=5,
        features_extractor_class=LinearExtractor,
        share_features_extractor=False,
        skip_connection=skip_connection,
        prev_reward=True,
    )
    assert policy.critic_cell and policy.pi_features_extractor is not policy.vf_features_extractor
    assert policy.cell.input_size == 2 * 4 + 1 and policy.cell.state_size == 10
    data = sequence(policy, 12, 2, th.Generator().manual_seed(2))
    values, log_prob, entropy, _ = policy.evaluate_segment(
        data["obs"],
        data["actions"],
        data["starts"],
        initial_state(policy.cell, 2),
        None,
        data["prev_rewards"],
        backend="torch",
    )
    pi_params = list(policy.pi_features_extractor.parameters())
    vf_params = list(policy.vf_features_extractor.parameters())
    for output, reads, ignores in [
        (log_prob.sum() + entropy.sum(), pi_params, vf_params),
        (values.sum(), vf_params, pi_params),
    ]:
        grads = th.autograd.grad(output, reads + ignores, allow_unused=True, retain_graph=True)
        assert all(g is not None and g.abs().sum() > 0 for g in grads[: len(reads)])
        assert all(g is None or g.abs().sum() == 0 for g in grads[len(reads) :])
    # Every trainable parameter is in the optimizer, both extractors included.
    optimized = {id(p) for group in policy.optimizer.param_groups for p in group["params"]}
    assert all(id(p) in optimized for p in policy.parameters())


def test_separate_extractors_need_the_critic_cell():
    box, discrete = spaces.Box(-1, 1, (3,)), spaces.Discrete(3)
    with pytest.raises(ValueError, match="share_features_extractor=False with shared_lstm=True"):
        RTRLActorCriticPolicy(box, discrete, lambda _: 1e-3, share_features_extractor=False, shared_lstm=True)
    policy = RTRLActorCriticPolicy(
        box, discrete, lambda _: 1e-3, hidden_size=4, share_features_extractor=False, enable_critic_lstm=True
    )
    assert policy._get_constructor_parameters()["share_features_extractor"] is False
