"""Plain JSON descriptions of the entries SB3 pickles when it saves a model, written beside them by ``save``."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.utils import ConstantSchedule, FloatSchedule, LinearSchedule

from sb3_rtrl.safe_load.allowlist import class_path

DESCRIPTION_FILE = "sb3_rtrl.json"
# The description's entry naming the algorithm that saved the file (absent in files older than RTRLPPO: RTRLA2C).
ALGORITHM_ENTRY = "sb3_rtrl.algorithm"
# Run state that a loaded model does not need: it starts from a reset environment anyway.
DISPENSABLE = {
    "_last_obs": None,
    "_last_original_obs": None,
    "_last_episode_starts": None,
    "ep_info_buffer": None,
    "ep_success_buffer": None,
}


class NotDescribable(Exception):
    """A value outside the kinds :func:`describe` writes (e.g. a lambda): it is left to the pickle."""


def describe(value: Any) -> Any:
    """
    A JSON description of ``value`` from which :func:`rebuild` makes it again without unpickling.

    :raises NotDescribable: for values outside the supported kinds (e.g. a lambda)
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return {"kind": "list" if isinstance(value, list) else "tuple", "items": [describe(v) for v in value]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise NotDescribable("dict with non-string keys")
        return {"kind": "dict", "items": {k: describe(v) for k, v in value.items()}}
    if isinstance(value, type):
        return {"kind": "class", "path": class_path(value)}
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
    raise NotDescribable(type(value).__name__)


def _describe_space(space: spaces.Space) -> dict[str, Any]:
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "low": space.low.tolist(),
            "high": space.high.tolist(),
            "shape": list(space.shape),
            "dtype": str(space.dtype),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist(), "dtype": str(space.dtype)}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: _describe_space(s) for k, s in space.spaces.items()}}
    raise NotDescribable(f"space {type(space).__name__}")


def pickled_keys(data: dict[str, Any]) -> list[str]:
    """The entries of a saved model's ``data`` that SB3 pickled."""
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
    for key in pickled_keys(data):
        if key in DISPENSABLE:
            continue
        try:
            described[key] = describe(getattr(model, key))
        except (NotDescribable, AttributeError):
            pass  # left to the pickle: a safe load refuses it and says so
    described[ALGORITHM_ENTRY] = type(model).__name__
    with zipfile.ZipFile(file, "a") as archive:
        archive.writestr(DESCRIPTION_FILE, json.dumps(described))
