"""
The classes a model's description may name: an exact allowlist keyed by each class's full name.

Stable-Baselines3's and torch's classes that the algorithms save are on it from the start; the package's own
classes (policies, features extractors) join it where they are defined, and a user's with
:func:`register_safe_class`.
"""

from __future__ import annotations

import torch as th
from stable_baselines3.common.buffers import DictRolloutBuffer, RolloutBuffer
from stable_baselines3.common.torch_layers import CombinedExtractor, FlattenExtractor, NatureCNN
from torch import nn

_SAFE_CLASSES: dict[str, type] = {}


def class_path(cls: type) -> str:
    """A class's full name as descriptions write it: ``module:qualname``."""
    return f"{cls.__module__}:{cls.__qualname__}"


def register_safe_class(*classes: type, aliases: tuple[str, ...] = ()) -> None:
    """
    Allow classes to be rebuilt from a model's description, e.g. your own features extractor.

    Only your own code can call this, so it extends trust to code already running in your process; a
    saved file cannot. The class is still used only where a parameter's annotation accepts it.

    :param classes: the classes to allow
    :param aliases: more full names (``module:qualname``) for the one class given, such as the name it had when
        older files were saved
    """
    for cls in classes:
        if not isinstance(cls, type):
            raise TypeError(f"register_safe_class takes classes, got {cls!r}")
        _SAFE_CLASSES[class_path(cls)] = cls
    if aliases:
        if len(classes) != 1:
            raise TypeError("register_safe_class takes aliases for a single class")
        for alias in aliases:
            _SAFE_CLASSES[alias] = classes[0]


def safe_classes() -> dict[str, type]:
    """The allowlist: full class name (``module:qualname``) to class."""
    return _SAFE_CLASSES


# One line per kind of class (extractors, buffers, activations, optimizers), not black's one class per line.
register_safe_class(
    FlattenExtractor, NatureCNN, CombinedExtractor,
    RolloutBuffer, DictRolloutBuffer,
    nn.Identity, nn.Tanh, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid, nn.Softplus,
    nn.Hardtanh,
    th.optim.Adam, th.optim.AdamW, th.optim.RMSprop, th.optim.SGD, th.optim.Adagrad, th.optim.Adamax, th.optim.NAdam,
    th.optim.RAdam,
)  # fmt: skip
