"""Checks of user-given arguments that raise a ValueError naming the argument and what it must be."""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np


def check_int(name: str, value: Any, minimum: int) -> int:
    """
    ``value`` as an int, if it is an integer (numpy integers too; not a bool, not a float) >= ``minimum``.

    :param name: the argument's name, for the error
    :param value: the value given
    :param minimum: the smallest value allowed
    :return: the value as an int
    """
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {number}")
    return number


def check_number(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    allow_inf: bool = False,
) -> float:
    """
    ``value`` as a float, if it is a real number in ``[low, high]`` (``(low, high]`` with ``low_open``).

    :param name: the argument's name, for the error
    :param value: the value given
    :param low: the lower bound
    :param high: the upper bound (inclusive)
    :param low_open: exclude ``low`` itself
    :param allow_inf: accept +-inf within the bounds (NaN never)
    :return: the value as a float
    """
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
    try:
        # Text that reads as a number is refused too: stored as given, it would fail later, far from here.
        if isinstance(value, (bool, str, bytes)):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}") from None
    if math.isnan(number) or (math.isinf(number) and not allow_inf):
        raise ValueError(f"{name} must be a finite number in {interval}, got {number}")
    if number < low or number > high or (low_open and number == low):
        raise ValueError(f"{name} must be in {interval}, got {number:g}")
    return number


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> Any:
    """``value`` if it is one of ``choices``, else a ValueError listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool (numpy's too), else a ValueError: ``"no"`` or ``0`` would be read by truth value."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_class(name: str, value: Any, base: type) -> type:
    """``value`` if it is a subclass of ``base`` (a class, not an instance or a name), else a ValueError."""
    if not (isinstance(value, type) and issubclass(value, base)):
        got = f"the text {value!r}" if isinstance(value, str) else f"{value!r}"
        if not isinstance(value, type) and isinstance(value, base):
            got = f"an instance of {type(value).__name__}"
        raise ValueError(f"{name} must be a subclass of {base.__module__}.{base.__qualname__} (the class itself), got {got}")
    return value


def check_net_arch(value: Any) -> None:
    """A ``net_arch`` as SB3 takes it: a list of layer widths >= 1, or a dict of such lists for ``pi`` and ``vf``."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"pi", "vf"})
        if unknown:
            raise ValueError(f"net_arch as a dict takes the keys 'pi' and 'vf', got {unknown}")
        for key, widths in value.items():
            _check_widths(f"net_arch[{key!r}]", widths)
        return
    _check_widths("net_arch", value)


def _check_widths(name: str, widths: Any) -> None:
    if not isinstance(widths, (list, tuple)):
        raise ValueError(f"{name} must be a list of layer widths (integers >= 1), got {widths!r}")
    for i, width in enumerate(widths):
        check_int(f"{name}[{i}]", width, 1)
