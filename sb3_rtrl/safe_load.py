"""
Loading saved models without running code from the file.

SB3 stores what JSON cannot hold (spaces, classes, schedules, policy kwargs) as pickles, and unpickling
runs code. The algorithms' ``save`` therefore adds ``sb3_rtrl.json`` to the zip: a plain description of those
entries. :func:`load_model` rebuilds them from it and hands them to SB3 as ``custom_objects``, which SB3
then does not unpickle; weights are read by ``torch.load(weights_only=True)``.

The description is untrusted input. Rebuilding it imports nothing and looks up no attribute: a class
is taken only from an exact allowlist keyed by its full name (:func:`register_safe_class` extends it
from the user's own code), every value is checked against the annotation of the parameter it will be
passed to (a class must be an allowlisted subclass of what the parameter takes; anything typed ``Any``
must be plain data), and spaces and schedules are built only from known types with validated fields.
Whatever fails is refused with :class:`UntrustedContentError`, naming the entry.

Every entry of the file's ``data`` is checked too, the plain JSON ones included: only the entries this project's
``save`` writes are accepted, each as the type it has there, and all of them reach SB3 as ``custom_objects``, so
SB3 uses nothing from the file unchecked (an ``env`` entry, which SB3 would pass to ``gym.make``, is refused).
Reading is bounded (:class:`LoadLimits`) and a malformed file is named with its member
(:class:`ModelFileError`).
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import inspect
import io
import json
import math
import os
import pathlib
import types
import typing
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictRolloutBuffer, RolloutBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.save_util import open_path
from stable_baselines3.common.torch_layers import CombinedExtractor, FlattenExtractor, NatureCNN
from stable_baselines3.common.utils import ConstantSchedule, FloatSchedule, LinearSchedule
from torch import nn

DESCRIPTION_FILE = "sb3_rtrl.json"
# The description's entry naming the algorithm that saved the file (absent in files older than RTRLPPO: RTRLA2C).
ALGORITHM_ENTRY = "sb3_rtrl.algorithm"
# The algorithms a file may name, and the module of each: looked up here, never imported by a name from a file.
ALGORITHMS: dict[str, str] = {"RTRLA2C": "sb3_rtrl.a2c", "RTRLPPO": "sb3_rtrl.ppo"}
# Run state that a loaded model does not need: it starts from a reset environment anyway.
DISPENSABLE = {
    "_last_obs": None,
    "_last_original_obs": None,
    "_last_episode_starts": None,
    "ep_info_buffer": None,
    "ep_success_buffer": None,
}
TRUST_ENV_VAR = "TRUST_REMOTE_CODE"
# Numeric dtypes a space may have; "object" and friends would let a space hold arbitrary Python values.
SPACE_DTYPES = frozenset(
    ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64"]
)
# The schedule type of SB3's annotations (learning_rate, clip_range): a float function of the progress.
_SCHEDULE = Callable[[float], float]


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
_LIMITS: contextvars.ContextVar[LoadLimits] = contextvars.ContextVar("sb3_rtrl_load_limits", default=DEFAULT_LIMITS)
# The members every model file has (SB3's save writes them; the weights are needed to load).
REQUIRED_MEMBERS = ("data", "policy.pth", "policy.optimizer.pth")


class _NotDescribable(Exception):
    pass


def trust_from_environment() -> bool:
    """The ``TRUST_REMOTE_CODE`` variable (used by huggingface_sb3 too): true for 1, true, yes."""
    return os.environ.get(TRUST_ENV_VAR, "").strip().lower() in ("1", "true", "yes")


# ------------------------------------------------------------------------------------------ allowlist


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


_SAFE_CLASSES: dict[str, type] = {}
_BUILTINS_REGISTERED = False


def register_safe_class(*classes: type) -> None:
    """
    Allow classes to be rebuilt from a model's description, e.g. your own features extractor.

    Only your own code can call this, so it extends trust to code already running in your process; a
    saved file cannot. The class is still used only where a parameter's annotation accepts it.

    :param classes: the classes to allow
    """
    for cls in classes:
        if not isinstance(cls, type):
            raise TypeError(f"register_safe_class takes classes, got {cls!r}")
        _SAFE_CLASSES[_class_path(cls)] = cls


def safe_classes() -> dict[str, type]:
    """The allowlist: full class name (``module:qualname``) to class."""
    global _BUILTINS_REGISTERED
    if not _BUILTINS_REGISTERED:
        # Imported here: the policies module imports the algorithm's dependencies, not the other way round.
        from sb3_rtrl import policies, torch_layers

        register_safe_class(
            policies.RTRLActorCriticPolicy, policies.RTRLActorCriticCnnPolicy, policies.RTRLMultiInputActorCriticPolicy,
            FlattenExtractor, NatureCNN, CombinedExtractor, torch_layers.ImpalaCNN,
            RolloutBuffer, DictRolloutBuffer,
            nn.Identity, nn.Tanh, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid,
            nn.Softplus, nn.Hardtanh,
            th.optim.Adam, th.optim.AdamW, th.optim.RMSprop, th.optim.SGD, th.optim.Adagrad, th.optim.Adamax,
            th.optim.NAdam, th.optim.RAdam,
        )  # fmt: skip
        _BUILTINS_REGISTERED = True
    return _SAFE_CLASSES


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
}
# Entries whose value is a path on the saving machine: set to None, so that nothing from the file names a path that
# is then written to (pass tensorboard_log= to the load to log).
DROPPED = {"tensorboard_log": None}


# ------------------------------------------------------------------------------------------ describe


def describe(value: Any) -> Any:
    """
    A JSON description of ``value`` from which :func:`rebuild` makes it again without unpickling.

    :raises _NotDescribable: for values outside the supported kinds (e.g. a lambda)
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return {"kind": "list" if isinstance(value, list) else "tuple", "items": [describe(v) for v in value]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise _NotDescribable("dict with non-string keys")
        return {"kind": "dict", "items": {k: describe(v) for k, v in value.items()}}
    if isinstance(value, type):
        return {"kind": "class", "path": _class_path(value)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, spaces.Space):
        return {"kind": "space", "space": _describe_space(value)}
    if isinstance(value, FloatSchedule):
        return {"kind": "float_schedule", "inner": describe(value.value_schedule)}
    if isinstance(value, LinearSchedule):
        return {"kind": "linear_schedule", "start": value.start, "end": value.end, "end_fraction": value.end_fraction}
    if isinstance(value, ConstantSchedule):
        return {"kind": "constant_schedule", "value": value.val}
    raise _NotDescribable(type(value).__name__)


def _describe_space(space: spaces.Space) -> dict[str, Any]:
    if isinstance(space, spaces.Box):
        return {"type": "Box", "low": space.low.tolist(), "high": space.high.tolist(), "shape": list(space.shape),
                "dtype": str(space.dtype)}  # fmt: skip
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist(), "dtype": str(space.dtype)}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: _describe_space(s) for k, s in space.spaces.items()}}
    raise _NotDescribable(f"space {type(space).__name__}")


