"""Finding the first value that went NaN or infinite, and saying which one, where, and at which update."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch as th


class NonFiniteError(FloatingPointError):
    """A value went NaN or infinite. The message names it (reward, observation, loss, gradient of which
    parameter, sensitivity of which parameter, ...), where in the batch, and the update."""


def _as_numpy(value: Any) -> np.ndarray:
    if isinstance(value, th.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def where_non_finite(value: Any, axes: tuple[str, ...] = ()) -> str | None:
    """
    None if every entry of ``value`` is finite (integer and bool arrays always are), else where the first
    bad one is, e.g. ``"nan at rollout step 3, environment 1"``.

    :param value: an array or tensor
    :param axes: names of its leading axes, for the message
    """
    array = _as_numpy(value)
    # The common case, all finite, in one pass; integer and bool arrays are finite by type.
    if array.dtype.kind not in "fc" or np.isfinite(array).all():
        return None
    index = np.unravel_index(int(np.argmax(~np.isfinite(array))), array.shape)
    position = ", ".join(f"{axis} {i}" for axis, i in zip(axes, index)) or f"index {tuple(int(i) for i in index)}"
    return f"{array[index]} at {position}"


def first_non_finite(named: Iterable[tuple[str, Any]], axes: tuple[str, ...] = ()) -> str | None:
    """
    The first of ``(name, value)`` pairs that holds a non-finite entry, as ``"name (nan at ...)"``.

    :param named: names and arrays, tensors or dicts of them (observations); None values are skipped
    :param axes: names of the arrays' leading axes
    """
    for name, value in named:
        if value is None:
            continue
        parts = value.items() if isinstance(value, dict) else [(None, value)]
        for key, part in parts:
            found = where_non_finite(part, axes)
            if found is not None:
                return f"{name}{'' if key is None else f'[{key!r}]'} ({found})"
    return None
