"""
Every POPGym task once more with its observation flattened to a Box by gymnasium's ``FlattenObservation`` (one-hot
for discrete parts, the same features SB3's preprocessing gives every learner), under the id ``Flat<Task>``:
``popgym-CountRecallEasy-v0`` as ``popgym_flat:FlatCountRecallEasy-v0``.

sb3-contrib's RecurrentPPO cannot start on a task with a MultiDiscrete observation (CountRecall, Concentration:
``nn.LSTM`` rejects the numpy integer that SB3 gives as its input size); on the flattened task it runs, and so every
learner of a comparison can be given the same task. An id of the form ``module:Name-v0`` imports this module in each
process that builds the task:

    PYTHONPATH=benchmarks sb3-rtrl compare --env popgym_flat:FlatCountRecallEasy-v0 --learners rtrl_ppo recurrent_ppo ...
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import popgym  # noqa: F401  (registers the popgym- ids)
from gymnasium.wrappers import FlattenObservation

PREFIX = "popgym-"


def make_flat(task: str, **kwargs: Any) -> gym.Env:
    """The POPGym task ``task`` (its gymnasium id) with its observation flattened."""
    return FlattenObservation(gym.make(task, **kwargs))


for _task in [task for task in gym.registry if task.startswith(PREFIX)]:
    gym.register(f"Flat{_task[len(PREFIX) :]}", entry_point=make_flat, kwargs=dict(task=_task))