# ------------------------------------------------------------------------------------------ rebuild


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
    limit = _LIMITS.get().space_elements
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


def _pickled_keys(data: dict[str, Any]) -> list[str]:
    return [key for key, item in data.items() if isinstance(item, dict) and ":serialized:" in item]


def add_description(file: io.BytesIO, model: Any) -> None:
    """
    Append to a saved model's zip a plain description of the entries SB3 pickled, and the algorithm's name
    (done by the algorithms' ``save``).

    :param file: the zip, in memory
    :param model: the model that was saved (its attributes are described)
    """
    with zipfile.ZipFile(file) as archive:
        data = json.loads(archive.read("data"))
    described = {}
    for key in _pickled_keys(data):
        if key in DISPENSABLE:
            continue
        try:
            described[key] = describe(getattr(model, key))
        except (_NotDescribable, AttributeError):
            pass  # left to the pickle: a safe load refuses it and says so
    described[ALGORITHM_ENTRY] = type(model).__name__
    with zipfile.ZipFile(file, "a") as archive:
        archive.writestr(DESCRIPTION_FILE, json.dumps(described))


def _describe_json(value: Any, where: str) -> Any:
    """A plain JSON value of ``data`` in :func:`describe`'s form, so that it is checked as a description is."""
    try:
        return describe(value)
    except (_NotDescribable, RecursionError) as err:
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
    pickled = set(_pickled_keys(data))
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
    limit = _LIMITS.get().buffer_elements
    if total > limit:
        raise ModelFileError(
            f"n_steps * n_envs * observation elements = {total}, over the limit of {limit} (LoadLimits.buffer_elements)"
        )


