"""The learners ``compare`` knows: an algorithm class, its default policy, where its hyperparameters are."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from sb3_rtrl.algorithms import ALGORITHMS


@dataclass(frozen=True)
class Learner:
    """
    One way to train an agent.

    :param name: the name on the command line
    :param algorithm: ``"module:Class"`` of an SB3 algorithm, imported when used
    :param policy: default policy (``MlpLstmPolicy``-style names; Dict observations switch to the
        MultiInput variant)
    :param hyperparams: rl-zoo3-format yaml files to look the task up in, first hit wins:
        ``"package:file"`` for a file shipped in a package's ``hyperparams`` folder, or a path
    :param fixed: keyword arguments that define the learner (e.g. ``gradient="tbptt"``); overrides cannot change them
    """

    name: str
    algorithm: str
    policy: str
    hyperparams: tuple[str, ...] = ()
    fixed: dict[str, Any] = field(default_factory=dict)


def import_algorithm(path: str) -> type:
    """The class at ``"module:Class"`` (a learner's algorithm; the path is the project's or the user's code)."""
    module, _, name = path.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as err:
        raise ImportError(f"the algorithm {path} needs {module} ({err})") from err


LEARNERS: dict[str, Learner] = {}


def register_learner(learner: Learner) -> None:
    """Make ``learner`` available to ``compare`` by its name (a later algorithm registers itself here)."""
    LEARNERS[learner.name] = learner


# Each of the package's algorithms twice: with exact RTRL gradients and truncated ones (TBPTT), both reading the
# algorithm's zoo hyperparameters.
for _entry in ALGORITHMS.values():
    for _gradient in ("rtrl", "tbptt"):
        _zoo_file = (f"sb3_rtrl.cli.zoo:{_entry.zoo_name}.yml",)
        _name = f"{_gradient}_{_entry.short}"
        register_learner(Learner(_name, _entry.path, "MlpLstmPolicy", _zoo_file, {"gradient": _gradient}))
register_learner(Learner("recurrent_ppo", "sb3_contrib:RecurrentPPO", "MlpLstmPolicy", ("rl_zoo3:ppo_lstm.yml",)))
register_learner(Learner("a2c", "stable_baselines3:A2C", "MlpPolicy", ("rl_zoo3:a2c.yml",)))
register_learner(Learner("ppo", "stable_baselines3:PPO", "MlpPolicy", ("rl_zoo3:ppo.yml",)))
