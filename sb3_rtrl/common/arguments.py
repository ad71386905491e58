"""Checks of user-given arguments that raise a ValueError naming the argument and what it must be."""

from __future__ import annotations

import math
import operator
from typing import Any


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
        if isinstance(value, bool):
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
