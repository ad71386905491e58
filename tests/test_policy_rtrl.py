"""The policy's RTRL gradient is exact for every option of the network around the cell (fp64, uncut sequences)."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from sb3_rtrl.policies import RTRLActorCriticPolicy
from sb3_rtrl.rtrl import initial_state

OPTIONS = [
    dict(),  # the paper's network: the heads read the cell's output
    dict(net_arch=[6, 5], skip_connection=True),
    dict(net_arch=dict(pi=[4], vf=[6]), skip_connection=True, forget_bias=(0.0, 3.0), prev_action=True, prev_reward=True),
    # RecurrentPPO's default: the critic's own cell, trained by RTRL too
    dict(net_arch=dict(pi=[4], vf=[6]), skip_connection=True, shared_lstm=False, forget_bias=(0.0, 3.0)),
]


def sequence(policy: RTRLActorCriticPolicy, steps: int, batch: int, generator: th.Generator) -> dict:
    obs = th.randn(steps * batch, 3, generator=generator, dtype=th.float64)
    actions = th.randint(0, 3, (steps * batch,), generator=generator)
    starts = th.rand(steps, batch, generator=generator) < 0.1
    starts[0] = True
    prev_actions = policy.encode_actions(th.randint(0, 3, (steps * batch, 1), generator=generator)).double()
    prev_rewards = th.randn(steps * batch, generator=generator, dtype=th.float64)
    weights = th.randn(3, steps * batch, generator=generator, dtype=th.float64)
    return dict(obs=obs, actions=actions, starts=starts, prev_actions=prev_actions if policy.prev_action else None,
                prev_rewards=prev_rewards if policy.prev_reward else None, weights=weights)  # fmt: skip


def loss_and_state(policy, data, rows, state, gradient):
    """A sum of per-step terms (values, log-probabilities, entropies) over the steps ``rows`` of the sequence."""
    batch = data["starts"].shape[1]
    flat = slice(rows.start * batch, rows.stop * batch)
    prev_a = None if data["prev_actions"] is None else data["prev_actions"][flat]
    prev_r = None if data["prev_rewards"] is None else data["prev_rewards"][flat]
    values, log_prob, entropy, new_state = policy.evaluate_segment(
        data["obs"][flat], data["actions"][flat], data["starts"][rows], state, prev_a, prev_r, gradient=gradient,
        backend="torch",
    )  # fmt: skip
    w = data["weights"][:, flat]
    return (w[0] * values + w[1] * log_prob + w[2] * entropy).sum(), new_state


@pytest.mark.parametrize("options", OPTIONS, ids=["paper", "skip+mlp", "skip+mlp+spread+prev", "critic-cell"])
def test_segment_gradients_sum_to_autograd_over_the_uncut_sequence(options):
    th.manual_seed(0)
    policy = RTRLActorCriticPolicy(spaces.Box(-1, 1, (3,)), spaces.Discrete(3), lambda _: 1e-3, hidden_size=5,
                                   **options).double()  # fmt: skip
    # SB3's preprocessing casts Box observations to float32; FlattenExtractor of a (3,) Box is the identity.
    policy.extract_features = lambda obs, extractor=None: obs  # type: ignore[method-assign]
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
    hh = names.index("cell.weight_hh")
    assert not np.allclose(policy.cell.weight_hh.grad.numpy(), truth[hh].numpy(), rtol=1e-6)