@contextmanager
def load_limits(limits: LoadLimits | None) -> Iterator[LoadLimits]:
    """Use ``limits`` (None: :data:`DEFAULT_LIMITS`) for the loads inside the ``with`` block."""
    token = _LIMITS.set(limits or DEFAULT_LIMITS)
    try:
        yield _LIMITS.get()
    finally:
        _LIMITS.reset(token)


def _source_name(path: str | pathlib.Path | io.BufferedIOBase) -> str:
    return str(path) if isinstance(path, (str, pathlib.Path)) else f"<{type(path).__name__}>"


def _json_member(archive: zipfile.ZipFile, name: str, source: str) -> Any:
    try:
        return json.loads(archive.read(name))
    except RecursionError:
        raise ModelFileError(f"{source}: member {name!r} is nested too deeply to be a saved model's") from None
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError, integers past Python's digit limit
        raise ModelFileError(f"{source}: member {name!r} is not valid JSON ({err})") from None


def _read_archive(path: str | pathlib.Path | io.BufferedIOBase) -> tuple[dict[str, Any], Any]:
    """
    The data entry and the description of a model zip, found as SB3's load finds it; every member's size checked
    against the limits, and the members SB3 needs present.

    :raises ModelFileError: naming the file and the member that is missing, too large or malformed
    """
    source = _source_name(path)
    limits = _LIMITS.get()
    try:
        file = open_path(path, "r", verbose=0, suffix="zip")
    except OSError as err:
        raise ModelFileError(f"{source}: cannot be read ({err})") from None
    start = file.tell()
    try:
        with zipfile.ZipFile(file) as archive:
            infos = {info.filename: info for info in archive.infolist()}
            missing = [name for name in REQUIRED_MEMBERS if name not in infos]
            if missing:
                raise ModelFileError(f"{source}: not a complete saved model, member(s) {missing} missing")
            for name, info in infos.items():
                limit = limits.weights_bytes if name.endswith(".pth") else limits.member_bytes
                if info.file_size > limit:
                    field = "weights_bytes" if name.endswith(".pth") else "member_bytes"
                    raise ModelFileError(
                        f"{source}: member {name!r} is {info.file_size} bytes, over the limit of {limit} (LoadLimits.{field})"
                    )
            data = _json_member(archive, "data", source)
            described = _json_member(archive, DESCRIPTION_FILE, source) if DESCRIPTION_FILE in infos else {}
    except zipfile.BadZipFile as err:
        raise ModelFileError(f"{source}: not a zip archive or a damaged one ({err})") from None
    finally:
        if isinstance(path, (str, pathlib.Path)):
            file.close()
        else:
            file.seek(start)  # SB3 reads the same file object next
    if not isinstance(data, dict):
        raise ModelFileError(f"{source}: member 'data' must hold an object, got {type(data).__name__}")
    if not isinstance(described, dict):
        raise ModelFileError(f"{source}: member {DESCRIPTION_FILE!r} must hold an object, got {type(described).__name__}")
    return data, described


