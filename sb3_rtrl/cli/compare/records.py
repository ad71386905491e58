"""
The finished runs of a comparison, kept in ``runs.json`` in its output folder so that ``compare --resume`` runs only
what is missing.

A record holds a run's spec, its measurements and the code that made them (the versions of the packages that decide
a run's numbers and a digest of this package's sources). A record is reused only for a run whose spec and code are
the same, so that one table never mixes runs of different code. The file is JSON, read with a size bound and checked
field by field: nothing in it is run or imported.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from sb3_rtrl.cli.compare.worker import RunResult, RunSpec

RECORDS_FILE = "runs.json"
FORMAT = "sb3-rtrl compare runs"
FORMAT_VERSION = 1
# A record is a few kilobytes; this bounds what a file from elsewhere can make us read.
MAX_BYTES = 64 * 2**20
# Where a run's numbers come from besides its spec.
PACKAGES = ("sb3-rtrl", "stable-baselines3", "sb3-contrib", "torch", "gymnasium", "numpy", "popgym", "ale-py")
# Fields of RunSpec that say where a run writes, not what it measures.
UNCOMPARED_FIELDS = ("save_dir",)


def _plain(value: Any) -> Any:
    """``value`` as JSON-able data that is equal for equal settings: classes and objects by name and attributes."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, (list, tuple)):
        return {type(value).__name__: [_plain(v) for v in value]}
    if isinstance(value, dict):
        return {"dict": sorted(([_plain(k), _plain(v)] for k, v in value.items()), key=json.dumps)}
    if isinstance(value, type):
        return {"class": f"{value.__module__}.{value.__qualname__}"}
    # An object of plain attributes (a schedule such as LinearSchedule) by its class and attributes; anything else
    # (a function, a module) has no description that tells two of them apart.
    cls = f"{type(value).__module__}.{type(value).__qualname__}"
    attributes = getattr(value, "__dict__", None)
    plain = (type(None), bool, int, float, str)
    if callable(value) and attributes and all(isinstance(v, plain) for v in attributes.values()):
        return {"object": cls, "attributes": _plain(dict(attributes))}
    raise Unrecordable(f"the setting {value!r} ({cls}) has no description that tells it apart from another")


class Unrecordable(ValueError):
    """A run whose spec holds a setting that cannot be described (a function): it is not recorded, nor reused."""


def describe(spec: RunSpec) -> dict[str, Any]:
    """What decides a run's numbers: its spec's fields as plain data (not where it writes)."""
    return {f.name: _plain(getattr(spec, f.name)) for f in dataclasses.fields(spec) if f.name not in UNCOMPARED_FIELDS}


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> dict[str, Any]:
    """Python's and the packages' versions, and a digest of this package's source and data files."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    root = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".yml", ".yaml", ".cu", ".json")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return {"python": platform.python_version(), "packages": versions, "sb3_rtrl_sources": digest.hexdigest()}


def _key(description: dict[str, Any], code: dict[str, Any]) -> str:
    return json.dumps([description, code], sort_keys=True)


def record(result: RunResult) -> dict[str, Any]:
    """
    The record of a finished run (one without an error).

    :raises Unrecordable: if its spec cannot be described (see :func:`spec_key`)
    """
    return {
        "code": code_fingerprint(),
        "spec": describe(result.spec),
        "result": {
            "points": [list(p) for p in result.points],
            "final_mean": result.final_mean,
            "final_std": result.final_std,
            "final_success": result.final_success,
            "train_seconds": result.train_seconds,
            "steps_done": result.steps_done,
        },
    }


def record_key(entry: dict[str, Any]) -> str:
    """The key under which a record matches a run: its spec and its code."""
    return _key(entry["spec"], entry["code"])


def spec_key(spec: RunSpec) -> str | None:
    """The key of the record ``spec`` would reuse (the spec as run by this code); None if it cannot be described."""
    try:
        return _key(describe(spec), code_fingerprint())
    except Unrecordable:
        return None


def result_from_record(spec: RunSpec, entry: dict[str, Any]) -> RunResult:
    """The :class:`RunResult` of ``spec`` from its record (one that :func:`read_records` checked)."""
    fields = entry["result"]
    return RunResult(
        spec,
        points=[(int(p[0]), float(p[1]), float(p[2]), float(p[3])) for p in fields["points"]],
        final_mean=float(fields["final_mean"]),
        final_std=float(fields["final_std"]),
        final_success=None if fields["final_success"] is None else float(fields["final_success"]),
        train_seconds=float(fields["train_seconds"]),
        steps_done=int(fields["steps_done"]),
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_entry(entry: Any, where: str) -> None:
    if not isinstance(entry, dict) or not all(isinstance(entry.get(k), dict) for k in ("code", "spec", "result")):
        raise ValueError(f"{where}: a record must be an object with objects 'code', 'spec' and 'result'")
    fields = entry["result"]
    points = fields.get("points")
    if not (isinstance(points, list) and points):
        raise ValueError(f"{where}: 'points' must be a non-empty list")
    for point in points:
        if not (isinstance(point, list) and len(point) == 4 and all(_is_number(v) for v in point)):
            raise ValueError(f"{where}: each point must be [env steps, seconds, mean return, std], got {point!r}")
    for name in ("final_mean", "final_std", "train_seconds", "steps_done"):
        if not _is_number(fields.get(name)):
            raise ValueError(f"{where}: {name!r} must be a number, got {fields.get(name)!r}")
    success = fields.get("final_success", "absent")
    if success is not None and not _is_number(success):
        raise ValueError(f"{where}: 'final_success' must be a number or null, got {success!r}")


def read_records(out: str) -> list[dict[str, Any]]:
    """
    The records in ``out``'s ``runs.json``, checked; none if there is no such file.

    :raises ValueError: naming the file and what is wrong with it
    """
    path = os.path.join(out, RECORDS_FILE)
    if not os.path.isfile(path):
        return []
    size = os.path.getsize(path)
    if size > MAX_BYTES:
        raise ValueError(f"{path} is {size} bytes, more than a comparison's records ({MAX_BYTES}); not read")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.loads(f.read(MAX_BYTES + 1))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} cannot be read as a comparison's records: {err}") from None
    if not (isinstance(data, dict) and data.get("format") == FORMAT and isinstance(data.get("runs"), list)):
        raise ValueError(f"{path} is not a comparison's records (no format {FORMAT!r} with a list of runs)")
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path} has records of version {data.get('version')!r}; this code reads version {FORMAT_VERSION}")
    for i, entry in enumerate(data["runs"]):
        _check_entry(entry, f"{path}, run {i}")
    return data["runs"]


def write_records(out: str, entries: list[dict[str, Any]]) -> None:
    """Replace ``out``'s ``runs.json`` with ``entries`` in one step: an interruption leaves the old file or the new."""
    path = os.path.join(out, RECORDS_FILE)
    with tempfile.NamedTemporaryFile("w", dir=out, prefix=".runs-", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump({"format": FORMAT, "version": FORMAT_VERSION, "runs": entries}, f, indent=1)
    os.replace(f.name, path)
