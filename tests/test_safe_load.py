"""Safe loading runs no code from the file: exploits, their variants, and mutated descriptions of real models."""

from __future__ import annotations

import copy
import gc
import io
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import FakeImageEnv
from stable_baselines3.common.utils import ConstantSchedule, FloatSchedule, LinearSchedule

from sb3_rtrl import RTRLA2C
from sb3_rtrl.envs import DELAYED_RECALL_ID
from sb3_rtrl.safe_load import (
    DESCRIPTION_FILE,
    UntrustedContentError,
    constructor_types,
    load_model,
    rebuild,
    rebuild_entries,
    register_safe_class,
    safe_classes,
    safe_custom_objects,
)

# Class paths an attacker might write: modules reachable from allowed ones, builtins, attribute chains.
EVIL_PATHS = [
    "torch.utils.cpp_extension:subprocess.Popen",
    "subprocess:Popen",
    "os:system",
    "torch:os.system",
    "builtins:eval",
    "builtins:exec",
    "builtins:type",
    "builtins:object",
    "sb3_rtrl.safe_load:importlib.import_module",
    "stable_baselines3.common.save_util:pickle.Unpickler",
    "torch.nn.modules.activation:Tanh.__class__",
    "torch.nn.modules.activation:Tanh.__init__.__globals__",
    "torch.nn.modules.activation:Tanh.__subclasses__",
    "sb3_rtrl.policies:RTRLActorCriticPolicy.__init__.__globals__.os",
    "sb3_rtrl.policies:th.hub.load",
    "torch.nn:Tanh",  # a real class, but not under its own name
    "torch.nn.modules.activation.Tanh",
    "torch.nn.modules.activation:Tanh ",
    "",
]


def small_model(env_kwargs=None, **kwargs) -> RTRLA2C:
    env = make_vec_env(DELAYED_RECALL_ID, n_envs=1, seed=0, env_kwargs=dict(delay=4, **(env_kwargs or {})))
    return RTRLA2C("MlpLstmPolicy", env, n_steps=4, seed=0, **kwargs)


def read_files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_with_description(source: Path, target: Path, description: Any) -> None:
    files = read_files(source)
    files[DESCRIPTION_FILE] = json.dumps(description).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)


@pytest.fixture
def saved(tmp_path, monkeypatch) -> tuple[Path, dict[str, Any]]:
    monkeypatch.delenv("TRUST_REMOTE_CODE", raising=False)
    path = tmp_path / "m.zip"
    small_model(policy_kwargs=dict(hidden_size=8)).save(path)
    return path, json.loads(read_files(path)[DESCRIPTION_FILE])


def test_the_reported_exploit_runs_nothing(saved, tmp_path):
    """Only the JSON edited: Popen reached through an allowed module, a Dict space whose keys are argv."""
    path, desc = saved
    marker = tmp_path / "pwned"
    evil = copy.deepcopy(desc)
    items = evil["policy_kwargs"]["items"]
    items["features_extractor_class"] = {"kind": "class", "path": "torch.utils.cpp_extension:subprocess.Popen"}
    items["features_extractor_kwargs"] = {"kind": "dict", "items": {"executable": "/bin/sh"}}
    argv = {
        " sh": {"type": "Discrete", "n": 2, "start": 0},
        "-c": {"type": "Discrete", "n": 2, "start": 0},
        f"touch {marker}": {"type": "Discrete", "n": 2, "start": 0},
    }
    evil["observation_space"] = {"kind": "space", "space": {"type": "Dict", "spaces": argv}}
    write_with_description(path, tmp_path / "evil.zip", evil)
    with pytest.raises(UntrustedContentError, match=r"features_extractor_class.*not on the safe-load allowlist"):
        load_model(str(tmp_path / "evil.zip"))
    assert not marker.exists()