def safe_custom_objects(path: str | pathlib.Path | io.BufferedIOBase) -> dict[str, Any]:
    """
    Every entry of the model at ``path``'s ``data``, checked and rebuilt without unpickling (see
    :func:`check_data_entries`).

    :param path: a model zip (``.zip`` may be left out, as for SB3's load) or a binary file object
    :return: ``custom_objects`` for the algorithm's ``load``
    :raises UntrustedContentError: naming the entries that only unpickling, which runs code from the file, could
        restore, or that sb3-rtrl's save does not write
    :raises ModelFileError: for a file that is malformed or over the limits
    """
    data, described = _read_archive(path)
    try:
        return check_data_entries(data, described)
    except UntrustedContentError as err:
        raise UntrustedContentError(
            f"{_source_name(path)} holds content that sb3-rtrl cannot load without running code from the file: {err}. "
            f"If you trust where it comes from, pass trust_remote_code=True (or set {TRUST_ENV_VAR}=1)."
        ) from None


def algorithm_class(name: str | None = None) -> type:
    """
    The sb3-rtrl algorithm class called ``name`` (None: RTRLA2C, the only one before the name was saved).

    :raises ModelFileError: for a name that is not one of :data:`ALGORITHMS`
    """
    name = "RTRLA2C" if name is None else name
    if not isinstance(name, str) or name not in ALGORITHMS:
        raise ModelFileError(f"the file names the algorithm {name!r}; sb3-rtrl has {sorted(ALGORITHMS)}")
    return getattr(importlib.import_module(ALGORITHMS[name]), name)


def saved_algorithm(path: str | pathlib.Path | io.BufferedIOBase) -> type:
    """The class of the algorithm that saved the model at ``path`` (read from its description)."""
    _, described = _read_archive(path)
    return algorithm_class(described.get(ALGORITHM_ENTRY))


def check_algorithm(path: str | pathlib.Path | io.BufferedIOBase, algorithm: type) -> None:
    """
    Raise ModelFileError unless ``algorithm`` is the class that saved the model at ``path`` or a subclass of it,
    and the file is complete and within the limits.
    """
    saved = saved_algorithm(path)
    if not issubclass(algorithm, saved):
        raise ModelFileError(
            f"{_source_name(path)} was saved by {saved.__name__}: load it with {saved.__name__}.load (or "
            f"sb3_rtrl.hub.load_model, which picks the class), not {algorithm.__name__}"
        )


def load_model(
    path: str | pathlib.Path | io.BufferedIOBase,
    trust_remote_code: bool | None = None,
    algorithm: type | None = None,
    limits: LoadLimits | None = None,
    **load_kwargs: Any,
):
    """
    Load a model saved by an sb3-rtrl algorithm from a local zip, running no code from the file unless trusted.

    :param path: the model zip (``.zip`` may be left out, as for SB3's load) or a binary file object
    :param trust_remote_code: allow unpickling (needed only for content sb3-rtrl cannot rebuild, such as
        a user's own class); None reads the ``TRUST_REMOTE_CODE`` environment variable
    :param algorithm: the algorithm class to load with (the one that saved the file or a subclass); None: the one
        that saved the file
    :param limits: bounds on the sizes read (:class:`LoadLimits`); None: :data:`DEFAULT_LIMITS`
    :param load_kwargs: more arguments of the algorithm's ``load`` (``env``, ``device``, ...)
    :return: the loaded model
    """
    with load_limits(limits):
        if algorithm is None:
            algorithm = saved_algorithm(path)
        else:
            check_algorithm(path, algorithm)
        trusted = trust_from_environment() if trust_remote_code is None else trust_remote_code
        if not trusted:
            custom = {**safe_custom_objects(path), **load_kwargs.pop("custom_objects", {})}
            load_kwargs["custom_objects"] = custom
        return algorithm.load(path, **load_kwargs)  # type: ignore[attr-defined]
