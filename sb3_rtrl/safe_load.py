"""
Loading saved models without running code from the file.

SB3 stores what JSON cannot hold (spaces, classes, schedules, policy kwargs) as pickles, and unpickling
runs code. ``RTRLA2C.save`` therefore adds ``sb3_rtrl.json`` to the zip: a plain description of those
entries. :func:`load_model` rebuilds them from it and hands them to SB3 as ``custom_objects``, which SB3
then does not unpickle; weights are read by ``torch.load(weights_only=True)``. Classes are rebuilt only
from trusted packages (torch, gymnasium, Stable-Baselines3, sb3-rtrl); anything else is refused unless
the user trusts the file.
"""

from __future__ import annotations

import importlib
import json
import os
import zipfile
from collections import deque
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.utils import ConstantSchedule, FloatSchedule, LinearSchedule

DESCRIPTION_FILE = "sb3_rtrl.json"
TRUSTED_MODULES = ("torch", "gymnasium", "stable_baselines3", "sb3_contrib", "sb3_rtrl")
# Run state that a loaded model does not need: it starts from a reset environment anyway.
DISPENSABLE = {
    "_last_obs": None,
    "_last_original_obs": None,
    "_last_episode_starts": None,
    "ep_info_buffer": None,
    "ep_success_buffer": None,
}
TRUST_ENV_VAR = "TRUST_REMOTE_CODE"


class UntrustedContentError(ValueError):
    """A saved model holds content that only unpickling (running code from the file) could restore."""


class _NotDescribable(Exception):
    pass


def trust_from_environment() -> bool:
    """The ``TRUST_REMOTE_CODE`` variable (used by huggingface_sb3 too): true for 1, true, yes."""
    return os.environ.get(TRUST_ENV_VAR, "").strip().lower() in ("1", "true", "yes")


# ------------------------------------------------------------------------------------------ describe


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


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


def _import_class(path: str) -> type:
    module, _, qualname = path.partition(":")
    if module.split(".")[0] not in TRUSTED_MODULES:
        raise UntrustedContentError(f"class {path} is not from a trusted package ({', '.join(TRUSTED_MODULES)})")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, type):
        raise UntrustedContentError(f"{path} is not a class")
    return obj


def _rebuild_space(desc: dict[str, Any]) -> spaces.Space:
    kind = desc["type"]
    if kind == "Box":
        dtype = np.dtype(desc["dtype"])
        return spaces.Box(np.array(desc["low"], dtype=dtype), np.array(desc["high"], dtype=dtype), tuple(desc["shape"]), dtype)
    if kind == "Discrete":
        return spaces.Discrete(desc["n"], start=desc["start"])
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(desc["nvec"], dtype=desc["dtype"])
    if kind == "MultiBinary":
        return spaces.MultiBinary(desc["n"])
    if kind == "Dict":
        return spaces.Dict({k: _rebuild_space(s) for k, s in desc["spaces"].items()})
    raise UntrustedContentError(f"unknown space type {kind!r}")


def rebuild(desc: Any) -> Any:
    """The value a :func:`describe` output stands for (imports trusted classes only)."""
    if not isinstance(desc, dict):
        return desc
    kind = desc.get("kind")
    if kind == "list":
        return [rebuild(v) for v in desc["items"]]
    if kind == "tuple":
        return tuple(rebuild(v) for v in desc["items"])
    if kind == "dict":
        return {k: rebuild(v) for k, v in desc["items"].items()}
    if kind == "class":
        return _import_class(desc["path"])
    if kind == "space":
        return _rebuild_space(desc["space"])
    if kind == "float_schedule":
        return FloatSchedule(rebuild(desc["inner"]))
    if kind == "linear_schedule":
        return LinearSchedule(float(desc["start"]), float(desc["end"]), float(desc["end_fraction"]))
    if kind == "constant_schedule":
        return ConstantSchedule(float(desc["value"]))
    raise UntrustedContentError(f"unknown description kind {kind!r}")


def _pickled_keys(data: dict[str, Any]) -> list[str]:
    return [key for key, item in data.items() if isinstance(item, dict) and ":serialized:" in item]


def add_description(path: str, model: Any) -> None:
    """
    Append to a model's zip a plain description of the entries SB3 pickled (done by ``RTRLA2C.save``).

    :param path: the saved ``.zip``
    :param model: the model that was saved (its attributes are described)
    """
    with zipfile.ZipFile(path) as archive:
        data = json.loads(archive.read("data"))
    described = {}
    for key in _pickled_keys(data):
        if key in DISPENSABLE:
            continue
        try:
            described[key] = describe(getattr(model, key))
        except (_NotDescribable, AttributeError):
            pass  # left to the pickle: a safe load refuses it and says so
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(DESCRIPTION_FILE, json.dumps(described))


def safe_custom_objects(path: str) -> dict[str, Any]:
    """
    Everything SB3 would unpickle from the model at ``path``, rebuilt without unpickling.

    :param path: a model zip
    :return: ``custom_objects`` for ``RTRLA2C.load``
    :raises UntrustedContentError: naming the entries that only unpickling could restore
    """
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        data = json.loads(archive.read("data"))
        described = json.loads(archive.read(DESCRIPTION_FILE)) if DESCRIPTION_FILE in names else {}
    custom: dict[str, Any] = {}
    refused: list[str] = []
    for key in _pickled_keys(data):
        if key in DISPENSABLE:
            custom[key] = deque(maxlen=100) if key.startswith("ep_") else DISPENSABLE[key]
        elif key in described:
            try:
                custom[key] = rebuild(described[key])
            except UntrustedContentError as err:
                refused.append(f"{key} ({err})")
        else:
            refused.append(f"{key} (a pickled {data[key].get(':type:', 'object')})")
    if refused:
        raise UntrustedContentError(
            f"{path} holds content that only unpickling, which runs code from the file, could restore: "
            f"{'; '.join(refused)}. If you trust where it comes from, pass trust_remote_code=True "
            f"(or set {TRUST_ENV_VAR}=1)."
        )
    return custom


def load_model(path: str, trust_remote_code: bool | None = None, **load_kwargs: Any):
    """
    Load an RTRLA2C model from a local zip, running no code from the file unless it is trusted.

    :param path: the model zip
    :param trust_remote_code: allow unpickling (needed only for content sb3-rtrl cannot rebuild, such as
        a user's own class); None reads the ``TRUST_REMOTE_CODE`` environment variable
    :param load_kwargs: more ``RTRLA2C.load`` arguments (``env``, ``device``, ...)
    :return: the loaded model
    """
    from sb3_rtrl.a2c import RTRLA2C

    trusted = trust_from_environment() if trust_remote_code is None else trust_remote_code
    if not trusted:
        custom = {**safe_custom_objects(path), **load_kwargs.pop("custom_objects", {})}
        load_kwargs["custom_objects"] = custom
    return RTRLA2C.load(path, **load_kwargs)
