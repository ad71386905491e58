"""
The policies' keywords checked and translated: observation spaces, RecurrentPPO's keywords (``shared_lstm``,
``enable_critic_lstm``, ``n_lstm_layers``, ``lstm_kwargs``), the default heads and the previous-action input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, FlattenExtractor, NatureCNN

from sb3_rtrl.common.arguments import check_number
from sb3_rtrl.torch_layers import ImpalaCNN

SUPPORTED_OBS = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


def check_observation_space(space: spaces.Space) -> None:
    """Raise ValueError for observation spaces the policies cannot read."""
    if isinstance(space, spaces.Dict):
        for key, sub in space.spaces.items():
            if not isinstance(sub, SUPPORTED_OBS):
                raise ValueError(
                    f"observation space key {key!r} is {type(sub).__name__}; supported: Box, Discrete, "
                    "MultiDiscrete, MultiBinary (inside a Dict too)"
                )
        return
    if not isinstance(space, SUPPORTED_OBS):
        raise ValueError(
            f"observation space {type(space).__name__} is not supported; use Box, Discrete, MultiDiscrete, "
            "MultiBinary or a Dict of them"
        )


def check_extractor_fits(space: spaces.Space, extractor: type[BaseFeaturesExtractor]) -> None:
    """Raise ValueError naming the policy to use when SB3's built-in extractors cannot read ``space``."""
    if isinstance(space, spaces.Dict) and issubclass(extractor, (FlattenExtractor, NatureCNN)):
        raise ValueError(
            f"Dict observations need MultiInputLstmPolicy (alias of MultiInputELSTMPolicy); {extractor.__name__} "
            "(MlpLstmPolicy, CnnLstmPolicy) cannot read them"
        )
    if not isinstance(space, spaces.Dict) and issubclass(extractor, CombinedExtractor):
        raise ValueError(
            f"MultiInputLstmPolicy reads Dict observations, but the observation space is {type(space).__name__}: "
            "use MlpLstmPolicy (vectors) or CnnLstmPolicy (images)"
        )


def default_net_arch(features_extractor_class: type[BaseFeaturesExtractor]) -> list[int] | dict[str, list[int]]:
    """SB3's and RecurrentPPO's default: no MLP after a CNN, ``[64, 64]`` for each head otherwise."""
    if issubclass(features_extractor_class, (NatureCNN, ImpalaCNN)):
        return []
    return dict(pi=[64, 64], vf=[64, 64])


def critic_has_own_cell(
    shared_lstm: bool | None, enable_critic_lstm: bool | None, share_features_extractor: bool = True
) -> bool:
    """
    Whether the critic gets its own cell, from RecurrentPPO's keywords (None: not given).

    Neither given: one shared cell (the paper's network), unless the critic has its own features extractor,
    which it reads through its own cell. Raises ValueError for the combinations that RecurrentPPO refuses
    (both True) or that the eLSTM policies do not offer (a critic without memory; a shared cell that reads
    two extractors).
    """
    if not share_features_extractor and shared_lstm:
        raise ValueError(
            "share_features_extractor=False with shared_lstm=True: one shared cell reads one features extractor; "
            "a critic with its own extractor reads it through its own cell (enable_critic_lstm=True)"
        )
    if shared_lstm and enable_critic_lstm:
        raise ValueError(
            "shared_lstm=True and enable_critic_lstm=True: choose a shared cell or a critic cell (as RecurrentPPO)"
        )
    if shared_lstm is False and enable_critic_lstm is False:
        raise ValueError(
            "shared_lstm=False with enable_critic_lstm=False (a critic without memory) is not supported: "
            "use shared_lstm=True (one cell) or enable_critic_lstm=True (a critic cell)"
        )
    return shared_lstm is False or bool(enable_critic_lstm) or not share_features_extractor


def prev_action_dim(action_space: spaces.Space) -> int:
    """Width of the previous-action input: one-hot for discrete spaces, the vector itself otherwise."""
    if isinstance(action_space, spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, spaces.MultiDiscrete):
        return int(np.sum(action_space.nvec))
    return get_action_dim(action_space)


def check_recurrent_ppo_keywords(n_lstm_layers: int, lstm_kwargs: dict[str, Any] | None) -> None:
    """Raise ValueError for RecurrentPPO's keywords that ask for what one element-wise cell layer cannot be."""
    if n_lstm_layers != 1:
        raise ValueError(
            f"n_lstm_layers={n_lstm_layers}: exact RTRL here trains one cell layer (stacked layers are fully recurrent again)"
        )
    if lstm_kwargs:
        raise ValueError(f"lstm_kwargs are not supported (the cells take cell_kwargs), got {sorted(lstm_kwargs)}")


def check_cell_optimizer_kwargs(
    cell_optimizer_kwargs: dict[str, dict[str, Any]] | None,
) -> dict[str, dict[str, Any]] | None:
    """
    The policy's ``cell_optimizer_kwargs``, checked: None, or a dict from a part of the cell (the name of one of its
    submodules, or ``"*"`` for the rest of its parameters) to an optimizer's keywords other than ``params`` and ``lr``
    (the learning rate schedule sets every group's), each None, a bool, a number >= 0 or a tuple of numbers (eps above
    0). Whether the cell has each part and the optimizer takes each keyword is checked where the optimizer is made.
    """
    if cell_optimizer_kwargs is None:
        return None
    if not isinstance(cell_optimizer_kwargs, dict):
        raise ValueError(f"cell_optimizer_kwargs must be None or a dict of parts' keywords, got {cell_optimizer_kwargs!r}")
    checked: dict[str, dict[str, Any]] = {}
    for part, kwargs in cell_optimizer_kwargs.items():
        if not isinstance(part, str) or not isinstance(kwargs, dict):
            raise ValueError(
                f"cell_optimizer_kwargs maps a part of the cell (a name, or '*') to a dict of keywords, "
                f"got {part!r}: {kwargs!r}"
            )
        checked[part] = {}
        for key, value in kwargs.items():
            if key in ("params", "lr") or not isinstance(key, str):
                raise ValueError(
                    f"cell_optimizer_kwargs cannot set {key!r}: the part's parameters are its group's, and the learning "
                    "rate schedule sets every group's learning rate"
                )
            name = f"cell_optimizer_kwargs[{part!r}][{key!r}]"
            if value is None or isinstance(value, bool):
                checked[part][key] = value
            elif isinstance(value, (tuple, list)):
                checked[part][key] = tuple(check_number(name, v, 0.0) for v in value)
            else:
                checked[part][key] = check_number(name, value, 0.0, low_open=key == "eps")
    return checked


def check_forget_bias(forget_bias: float | tuple[float, float] | None) -> float | tuple[float, float] | None:
    """The policy's ``forget_bias``, checked: None, a number, or a pair ``(low, high)`` spread over the units."""
    if isinstance(forget_bias, (tuple, list)):
        if len(forget_bias) != 2:
            raise ValueError(f"forget_bias must be a number or a pair (low, high), got {forget_bias!r}")
        return (check_number("forget_bias", forget_bias[0]), check_number("forget_bias", forget_bias[1]))
    if forget_bias is not None:
        return check_number("forget_bias", forget_bias)
    return None