@pytest.mark.parametrize("path", EVIL_PATHS)
@pytest.mark.parametrize("annotation", [type, type[th.nn.Module], type[object], Any])
def test_class_paths_outside_the_allowlist_are_refused(path, annotation):
    with pytest.raises(UntrustedContentError, match="allowlist|plain data"):
        rebuild({"kind": "class", "path": path}, annotation)


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("features_extractor_class", {"kind": "class", "path": "torch.optim.adam:Adam"}, "is not a BaseFeaturesExtractor"),
        ("activation_fn", {"kind": "class", "path": "torch.optim.adam:Adam"}, "is not a Module"),
        (
            "features_extractor_kwargs",
            {"kind": "dict", "items": {"x": {"kind": "class", "path": "torch.nn.modules.activation:Tanh"}}},
            "plain data",
        ),  # noqa: E501
        (
            "optimizer_kwargs",
            {"kind": "dict", "items": {"x": {"kind": "space", "space": {"type": "Discrete", "n": 2, "start": 0}}}},
            "plain data",
        ),  # noqa: E501
        ("hidden_size", "8", "expected an integer"),
        ("hidden_size", True, "expected an integer"),
        ("net_arch", {"kind": "list", "items": [8, "x"]}, r"net_arch'\]\[1\]"),
        ("ortho_init", 1, "expected a bool"),
        ("executable", "/bin/sh", "takes no such keyword"),
        ("__class__", None, "takes no such keyword"),
    ],
)
def test_policy_kwargs_are_checked_against_the_policy(saved, key, value, match):
    _, desc = saved
    evil = copy.deepcopy(desc)
    evil["policy_kwargs"]["items"][key] = value
    _, refused = rebuild_entries(evil, ["policy_class", "policy_kwargs"])
    assert len(refused) == 1 and refused[0].startswith("policy_kwargs")
    assert re.search(match, refused[0]), refused[0]


@pytest.mark.parametrize(
    "space, match",
    [
        ({"type": "Box", "low": [0], "high": [1], "shape": [1], "dtype": "object"}, "dtype 'object'"),
        ({"type": "Box", "low": [0, 0], "high": [1], "shape": [3], "dtype": "float32"}, "invalid Box space"),
        ({"type": "Box", "low": [[0], "x"], "high": [1], "shape": [1], "dtype": "float32"}, "expected a number"),
        ({"type": "Discrete", "n": "3", "start": 0}, "expected an integer"),
        ({"type": "Discrete", "n": 0, "start": 0}, ">= 1"),
        ({"type": "MultiDiscrete", "nvec": [2, 0.5], "dtype": "int64"}, "positive integers"),
        ({"type": "MultiBinary", "n": [2, True]}, "expected an integer"),
        ({"type": "Text", "max_length": 3}, "unknown space type 'Text'"),
        ({"type": "Dict", "spaces": {"a": {"type": "Graph"}}}, r"spaces\['a'\]: unknown space type"),
        ([1, 2], "expected an object"),
    ],
)
def test_spaces_are_rebuilt_only_from_valid_fields(space, match):
    with pytest.raises(UntrustedContentError, match=match):
        rebuild({"kind": "space", "space": space}, spaces.Space)


def test_register_safe_class_extends_the_allowlist_only_where_the_type_fits():
    class UsersActivation(th.nn.ReLU):
        pass

    desc = {"kind": "class", "path": f"{UsersActivation.__module__}:{UsersActivation.__qualname__}"}
    with pytest.raises(UntrustedContentError, match="allowlist"):
        rebuild(desc, type[th.nn.Module])
    register_safe_class(UsersActivation)
    try:
        assert rebuild(desc, type[th.nn.Module]) is UsersActivation
        with pytest.raises(UntrustedContentError, match="is not a Optimizer"):
            rebuild(desc, type[th.optim.Optimizer])
    finally:
        safe_classes().pop(desc["path"])
    with pytest.raises(TypeError, match="takes classes"):
        register_safe_class("torch:nn")  # type: ignore[arg-type]


