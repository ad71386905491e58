"""The RTRL rollout buffer: what it stores, the sequences it yields, and the models that use it."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.env_util import make_vec_env

from sb3_rtrl import RTRLA2C, RTRLPPO
from sb3_rtrl.common.recurrent.buffers import RTRLDictRolloutBuffer, RTRLRolloutBuffer
from sb3_rtrl.common.recurrent.type_aliases import ChunkStarts
from sb3_rtrl.envs import DELAYED_RECALL_ID
from sb3_rtrl.rtrl import RTRLState

N_STEPS, N_ENVS = 5, 3


def filled(buffer_cls=RTRLRolloutBuffer, observation_space=None, prev=True):
    """A buffer whose every entry encodes its step and environment (``10 * t + e``)."""
    observation_space = observation_space or spaces.Box(-1e3, 1e3, (2,))
    buf = buffer_cls(N_STEPS, observation_space, spaces.Discrete(4), n_envs=N_ENVS)
    buf.start_state = RTRLState(c=th.arange(N_ENVS, dtype=th.float32)[:, None], sensitivities=(th.zeros(N_ENVS, 1),))
    for t in range(N_STEPS):
        code = 10.0 * t + np.arange(N_ENVS, dtype=np.float32)
        if isinstance(observation_space, spaces.Dict):
            obs = {key: np.stack([code, -code], axis=1) for key in observation_space.spaces}
        else:
            obs = np.stack([code, -code], axis=1)
        buf.add(
            obs,
            np.array([t % 4] * N_ENVS),
            code,
            np.array([t == 2] * N_ENVS),
            th.as_tensor(code),
            th.as_tensor(-code),
            prev_action=np.tile(code[:, None], (1, 4)) if prev else None,
            prev_reward=code + 0.5 if prev else None,
        )
    buf.compute_returns_and_advantage(last_values=th.zeros(N_ENVS), dones=np.zeros(N_ENVS))
    return buf


def codes(t: np.ndarray, e: np.ndarray) -> np.ndarray:
    return (10 * np.asarray(t) + np.asarray(e)).astype(np.float32)


@pytest.mark.parametrize("buffer_cls", [RTRLRolloutBuffer, RTRLDictRolloutBuffer])
def test_sequences_are_time_major_and_carry_every_record(buffer_cls):
    space = spaces.Dict({"a": spaces.Box(-1e3, 1e3, (2,))}) if buffer_cls is RTRLDictRolloutBuffer else None
    buf = filled(buffer_cls, space)
    sample = buf.sequences(slice(1, 4), np.array([2, 0]), buf.start_state)
    # step t of sequence b at t * B + b
    expected = codes([1, 1, 2, 2, 3, 3], [2, 0, 2, 0, 2, 0])
    obs = sample.observations["a"] if isinstance(sample.observations, dict) else sample.observations
    np.testing.assert_array_equal(obs[:, 0].numpy(), expected)
    np.testing.assert_array_equal(sample.old_values.numpy(), expected)
    np.testing.assert_array_equal(sample.old_log_prob.numpy(), -expected)
    np.testing.assert_array_equal(sample.prev_actions.numpy(), np.tile(expected[:, None], (1, 4)))
    np.testing.assert_array_equal(sample.prev_rewards.numpy(), expected + 0.5)
    np.testing.assert_array_equal(sample.actions.numpy(), [1, 1, 2, 2, 3, 3])
    assert sample.actions.dtype == th.long
    assert sample.episode_starts.shape == (3, 2) and sample.episode_starts[1].all() and not sample.episode_starts[0].any()
    assert sample.advantages.shape == sample.returns.shape == (6,)


def test_sequences_from_different_times_side_by_side():
    buf = filled()
    times = np.array([[0, 3], [1, 4]])  # env 1 from step 0, env 2 from step 3
    sample = buf.sequences(times, np.array([1, 2]), buf.start_state)
    np.testing.assert_array_equal(sample.old_values.numpy(), codes([0, 3, 1, 4], [1, 2, 1, 2]))


def test_previous_inputs_are_none_where_the_cell_read_none():
    sample = filled(prev=False).get_rollout()
    assert sample.prev_actions is None and sample.prev_rewards is None
    assert sample.old_values.shape == (N_STEPS * N_ENVS,)


def test_the_start_state_and_chunk_starts_must_be_set():
    buf = filled()
    buf.reset()
    with pytest.raises(RuntimeError, match="start state is not set"):
        buf.get_rollout()
    with pytest.raises(RuntimeError, match="chunk starts are not set"):
        next(buf.get(4))


def chunk_starts(buf: RTRLRolloutBuffer, length: int, offset: float = 0.0) -> ChunkStarts:
    bounds = buf.chunk_bounds(length)
    # The state of chunk k of environment e is 100 * k + e (+ offset), its sensitivity the same + 0.5, so that each
    # sample's rows can be traced.
    states = []
    for k in range(len(bounds) + 1):
        c = offset + 100.0 * k + th.arange(N_ENVS, dtype=th.float32)[:, None]
        states.append(RTRLState(c=c, sensitivities=(c[:, :, None] + 0.5,)))
    return ChunkStarts(bounds, states)


def test_an_epoch_yields_every_chunk_once_each_row_from_its_own_start():
    buf = filled()
    buf.chunk_starts = chunk_starts(buf, 2)  # chunks [0, 2), [2, 4), [4, 5)
    assert buf.chunk_starts.bounds == [(0, 2), (2, 4), (4, 5)]
    seen = []
    minibatches = list(buf.get(batch_size=4))  # two chunks per minibatch
    assert [sum(s.start_state.batch_size for s in batch) for batch in minibatches] == [2, 2, 2, 2, 1]
    for batch in minibatches:
        for sample in batch:
            length = sample.episode_starts.shape[0]
            first_steps = sample.old_values.numpy()[: sample.start_state.batch_size]
            sensitivities = sample.start_state.sensitivities[0][:, 0, 0].numpy()
            np.testing.assert_array_equal(sensitivities, sample.start_state.c[:, 0].numpy() + 0.5)
            for value, c in zip(first_steps, sample.start_state.c[:, 0].numpy()):
                t, e = divmod(int(value), 10)
                slot = t // 2
                assert c == 100 * slot + e, "each row starts from its own chunk's stored state"
                assert length == buf.chunk_starts.bounds[slot][1] - t
                seen.append((slot, e))
    assert sorted(seen) == [(k, e) for k in range(3) for e in range(N_ENVS)]


def test_a_minibatch_groups_its_chunks_by_length():
    buf = filled()
    buf.chunk_starts = chunk_starts(buf, 2)
    ids = np.array([2 * N_ENVS + 1, 0, N_ENVS + 2])  # chunk 2 (length 1) of env 1, chunk 0 of env 0, chunk 1 of env 2
    samples = buf.get_chunks(ids)
    assert [s.episode_starts.shape for s in samples] == [(1, 1), (2, 2)]
    np.testing.assert_array_equal(samples[1].start_state.c[:, 0].numpy(), [0.0, 102.0])
    np.testing.assert_array_equal(samples[1].start_state.sensitivities[0][:, 0, 0].numpy(), [0.5, 102.5])


def test_the_next_updates_chunk_starts_replace_the_gathered_ones():
    buf = filled()
    buf.chunk_starts = chunk_starts(buf, 2)
    ids = np.array([N_ENVS + 2])
    assert buf.get_chunks(ids)[0].start_state.c.item() == 102.0
    buf.chunk_starts = chunk_starts(buf, 2, offset=1000.0)
    (sample,) = buf.get_chunks(ids)
    assert sample.start_state.c.item() == 1102.0
    assert sample.start_state.sensitivities[0].item() == 1102.5


def test_the_algorithms_collect_into_the_rtrl_buffer(tmp_path):
    env = make_vec_env(DELAYED_RECALL_ID, n_envs=2, seed=0, env_kwargs=dict(delay=3))
    model = RTRLA2C("MlpLstmPolicy", env, n_steps=4, policy_kwargs=dict(lstm_hidden_size=8, prev_reward=True))
    assert type(model.rollout_buffer) is RTRLRolloutBuffer
    model.learn(16)
    sample = model.rollout_buffer.get_rollout()
    assert sample.prev_rewards is not None and sample.prev_actions is None
    model._setup_learn(0, reset_num_timesteps=False)
    callback = CallbackList([])
    callback.init_callback(model)
    plain = RolloutBuffer(4, model.observation_space, model.action_space, n_envs=2)
    with pytest.raises(TypeError, match="RTRL rollout buffer, got RolloutBuffer"):
        model.collect_rollouts(model.env, callback, plain, 4)


def test_dict_observations_use_the_dict_buffer():
    from stable_baselines3.common.envs import SimpleMultiObsEnv

    small = dict(lstm_hidden_size=8)
    model = RTRLPPO("MultiInputLstmPolicy", SimpleMultiObsEnv(), n_steps=8, batch_size=8, n_epochs=1, policy_kwargs=small)
    assert type(model.rollout_buffer) is RTRLDictRolloutBuffer
    model.learn(16)
    assert isinstance(model.rollout_buffer.get_rollout().observations, dict)


@pytest.mark.parametrize("name", ["rtrl_a2c_default", "rtrl_ppo_mixed_critic_cell"])
def test_files_that_name_sb3s_buffer_train_with_the_rtrl_buffer(name):
    """Files saved before the RTRL buffer existed name SB3's RolloutBuffer; loaded, they collect into the RTRL one."""
    path = os.path.join(os.path.dirname(__file__), "data", f"{name}.zip")
    cls = RTRLA2C if name.startswith("rtrl_a2c") else RTRLPPO
    env = make_vec_env(DELAYED_RECALL_ID, n_envs=2, seed=0, env_kwargs=dict(delay=4))
    model = cls.load(path, env=env)
    assert type(model.rollout_buffer) is RTRLRolloutBuffer
    model.learn(2 * model.n_steps * 2)
    assert model.num_timesteps == 2 * model.n_steps * 2
