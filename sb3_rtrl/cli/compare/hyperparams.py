"""
Hyperparameters in rl-zoo3's yaml format, read without running code from the file.

rl-zoo3 ``eval``s its ``policy_kwargs`` strings; here they are parsed: ``dict(...)`` of literals, and
dotted class names that resolve to a class on the safe-load allowlist (``nn.ReLU``,
``sb3_rtrl.torch_layers.ImpalaCNN``). ``lin_X`` is rl-zoo3's linear schedule from X to 0.
"""

from __future__ import annotations

import ast
import os
from importlib import resources
from typing import Any

import yaml
from stable_baselines3.common.utils import LinearSchedule

from sb3_rtrl import torch_layers  # noqa: F401  (puts ImpalaCNN on the allowlist)
from sb3_rtrl.envs.factory import is_atari_id
from sb3_rtrl.safe_load import safe_classes

# Entries that say how to run rather than how the algorithm learns.
RUN_KEYS = ("n_envs", "n_timesteps", "policy", "normalize", "frame_stack", "env_kwargs")
UNSUPPORTED_KEYS = ("env_wrapper", "vec_env_wrapper", "callback", "normalize_kwargs")
_MODULE_ALIASES = {"nn": "torch.nn", "th": "torch", "optim": "torch.optim"}


def _resolve_class(dotted: str) -> type:
    prefix, _, name = dotted.rpartition(".")
    first, _, rest = prefix.partition(".")
    prefix = ".".join(p for p in (_MODULE_ALIASES.get(first, first), rest) if p)
    for cls in safe_classes().values():
        if cls.__qualname__ == name and (cls.__module__ == prefix or cls.__module__.startswith(prefix + ".")):
            return cls
    raise ValueError(f"{dotted!r} is not a class on the safe-load allowlist (see sb3_rtrl.safe_load.register_safe_class)")


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _convert(node: ast.AST, text: str) -> Any:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        if any(k.arg is None for k in node.keywords):
            raise ValueError(f"cannot read {text!r}: ** is not supported")
        return {k.arg: _convert(k.value, text) for k in node.keywords}
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise ValueError(f"cannot read {text!r}: ** is not supported")
        return {_convert(k, text): _convert(v, text) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_convert(v, text) for v in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    dotted = _dotted(node)
    if dotted is not None and dotted not in ("True", "False", "None"):
        return _resolve_class(dotted)
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(f"cannot read {text!r}: only literals, dict(...) and allowlisted class names") from None


def parse_value(value: Any) -> Any:
    """
    A hyperparameter value as rl-zoo3 would use it, without ``eval``: ``"lin_1e-3"`` is a linear schedule,
    a string holding ``dict(...)``, a list or a class name is parsed; other values are returned as they are.

    :raises ValueError: naming the text that cannot be read
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("lin_"):
        try:
            return LinearSchedule(float(text[4:]), 0.0, 1.0)
        except ValueError:
            raise ValueError(f"cannot read {value!r}: lin_ takes a number") from None
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return value  # a plain string, e.g. a policy name
    if isinstance(node, ast.Name) and node.id not in ("True", "False", "None"):
        return value
    return _convert(node, text)


def parse_override(text: str) -> tuple[str | None, str, Any]:
    """
    ``"learner.key=value"`` or ``"key=value"`` from the command line.

    :return: the learner (None: every learner), the key and the parsed value
    """
    target, sep, raw = text.partition("=")
    if not sep or not target.strip():
        raise ValueError(f"an override is key=value or learner.key=value, got {text!r}")
    learner, _, key = target.strip().rpartition(".")
    return learner or None, key, parse_value(raw.strip())


def hyperparams_file(location: str) -> str | None:
    """The path of ``"package:file"`` (in the package's hyperparams folder) or of a path; None if absent."""
    if ":" in location and not os.path.exists(location):
        package, _, name = location.partition(":")
        try:
            root = resources.files(package)
        except ModuleNotFoundError:
            return None
        path = root / "hyperparams" / name
        return str(path) if path.is_file() else None
    return location if os.path.isfile(location) else None


def task_keys(env_id: str) -> list[str]:
    """
    The names a zoo file may use for ``env_id``: itself, without the module that registers it (gymnasium's
    ``"module:Name-v0"``) and without a namespace, and ``atari`` for Atari.
    """
    name = env_id.partition(":")[2] or env_id
    keys = list(dict.fromkeys([env_id, name, name.split("/")[-1]]))
    if is_atari_id(env_id):
        keys.append("atari")
    return keys


def lookup(
    locations: tuple[str, ...] | list[str], env_id: str, unparsed: tuple[str, ...] | list[str] = ()
) -> tuple[dict[str, Any], str | None]:
    """
    The first entry for ``env_id`` in the zoo files at ``locations``, parsed.

    :param locations: zoo files, ``"package:file"`` or paths, the first with an entry wins
    :param env_id: the task
    :param unparsed: keys to be removed from the entry (``--unset``): kept as the file has them, neither parsed nor
        refused, so that an entry with a key compare does not apply can run without it
    :return: the entry (empty if none) and ``"file:key"`` where it was found
    """
    for location in locations:
        path = hyperparams_file(location)
        if path is None:
            continue
        with open(path) as f:
            table = yaml.safe_load(f) or {}
        for key in task_keys(env_id):
            if key in table:
                entry = dict(table[key])
                if key == "atari":
                    entry.pop("env_wrapper", None)  # AtariWrapper: the Atari factory applies it
                unsupported = [k for k in entry if k in UNSUPPORTED_KEYS and k not in unparsed]
                if unsupported:
                    raise ValueError(
                        f"{path} [{key}]: compare does not apply {', '.join(unsupported)} (--unset removes a key)"
                    )
                return {k: v if k in unparsed else parse_value(v) for k, v in entry.items()}, f"{path}:{key}"
    return {}, None
