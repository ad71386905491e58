"""Reading a model file within bounds and loading it with its entries rebuilt, not unpickled, unless trusted."""

from __future__ import annotations

import io
import json
import os
import pathlib
import zipfile
from typing import Any

from stable_baselines3.common.save_util import open_path

from sb3_rtrl.algorithms import ALGORITHMS
from sb3_rtrl.safe_load.describe import ALGORITHM_ENTRY, DESCRIPTION_FILE
from sb3_rtrl.safe_load.errors import LIMITS, LoadLimits, ModelFileError, UntrustedContentError, load_limits
from sb3_rtrl.safe_load.rebuild import check_data_entries

TRUST_ENV_VAR = "TRUST_REMOTE_CODE"
# The members every model file has (SB3's save writes them; the weights are needed to load).
REQUIRED_MEMBERS = ("data", "policy.pth", "policy.optimizer.pth")


def trust_from_environment() -> bool:
    """The ``TRUST_REMOTE_CODE`` variable (used by huggingface_sb3 too): true for 1, true, yes."""
    return os.environ.get(TRUST_ENV_VAR, "").strip().lower() in ("1", "true", "yes")


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
    limits = LIMITS.get()
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
    # The algorithm that saved the file, imported: its policies put themselves on the allowlist.
    algorithm_class(described.get(ALGORITHM_ENTRY))
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
    return ALGORITHMS[name].load()


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
