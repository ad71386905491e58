"""SB3's rollout buffers plus what training an RTRL cell reads back: start states, previous actions and rewards."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictRolloutBuffer, RolloutBuffer

from sb3_rtrl.common.recurrent.keywords import prev_action_dim
from sb3_rtrl.common.recurrent.type_aliases import ChunkStarts, RTRLSequenceSamples
from sb3_rtrl.rtrl import RTRLState
from sb3_rtrl.safe_load import register_safe_class


def _stack(tensors: list[th.Tensor]) -> th.Tensor:
    """``tensors`` stacked along a new first dimension; a view of the one tensor when there is one."""
    return tensors[0].unsqueeze(0) if len(tensors) == 1 else th.stack(tensors)


class RTRLRolloutBuffer(RolloutBuffer):
    """
    SB3's rollout buffer for an RTRL policy. It adds the previous action and reward the cell read at each step, the
    cell state and sensitivities the rollout starts from, the chunk starts of a chunked update, and typed sequence
    samples (:class:`~sb3_rtrl.common.recurrent.type_aliases.RTRLSequenceSamples`).

    The arrays stay ``(n_steps, n_envs, ...)``: sequences are read in time order, never flattened.
    """

    def reset(self) -> None:
        super().reset()
        self.prev_actions = np.zeros((self.buffer_size, self.n_envs, prev_action_dim(self.action_space)), dtype=np.float32)
        self.prev_rewards = np.zeros((self.buffer_size, self.n_envs), dtype=np.float32)
        self.has_prev_actions = self.has_prev_rewards = False
        self._start_state: RTRLState | None = None
        self.chunk_starts = None

    @property
    def start_state(self) -> RTRLState:
        """The cell state and sensitivities of every environment where the rollout starts (set after :meth:`reset`)."""
        if self._start_state is None:
            raise RuntimeError("the rollout's start state is not set: set start_state after reset()")
        return self._start_state

    @start_state.setter
    def start_state(self, state: RTRLState) -> None:
        self._start_state = state

    @property
    def chunk_starts(self) -> ChunkStarts | None:
        """The state at each chunk's start of the update under way (None until set, and after :meth:`reset`)."""
        return self._chunk_starts

    @chunk_starts.setter
    def chunk_starts(self, chunk_starts: ChunkStarts | None) -> None:
        # Also stacked, one (chunks, n_envs, ...) tensor per quantity (a view for a single chunk), so that a minibatch
        # of many short chunks gathers its start states with one indexing per tensor rather than a few per chunk.
        self._chunk_starts = chunk_starts
        self._stacked_starts: RTRLState | None = None
        if chunk_starts is not None:
            states = chunk_starts.states[: len(chunk_starts.bounds)]
            self._stacked_starts = RTRLState(
                c=_stack([state.c for state in states]),
                sensitivities=tuple(_stack(list(tensors)) for tensors in zip(*(state.sensitivities for state in states))),
            )

    def add(  # type: ignore[override]
        self,
        *args: Any,
        prev_action: np.ndarray | None = None,
        prev_reward: np.ndarray | None = None,
        **kwargs: Any,
    ) -> None:
        """
        SB3's ``add``, plus the previous action and reward the cell read at this step.

        :param args: SB3's ``add`` arguments (observation, action, reward, episode start, value, log-probability)
        :param prev_action: ``(n_envs, prev_action_dim)`` encoded previous actions, if the cell reads them
        :param prev_reward: ``(n_envs,)`` previous rewards, if the cell reads them
        """
        if prev_action is not None:
            self.prev_actions[self.pos] = prev_action
            self.has_prev_actions = True
        if prev_reward is not None:
            self.prev_rewards[self.pos] = prev_reward
            self.has_prev_rewards = True
        super().add(*args, **kwargs)

    def sequences(self, times: slice | np.ndarray, envs: np.ndarray | slice, start_state: RTRLState) -> RTRLSequenceSamples:
        """
        The steps ``times`` of the environments ``envs``, as sequences side by side.

        :param times: steps, the same for every environment (a slice); or a ``(T, B)`` array of steps, column ``b``
            for the environment ``envs[b]`` (sequences from different times side by side)
        :param envs: environments (indices or a slice; indices with a ``times`` array)
        :param start_state: the state each sequence starts from
        """

        def take(array: np.ndarray) -> np.ndarray:
            return array[times, np.asarray(envs)[None, :]] if isinstance(times, np.ndarray) else array[times][:, envs]

        def flat(array: np.ndarray) -> np.ndarray:
            part = take(array)
            return part.reshape(part.shape[0] * part.shape[1], *part.shape[2:])

        if isinstance(self.observations, dict):
            obs: th.Tensor | dict[str, th.Tensor] = {k: self.to_torch(flat(v)) for k, v in self.observations.items()}
        else:
            obs = self.to_torch(flat(self.observations))
        actions = self.to_torch(flat(self.actions).reshape(-1, self.actions.shape[-1]).astype(np.float32, copy=False))
        if isinstance(self.action_space, spaces.Discrete):
            actions = actions.long().flatten()
        return RTRLSequenceSamples(
            observations=obs,
            actions=actions,
            episode_starts=self.to_torch(take(self.episode_starts)).bool(),
            prev_actions=self.to_torch(flat(self.prev_actions)) if self.has_prev_actions else None,
            prev_rewards=self.to_torch(flat(self.prev_rewards)) if self.has_prev_rewards else None,
            start_state=start_state,
            old_values=self.to_torch(flat(self.values)),
            old_log_prob=self.to_torch(flat(self.log_probs)),
            advantages=self.to_torch(flat(self.advantages)),
            returns=self.to_torch(flat(self.returns)),
        )

    def get_rollout(self) -> RTRLSequenceSamples:
        """The whole rollout, one sequence per environment, from the rollout's start state."""
        return self.sequences(slice(None), slice(None), self.start_state)

    def chunk_bounds(self, length: int) -> list[tuple[int, int]]:
        """``(t0, t1)`` of each chunk of ``length`` steps (the last one shorter when ``length`` does not divide)."""
        return [(t, min(t + length, self.buffer_size)) for t in range(0, self.buffer_size, length)]

    def get(self, batch_size: int | None = None) -> Generator[tuple[RTRLSequenceSamples, ...], None, None]:  # type: ignore[override]
        """
        One epoch over the chunks of :attr:`chunk_starts` in a new random order: ``batch_size // chunk length``
        chunks per minibatch (at least one; all of them for None).

        Each minibatch is one sample per chunk length in it: chunks of one length are the rows of one batched
        pass, each from its stored start state.
        """
        if self.chunk_starts is None:
            raise RuntimeError("the rollout's chunk starts are not set: set chunk_starts before get()")
        bounds = self.chunk_starts.bounds
        length = bounds[0][1] - bounds[0][0]
        per_batch = max(1, (batch_size or self.buffer_size * self.n_envs) // length)
        order = np.random.permutation(len(bounds) * self.n_envs)
        for i in range(0, len(order), per_batch):
            yield self.get_chunks(order[i : i + per_batch])

    def get_chunks(self, ids: np.ndarray) -> tuple[RTRLSequenceSamples, ...]:
        """
        The chunks ``ids`` (``chunk * n_envs + env``), sorted, one sample per chunk length.

        :param ids: chunk ids
        """
        if self.chunk_starts is None or self._stacked_starts is None:
            raise RuntimeError("the rollout's chunk starts are not set: set chunk_starts before get_chunks()")
        bounds, stacked = self.chunk_starts.bounds, self._stacked_starts
        ids = np.sort(ids)  # by time slot, then environment
        slots, envs = ids // self.n_envs, ids % self.n_envs
        lengths = np.array([bounds[k][1] - bounds[k][0] for k in slots])
        samples = []
        for length in np.unique(lengths):
            rows = lengths == length
            group_slots, group_envs = slots[rows], envs[rows]
            starts_at = np.array([bounds[k][0] for k in group_slots])
            times = starts_at[None, :] + np.arange(length)[:, None]  # (T, B)
            slot_index = th.as_tensor(group_slots, device=stacked.c.device)
            env_index = th.as_tensor(group_envs, device=stacked.c.device)
            start = RTRLState(
                c=stacked.c[slot_index, env_index],
                sensitivities=tuple(s[slot_index, env_index] for s in stacked.sensitivities),
            )
            samples.append(self.sequences(times, group_envs, start))
        return tuple(samples)


class RTRLDictRolloutBuffer(RTRLRolloutBuffer, DictRolloutBuffer):  # type: ignore[misc]  # get() yields sequences
    """:class:`RTRLRolloutBuffer` on SB3's :class:`~stable_baselines3.common.buffers.DictRolloutBuffer` (Dict observations)."""


register_safe_class(RTRLRolloutBuffer, RTRLDictRolloutBuffer)
