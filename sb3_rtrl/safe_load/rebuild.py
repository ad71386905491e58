"""
Rebuilding a model file's entries from their description, each checked against the type it will be used as.

The description is untrusted input. Rebuilding imports nothing and looks up no attribute: a class is taken only
from the allowlist (:mod:`sb3_rtrl.safe_load.allowlist`), every value is checked against the annotation of the
parameter it will be passed to, and spaces and schedules are built only from known types with validated fields.
"""

from __future__ import annotations

import functools
import inspect
import math
import types
import typing
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Union

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.utils import ConstantSchedule, FloatSchedule, LinearSchedule

from sb3_rtrl.safe_load.allowlist import safe_classes
from sb3_rtrl.safe_load.describe import DESCRIPTION_FILE, DISPENSABLE, NotDescribable, describe, pickled_keys
from sb3_rtrl.safe_load.errors import LIMITS, ModelFileError, UntrustedContentError

# Numeric dtypes a space may have; "object" and friends would let a space hold arbitrary Python values.
SPACE_DTYPES = frozenset(
    ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64"]
)
# The schedule type of SB3's annotations (learning_rate, clip_range): a float function of the progress.
_SCHEDULE = Callable[[float], float]

# What each pickled entry of an algorithm's data must rebuild to. policy_kwargs are checked against the
# rebuilt policy class's constructor.
ENTRY_TYPES: dict[str, Any] = {
    "policy_class": type[BasePolicy],
    "observation_space": spaces.Space,
    "action_space": spaces.Space,
    "lr_schedule": _SCHEDULE,
    # Runtime type objects, not annotations: typing's Union, since a Callable does not support "|".
    "learning_rate": Union[float, _SCHEDULE],  # noqa: UP007
    "clip_range": Union[float, _SCHEDULE],  # noqa: UP007
    "clip_range_vf": Union[float, _SCHEDULE, None],  # noqa: UP007
    "rollout_buffer_class": type[RolloutBuffer],
    "rollout_buffer_kwargs": dict[str, Any],
}
# The entries SB3 writes as plain JSON for RTRLA2C and RTRLPPO, each as the type it has there. No other entry is
# accepted: SB3 sets every entry as an attribute of the model (an "env" entry would even be passed to gym.make).
PLAIN_ENTRY_TYPES: dict[str, Any] = {
    "verbose": int,
    "num_timesteps": int,
    "_total_timesteps": int,
    "_num_timesteps_at_start": int,
    "seed": int | None,
    "action_noise": None,
    "start_time": float,
    "learning_rate": float,
    "_episode_num": int,
    "use_sde": bool,
    "sde_sample_freq": int,
    "_current_progress_remaining": float,
    "_stats_window_size": int,
    "_n_updates": int,
    "n_envs": int,
    "n_steps": int,
    "gamma": float,
    "gae_lambda": float,
    "ent_coef": float,
    "vf_coef": float,
    "max_grad_norm": float,
    "rollout_buffer_kwargs": dict[str, Any],
    "gradient": str,
    "rtrl_method": str,
    "rtrl_backend": str,
    "normalize_advantage": bool,
    "rms_prop_eps": float,
    "batch_size": int,
    "n_epochs": int,
    "clip_range": float,
    "clip_range_vf": float | None,
    "target_kl": float | None,
    "chunk_length": int | None,
}
# Entries whose value is a path on the saving machine: set to None, so that nothing from the file names a path that
# is then written to (pass tensorboard_log= to the load to log).
DROPPED = {"tensorboard_log": None}


def _refuse(where: str, problem: str) -> UntrustedContentError:
    return UntrustedContentError(f"{where}: {problem}")


def _fields(desc: Any, where: str, required: Iterable[str]) -> dict[str, Any]:
    if not isinstance(desc, dict):
        raise _refuse(where, f"expected an object, got {type(desc).__name__}")
    missing = [name for name in required if name not in desc]
    if missing:
        raise _refuse(where, f"missing field(s) {', '.join(missing)}")
    return desc


