"""What a refused or malformed model file raises, and the bounds on what loading one reads."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class UntrustedContentError(ValueError):
    """A saved model holds content that only unpickling (running code from the file) could restore."""


class ModelFileError(ValueError):
    """A saved model's file is malformed or too large: trusting it would not help."""


@dataclass(frozen=True)
class LoadLimits:
    """
    Bounds on what loading a model reads, so that a small hostile file cannot take the memory of the machine.

    A trusting caller with a larger model passes larger ones (``load_model(path, limits=LoadLimits(...))``).

    :param member_bytes: the largest size of the JSON members (``data``, ``sb3_rtrl.json``) and of any member that
        is not weights
    :param weights_bytes: the largest size of one ``.pth`` member (the weights, the optimizer state)
    :param space_elements: the largest number of elements of one declared ``Box``, ``MultiDiscrete`` or
        ``MultiBinary`` space
    :param buffer_elements: the largest rollout buffer the entries may ask for (``n_steps * n_envs`` times the
        observation's elements)
    """

    member_bytes: int = 64 * 2**20
    weights_bytes: int = 2**30
    space_elements: int = 2**22
    buffer_elements: int = 2**28


DEFAULT_LIMITS = LoadLimits()
# The limits of the load in progress (load_limits sets them).
LIMITS: contextvars.ContextVar[LoadLimits] = contextvars.ContextVar("sb3_rtrl_load_limits", default=DEFAULT_LIMITS)


@contextmanager
def load_limits(limits: LoadLimits | None) -> Iterator[LoadLimits]:
    """Use ``limits`` (None: :data:`DEFAULT_LIMITS`) for the loads inside the ``with`` block."""
    token = LIMITS.set(limits or DEFAULT_LIMITS)
    try:
        yield LIMITS.get()
    finally:
        LIMITS.reset(token)
