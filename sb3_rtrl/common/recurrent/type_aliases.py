"""The typed samples an RTRL rollout buffer yields."""

from __future__ import annotations

from typing import NamedTuple

import torch as th
from stable_baselines3.common.type_aliases import TensorDict

from sb3_rtrl.rtrl import RTRLState


class RTRLSequenceSamples(NamedTuple):
    """
    ``B`` sequences of ``T`` steps side by side, each from its own start state: what one training pass reads.

    Per-step fields are flat in time-major order (step ``t`` of sequence ``b`` at ``t * B + b``).

    :param observations: ``(T * B, ...)`` observations (a dict of them for a Dict space)
    :param actions: ``(T * B, ...)`` actions taken (``(T * B,)`` longs for a Discrete space)
    :param episode_starts: ``(T, B)`` True where a step starts an episode
    :param prev_actions: ``(T * B, prev_action_dim)`` encoded previous actions the cell read, None if it read none
    :param prev_rewards: ``(T * B,)`` previous rewards the cell read, None if it read none
    :param start_state: ``B`` cell states and sensitivities where the sequences start
    :param old_values: ``(T * B,)`` value estimates at collection
    :param old_log_prob: ``(T * B,)`` log-probabilities of the actions at collection
    :param advantages: ``(T * B,)`` GAE advantages
    :param returns: ``(T * B,)`` value targets
    """

    observations: th.Tensor | TensorDict
    actions: th.Tensor
    episode_starts: th.Tensor
    prev_actions: th.Tensor | None
    prev_rewards: th.Tensor | None
    start_state: RTRLState
    old_values: th.Tensor
    old_log_prob: th.Tensor
    advantages: th.Tensor
    returns: th.Tensor


class ChunkStarts(NamedTuple):
    """
    Where each time chunk of a rollout starts: the cell state and the sensitivities of every environment.

    :param bounds: ``(t0, t1)`` steps of each chunk, the same for every environment
    :param states: the state at each chunk's start, and last the state at the rollout's end
    """

    bounds: list[tuple[int, int]]
    states: list[RTRLState]