def _int(value: Any, where: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(where, f"expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise _refuse(where, f"expected an integer >= {minimum}, got {value}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _refuse(where, f"expected a number, got {value!r}")
    return float(value)


def _numbers(value: Any, where: str, depth: int = 0) -> Any:
    """Nested lists of numbers (the bounds of a Box), checked all the way down."""
    if isinstance(value, list) and depth < 32:
        return [_numbers(v, where, depth + 1) for v in value]
    return _number(value, where)


def _dtype(value: Any, where: str) -> np.dtype:
    if value not in SPACE_DTYPES:
        raise _refuse(where, f"dtype {value!r} is not one of {sorted(SPACE_DTYPES)}")
    return np.dtype(value)


def _check_elements(count: int, where: str) -> None:
    limit = LIMITS.get().space_elements
    if count > limit:
        raise ModelFileError(
            f"{where}: the space declares {count} elements, over the limit of {limit} (LoadLimits.space_elements)"
        )


def _rebuild_space(desc: Any, where: str, depth: int = 0) -> spaces.Space:
    kind = _fields(desc, where, ["type"])["type"]
    try:
        if kind == "Box":
            _fields(desc, where, ["low", "high", "shape", "dtype"])
            dtype = _dtype(desc["dtype"], f"{where}.dtype")
            if not isinstance(desc["shape"], list):
                raise _refuse(f"{where}.shape", "expected a list")
            shape = tuple(_int(n, f"{where}.shape", 0) for n in desc["shape"])
            _check_elements(math.prod(shape), where)
            low = np.array(_numbers(desc["low"], f"{where}.low"), dtype=dtype)
            high = np.array(_numbers(desc["high"], f"{where}.high"), dtype=dtype)
            return spaces.Box(low, high, shape, dtype)
        if kind == "Discrete":
            _fields(desc, where, ["n", "start"])
            return spaces.Discrete(_int(desc["n"], f"{where}.n", 1), start=_int(desc["start"], f"{where}.start"))
        if kind == "MultiDiscrete":
            _fields(desc, where, ["nvec", "dtype"])
            nvec = np.array(_numbers(desc["nvec"], f"{where}.nvec"))
            _check_elements(nvec.size, where)
            if nvec.size == 0 or not np.all(nvec == np.round(nvec)) or np.any(nvec < 1):
                raise _refuse(f"{where}.nvec", "expected positive integers")
            return spaces.MultiDiscrete(nvec.astype(np.int64), dtype=_dtype(desc["dtype"], f"{where}.dtype"))
        if kind == "MultiBinary":
            n = _fields(desc, where, ["n"])["n"]
            counts = [_int(v, f"{where}.n", 1) for v in n] if isinstance(n, list) else _int(n, f"{where}.n", 1)
            _check_elements(math.prod(counts) if isinstance(counts, list) else counts, where)
            return spaces.MultiBinary(counts)
        if kind == "Dict" and depth < 16:
            children = _fields(desc, where, ["spaces"])["spaces"]
            if not isinstance(children, dict):
                raise _refuse(f"{where}.spaces", "expected an object")
            return spaces.Dict({k: _rebuild_space(s, f"{where}.spaces[{k!r}]", depth + 1) for k, s in children.items()})
    except (UntrustedContentError, ModelFileError):
        raise
    except (ValueError, TypeError, AssertionError, OverflowError) as err:  # gymnasium's own checks of the fields
        raise _refuse(where, f"invalid {kind} space ({err})") from None
    raise _refuse(where, f"unknown space type {kind!r}")


def _rebuild_schedule(desc: Any, where: str, depth: int = 0) -> Callable[[float], float]:
    kind = _fields(desc, where, ["kind"])["kind"]
    if kind == "float_schedule" and depth < 8:
        return FloatSchedule(_rebuild_schedule(_fields(desc, where, ["inner"])["inner"], f"{where}.inner", depth + 1))
    if kind == "linear_schedule":
        _fields(desc, where, ["start", "end", "end_fraction"])
        return LinearSchedule(*(_number(desc[k], f"{where}.{k}") for k in ("start", "end", "end_fraction")))
    if kind == "constant_schedule":
        return ConstantSchedule(_number(_fields(desc, where, ["value"])["value"], f"{where}.value"))
    raise _refuse(where, f"expected a schedule, got kind {kind!r}")


def _rebuild_class(desc: Any, base: Any, where: str) -> type:
    path = _fields(desc, where, ["kind", "path"])["path"]
    if desc["kind"] != "class":
        raise _refuse(where, f"expected a class, got kind {desc['kind']!r}")
    cls = safe_classes().get(path) if isinstance(path, str) else None
    if cls is None:
        raise _refuse(
            where,
            f"class {path!r} is not on the safe-load allowlist (see sb3_rtrl.safe_load.register_safe_class for "
            "your own classes)",
        )
    if not (isinstance(base, type) and issubclass(cls, base)):
        raise _refuse(where, f"{path} is not a {getattr(base, '__name__', base)}")
    return cls


def _items(desc: Any, kind: str, where: str) -> Any:
    fields = _fields(desc, where, ["kind", "items"])
    # A tuple written as plain JSON (SB3's data entry) reads back as a list.
    if fields["kind"] != kind and not (kind == "tuple" and fields["kind"] == "list"):
        raise _refuse(where, f"expected a {kind}, got kind {fields['kind']!r}")
    items = fields["items"]
    if not isinstance(items, dict if kind == "dict" else list):
        raise _refuse(f"{where}.items", f"malformed {kind}")
    return items


def _plain(desc: Any, where: str, depth: int = 0) -> Any:
    """Plain data only: numbers, strings, None, and lists, tuples and dicts of them."""
    if desc is None or isinstance(desc, (bool, int, float, str)):
        return desc
    kind = desc.get("kind") if isinstance(desc, dict) else None
    if depth < 32:
        if kind in ("list", "tuple"):
            values = [_plain(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(_items(desc, kind, where))]
            return values if kind == "list" else tuple(values)
        if kind == "dict":
            return {k: _plain(v, f"{where}[{k!r}]", depth + 1) for k, v in _items(desc, "dict", where).items()}
    raise _refuse(where, f"expected plain data (numbers, strings, lists, dicts), got {_what(desc)}")


def _what(desc: Any) -> str:
    if isinstance(desc, dict) and "kind" in desc:
        return f"a {desc['kind']!r}" + (f" ({desc.get('path')!r})" if desc.get("kind") == "class" else "")
    return repr(desc)[:80]


def _name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _rebuild_as(desc: Any, annotation: Any, where: str) -> Any:
    """``desc`` rebuilt as a value the annotation accepts, or UntrustedContentError."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return _plain(desc, where)
    if annotation is None or annotation is type(None):
        if desc is not None:
            raise _refuse(where, f"expected None, got {_what(desc)}")
        return None
    if origin in (Union, types.UnionType):
        problems = []
        for option in args:
            try:
                return _rebuild_as(desc, option, where)
            except UntrustedContentError as err:
                problems.append(str(err).removeprefix(f"{where}: "))
        raise _refuse(where, f"expected {_name(annotation)}: {'; '.join(problems)}")
    if origin is typing.Literal:
        if desc not in args or isinstance(desc, (dict, list)):
            raise _refuse(where, f"expected one of {args}, got {_what(desc)}")
        return desc
    if origin is type or annotation is type:
        return _rebuild_class(desc, args[0] if args else object, where)
    if annotation is bool:
        if not isinstance(desc, bool):
            raise _refuse(where, f"expected a bool, got {_what(desc)}")
        return desc
    if annotation is int:
        return _int(desc, where)
    if annotation is float:
        return _number(desc, where)
    if annotation is str:
        if not isinstance(desc, str):
            raise _refuse(where, f"expected a string, got {_what(desc)}")
        return desc
    if origin is list and args:
        return [_rebuild_as(v, args[0], f"{where}[{i}]") for i, v in enumerate(_items(desc, "list", where))]
    if origin is tuple and args:
        values = _items(desc, "tuple", where)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_rebuild_as(v, args[0], f"{where}[{i}]") for i, v in enumerate(values))
        if len(values) != len(args):
            raise _refuse(where, f"expected {len(args)} items, got {len(values)}")
        return tuple(_rebuild_as(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(values, args)))
    if origin is dict and args and args[0] is str:
        return {k: _rebuild_as(v, args[1], f"{where}[{k!r}]") for k, v in _items(desc, "dict", where).items()}
    if annotation is spaces.Space:
        return _rebuild_space(_fields(desc, where, ["kind", "space"])["space"], where)
    if origin is Callable:
        return _rebuild_schedule(desc, where)
    raise _refuse(where, f"a parameter of type {_name(annotation)} cannot be restored without unpickling")


@functools.cache
def constructor_types(cls: type) -> dict[str, Any]:
    """
    The annotated keyword parameters of ``cls``'s constructor, subclasses' first, along its MRO.

    Called for allowlisted classes only: resolving their annotations evaluates their own source's
    annotation strings, never text from a file. Cached, so that is done once per class.
    """
    result: dict[str, Any] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if not inspect.isfunction(init):
            continue
        hints = typing.get_type_hints(init)
        for name, param in inspect.signature(init).parameters.items():
            if name not in result and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY) and name in hints:
                result[name] = hints[name]
    return result


def _rebuild_policy_kwargs(desc: Any, policy_class: type, where: str) -> dict[str, Any]:
    accepted = constructor_types(policy_class)
    kwargs = {}
    for key, value in _items(desc, "dict", where).items():
        if key not in accepted:
            raise _refuse(f"{where}[{key!r}]", f"{policy_class.__name__} takes no such keyword")
        kwargs[key] = _rebuild_as(value, accepted[key], f"{where}[{key!r}]")
    # The weights it names are already in the saved policy; following a path from a file is not needed.
    if kwargs.get("features_extractor_weights") is not None:
        kwargs["features_extractor_weights"] = None
    return kwargs


def rebuild(desc: Any, annotation: Any = Any, where: str = "value") -> Any:
    """
    The value a :func:`describe` output stands for, checked against ``annotation``.

    :param desc: the description
    :param annotation: the type the value must have (``Any``: plain data only)
    :param where: the entry's name, for errors
    :raises UntrustedContentError: naming the part of ``desc`` that is not allowed
    """
    return _rebuild_as(desc, annotation, where)


def rebuild_entries(described: Any, keys: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
    """
    Rebuild the algorithm data entries ``keys`` from a description file's content.

    :return: the rebuilt entries, and the refused ones with the reason
    """
    if not isinstance(described, dict):
        raise UntrustedContentError(f"{DESCRIPTION_FILE} must hold an object, got {type(described).__name__}")
    rebuilt: dict[str, Any] = {}
    refused: list[str] = []
    # The policy class first: policy_kwargs are checked against its constructor.
    for key in sorted(keys, key=lambda k: k != "policy_class"):
        try:
            if key not in described:
                refused.append(f"{key} (not in {DESCRIPTION_FILE})")
            elif key == "policy_kwargs":
                if "policy_class" not in rebuilt:
                    raise UntrustedContentError("policy_kwargs: no policy class to check them against")
                rebuilt[key] = _rebuild_policy_kwargs(described[key], rebuilt["policy_class"], key)
            elif key in ENTRY_TYPES:
                rebuilt[key] = _rebuild_as(described[key], ENTRY_TYPES[key], key)
            else:
                refused.append(f"{key} (sb3-rtrl does not rebuild this entry)")
        except UntrustedContentError as err:
            refused.append(f"{key} ({err})")
    return rebuilt, refused


def _describe_json(value: Any, where: str) -> Any:
    """A plain JSON value of ``data`` in :func:`describe`'s form, so that it is checked as a description is."""
    try:
        return describe(value)
    except (NotDescribable, RecursionError) as err:
        raise _refuse(where, f"not plain data ({type(err).__name__})") from None


def check_data_entries(data: dict[str, Any], described: Any) -> dict[str, Any]:
    """
    Every entry of a model file's ``data``, checked and rebuilt without unpickling: the values SB3 is to use.

    Pickled entries are rebuilt from the description (:func:`rebuild_entries`); plain JSON entries are checked
    against :data:`PLAIN_ENTRY_TYPES` (``policy_kwargs`` against the policy's constructor); run state a loaded
    model resets is replaced; any other entry is refused.

    :param data: the file's ``data`` member, parsed
    :param described: the file's description member, parsed
    :return: ``custom_objects`` holding every entry of ``data``
    :raises UntrustedContentError: naming every entry that is refused
    """
    pickled = set(pickled_keys(data))
    custom: dict[str, Any] = {}
    refused: list[str] = []
    plain: list[str] = []
    for key in data:
        if key in DISPENSABLE:
            custom[key] = deque(maxlen=100) if key.startswith("ep_") else DISPENSABLE[key]
        elif key in DROPPED:
            custom[key] = DROPPED[key]
        elif key not in pickled:
            if key in PLAIN_ENTRY_TYPES or key == "policy_kwargs":
                plain.append(key)
            else:
                refused.append(f"{key} (sb3-rtrl's save does not write this entry)")
    # The pickled entries first: plain policy_kwargs are checked against the rebuilt policy class.
    rebuilt, refused_pickled = rebuild_entries(described, [k for k in data if k in pickled and k not in custom])
    custom.update(rebuilt)
    refused += refused_pickled
    for key in plain:
        value = data[key]
        try:
            if key == "policy_kwargs":
                if "policy_class" not in custom:
                    raise UntrustedContentError("policy_kwargs: no policy class to check them against")
                custom[key] = _rebuild_policy_kwargs(_describe_json(value, key), custom["policy_class"], key)
            else:
                custom[key] = _rebuild_as(_describe_json(value, key), PLAIN_ENTRY_TYPES[key], key)
        except UntrustedContentError as err:
            refused.append(f"{key} ({str(err).removeprefix(f'{key}: ')})")
    if custom.get("rollout_buffer_kwargs"):
        # The allowlisted buffers (SB3's) take no keywords beyond those the algorithm passes.
        refused.append(
            f"rollout_buffer_kwargs (SB3's rollout buffers take none, got {sorted(custom['rollout_buffer_kwargs'])})"
        )
    if refused:
        raise UntrustedContentError("; ".join(refused))
    _check_buffer_size(custom)
    return custom


def _check_buffer_size(custom: dict[str, Any]) -> None:
    """The rollout buffer the entries ask for must fit :attr:`LoadLimits.buffer_elements`."""
    space = custom.get("observation_space")
    if space is None:
        return
    parts = space.spaces.values() if isinstance(space, spaces.Dict) else [space]
    elements = sum(math.prod(part.shape or ()) for part in parts)
    total = int(custom.get("n_steps", 1)) * int(custom.get("n_envs", 1)) * max(elements, 1)
    limit = LIMITS.get().buffer_elements
    if total > limit:
        raise ModelFileError(
            f"n_steps * n_envs * observation elements = {total}, over the limit of {limit} (LoadLimits.buffer_elements)"
        )