def test_register_safe_class_takes_the_old_names_of_a_moved_class():
    """A class that moved keeps loading from files that name it where it was, and only under the names given."""

    class Moved(th.nn.ReLU):
        pass

    old = "users_old_module:Moved"
    with pytest.raises(UntrustedContentError, match="allowlist"):
        rebuild({"kind": "class", "path": old}, type[th.nn.Module])
    register_safe_class(Moved, aliases=(old,))
    try:
        assert rebuild({"kind": "class", "path": old}, type[th.nn.Module]) is Moved
        assert rebuild({"kind": "class", "path": f"{Moved.__module__}:{Moved.__qualname__}"}, type[th.nn.Module]) is Moved
    finally:
        safe_classes().pop(old)
        safe_classes().pop(f"{Moved.__module__}:{Moved.__qualname__}")
    with pytest.raises(TypeError, match="single class"):
        register_safe_class(th.nn.ReLU, th.nn.Tanh, aliases=(old,))


def test_a_fresh_process_loads_safely_before_importing_any_algorithm(saved):
    """
    The package's classes join the allowlist where they are defined; loading imports the algorithm the file names
    (from the package's own table), so a safe load needs nothing imported beforehand.
    """
    path, _ = saved
    script = (
        "import sys\n"
        "from sb3_rtrl.safe_load import safe_custom_objects, load_model\n"
        "assert 'sb3_rtrl.a2c' not in sys.modules\n"
        f"custom = safe_custom_objects({str(path)!r})\n"
        "print(custom['policy_class'].__name__)\n"
        f"print(type(load_model({str(path)!r})).__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["RTRLActorCriticPolicy", "RTRLA2C"]


@pytest.mark.parametrize("name", ["ckpt_1.5", "ckpt", "ckpt.zip", "dir/ckpt.v2.zip", "model.pt"])
def test_any_name_sb3_accepts_saves_and_loads_safely(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    model = small_model(policy_kwargs=dict(hidden_size=8))
    model.save(name)
    written = Path(name if Path(name).suffix else f"{name}.zip")
    assert written.is_file() and DESCRIPTION_FILE in read_files(written)
    loaded = load_model(name)
    for a, b in zip(loaded.policy.state_dict().values(), model.policy.state_dict().values()):
        th.testing.assert_close(a, b)
    assert isinstance(RTRLA2C.load(name), RTRLA2C)  # SB3's own (unpickling) load reads the same file


def test_file_objects_save_and_load_safely():
    model = small_model(policy_kwargs=dict(hidden_size=8))
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    custom = safe_custom_objects(buffer)
    assert buffer.tell() == 0 and custom["observation_space"] == model.observation_space
    loaded = load_model(buffer)
    assert loaded.policy.hidden_size == 8


def test_features_extractor_weights_path_is_not_followed(tmp_path, monkeypatch):
    monkeypatch.delenv("TRUST_REMOTE_CODE", raising=False)
    env = FakeImageEnv(screen_height=36, screen_width=36, n_channels=1)
    kwargs = dict(hidden_size=8, features_extractor_kwargs=dict(features_dim=16))
    pretrained = tmp_path / "pretrained.zip"
    RTRLA2C("CnnLstmPolicy", env, n_steps=4, policy_kwargs=kwargs, seed=0).save(pretrained)
    model = RTRLA2C("CnnLstmPolicy", env, n_steps=4, policy_kwargs=dict(kwargs, features_extractor_weights=str(pretrained)))
    model.save(tmp_path / "m.zip")
    pretrained.unlink()  # as on another machine: the saved model holds the extractor's weights itself
    loaded = load_model(str(tmp_path / "m.zip"))
    for p, q in zip(loaded.policy.features_extractor.parameters(), model.policy.features_extractor.parameters()):
        assert th.equal(p, q)


# ------------------------------------------------------------------------------------------ property test


class Watcher:
    """
    Records what runs while active: Python functions by module, C functions by name, audit events.

    Audit hooks cannot be removed, so one is installed per process and reads ``active``.
    """

    AUDITED = (
        "import",
        "exec",
        "compile",
        "os.system",
        "subprocess.Popen",
        "os.posix_spawn",
        "os.exec",
        "os.spawn",
        "open",
        "ctypes.dlopen",
        "pickle.find_class",
        "socket.connect",
        "shutil.",
        "os.remove",
        "os.mkdir",
    )
    FORBIDDEN_C = (
        "builtins.eval",
        "builtins.exec",
        "builtins.compile",
        "builtins.__import__",
        "builtins.open",
        "posix.system",
        "_imp.",
        "_pickle.",
        "marshal.",
        "posix.spawn",
        "posix.exec",
        "posix.fork",
    )
    # Where the code that a rebuild runs may live.
    ALLOWED_MODULES = (
        "sb3_rtrl.safe_load",
        "gymnasium.spaces.",
        "numpy.",
        "stable_baselines3.common.utils",
        "typing",
        "abc",
        "collections.abc",
        "enum",
        "inspect",
        "functools",
        "warnings",
    )
    installed = False
    current: Watcher | None = None

    def __init__(self) -> None:
        self.events: list[str] = []
        self.python: set[str] = set()
        self.c_calls: set[str] = set()

    @classmethod
    def _audit(cls, event: str, args: tuple) -> None:
        if cls.current is not None and event.startswith(cls.AUDITED):
            cls.current.events.append(f"{event} {args!r:.120}")

    def _profile(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            self.python.add(str(frame.f_globals.get("__name__")))
        elif event == "c_call":
            self.c_calls.add(f"{getattr(arg, '__module__', None)}.{getattr(arg, '__qualname__', arg)}")

    def __enter__(self) -> Watcher:
        if not Watcher.installed:
            sys.addaudithook(Watcher._audit)
            Watcher.installed = True
        Watcher.current = self
        gc.disable()  # garbage-collection callbacks (hypothesis has some) would run their code in between
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc: Any) -> None:
        sys.setprofile(None)
        gc.enable()
        Watcher.current = None

    def problems(self) -> list[str]:
        outside = [
            m for m in self.python - {__name__} if not (m in self.ALLOWED_MODULES or m.startswith(self.ALLOWED_MODULES))
        ]
        forbidden = [c for c in self.c_calls if c.startswith(self.FORBIDDEN_C)]
        return [*self.events, *(f"python code of {m}" for m in outside), *(f"called {c}" for c in forbidden)]


def classes_in(value: Any) -> list[type]:
    """Every class a rebuilt value holds, looking through containers and schedules."""
    if isinstance(value, type):
        return [value]
    if isinstance(value, dict):
        return [c for v in value.values() for c in classes_in(v)]
    if isinstance(value, (list, tuple)):
        return [c for v in value for c in classes_in(v)]
    if isinstance(value, FloatSchedule):
        return classes_in(value.value_schedule)
    allowed = (type(None), bool, int, float, str, spaces.Space, LinearSchedule, ConstantSchedule)
    assert isinstance(value, allowed), f"unexpected object {value!r} in a rebuilt value"
    return []


def description_of(model_fn: Callable[[], RTRLA2C]) -> dict[str, Any]:
    buffer = io.BytesIO()
    model_fn().save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        return json.loads(archive.read(DESCRIPTION_FILE))


_DESCRIPTIONS: list[dict[str, Any]] = []


def real_descriptions() -> list[dict[str, Any]]:
    """Descriptions of saved models of several kinds (made once: hypothesis reruns the test many times)."""
    if not _DESCRIPTIONS:
        dict_env = make_vec_env("sb3_rtrl/CartPoleNoVel-v1", n_envs=1)
        _DESCRIPTIONS.extend(
            [
                description_of(lambda: small_model(policy_kwargs=dict(hidden_size=8))),
                description_of(
                    lambda: small_model(
                        learning_rate=LinearSchedule(1e-3, 0.0, 1.0),
                        use_rms_prop=False,
                        policy_kwargs=dict(
                            hidden_size=8,
                            net_arch=dict(pi=[8], vf=[4]),
                            activation_fn=th.nn.ReLU,
                            optimizer_kwargs=dict(betas=(0.9, 0.99)),
                            forget_bias=1.0,
                        ),
                    )
                ),
                description_of(lambda: RTRLA2C("MlpLstmPolicy", dict_env, policy_kwargs=dict(hidden_size=4))),
                {
                    "observation_space": {
                        "kind": "space",
                        "space": {
                            "type": "Dict",
                            "spaces": {
                                "a": {"type": "MultiDiscrete", "nvec": [2, 3], "dtype": "int64"},
                                "b": {"type": "MultiBinary", "n": [2, 2]},
                            },
                        },
                    }
                },
            ]
        )
    return _DESCRIPTIONS


def node_paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            paths += node_paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            paths += node_paths(value, (*prefix, i))
    return paths


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats() | st.text(max_size=12),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
    max_leaves=8,
)
KINDS = ["list", "tuple", "dict", "class", "space", "float_schedule", "linear_schedule", "constant_schedule", "module"]
SPACE_FIELDS = ["low", "high", "shape", "dtype", "n", "start", "nvec", "spaces", "type"]
evil_nodes = st.one_of(
    st.sampled_from(EVIL_PATHS).map(lambda p: {"kind": "class", "path": p}),
    st.builds(lambda: sorted(safe_classes())).flatmap(st.sampled_from).map(lambda p: {"kind": "class", "path": p}),
    st.builds(lambda k, v: {"kind": k, "items": v}, st.sampled_from(KINDS), json_values),
    st.builds(
        lambda t, d: {"kind": "space", "space": {"type": t, **d}},
        st.sampled_from(["Box", "Discrete", "MultiDiscrete", "MultiBinary", "Dict", "Text", "Tuple", "Graph"]),
        st.dictionaries(st.sampled_from(SPACE_FIELDS), json_values),
    ),
    json_values,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_descriptions_import_and_call_nothing_outside_the_allowlist(data):
    safe_classes()  # the allowlist's own imports happen once, before watching
    for cls in safe_classes().values():
        constructor_types(cls)  # the policies' annotations are resolved once, from their own source
    original = data.draw(st.sampled_from(real_descriptions()))
    mutated = copy.deepcopy(original)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(node_paths(mutated)))
        if not path:
            mutated = data.draw(evil_nodes)
            continue
        parent = mutated
        for step in path[:-1]:
            parent = parent[step]
        operation = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if operation == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif operation == "add" and isinstance(parent, dict):
            parent[data.draw(st.text(max_size=20))] = data.draw(evil_nodes)
        else:
            parent[path[-1]] = data.draw(evil_nodes)
    keys = list(original) + ["policy_kwargs", "unknown_entry"]
    mutated = json.loads(json.dumps(mutated))  # as read from a file: plain JSON types only
    with Watcher() as watcher:
        try:
            rebuilt, refused = rebuild_entries(mutated, keys)
        except UntrustedContentError:
            rebuilt, refused = {}, ["everything"]
    assert watcher.problems() == []
    assert any(r.startswith("unknown_entry") for r in refused) or refused == ["everything"]
    allowed = set(safe_classes().values())
    for cls in classes_in(rebuilt):
        assert cls in allowed, cls


def test_watcher_sees_what_the_property_test_forbids(tmp_path):
    """The property test could fail: the watcher notices an import, a pickle, a shell and foreign code."""
    import importlib
    import pickle

    with Watcher() as watcher:
        importlib.import_module("sb3_rtrl.safe_load")
        pickle.loads(pickle.dumps(np.zeros(1)))
        json.dumps({})
        (tmp_path / "x").mkdir()
    problems = "\n".join(watcher.problems())
    assert "python code of importlib" in problems and "_pickle." in problems
    assert "python code of json" in problems and "os.mkdir" in problems
    with pytest.raises(AssertionError, match="unexpected object"):
        classes_in({"a": [object()]})
