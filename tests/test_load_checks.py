"""What a load reads from a file: only the entries the project writes, bounded, with errors that name the file."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pytest
from stable_baselines3.common.env_util import make_vec_env

from sb3_rtrl import RTRLA2C, RTRLPPO
from sb3_rtrl.envs import DELAYED_RECALL_ID
from sb3_rtrl.policies import DEFAULT_CELL
from sb3_rtrl.safe_load import DESCRIPTION_FILE, LoadLimits, ModelFileError, UntrustedContentError, load_model


def env():
    return make_vec_env(DELAYED_RECALL_ID, n_envs=1, seed=0, env_kwargs=dict(delay=4))


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("saved")
    paths = {}
    for cls, extra in ((RTRLA2C, {}), (RTRLPPO, dict(batch_size=4))):
        path = folder / f"{cls.__name__}.zip"
        cls("MlpLstmPolicy", env(), n_steps=4, seed=0, policy_kwargs=dict(hidden_size=8), **extra).save(path)
        paths[cls.__name__] = path
    return paths


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write(target: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return target


def with_data(source: Path, target: Path, **changes) -> Path:
    files = members(source)
    data = json.loads(files["data"])
    data.update(changes)
    files["data"] = json.dumps(data).encode()
    return write(target, files)


# ------------------------------------------------------------------ entries of data


def test_an_env_entry_naming_a_module_imports_nothing(saved, tmp_path):
    """The reported exploit: SB3 would pass data["env"] to gym.make, which imports the module before the colon."""
    sys.modules.pop("this", None)
    path = with_data(saved["RTRLA2C"], tmp_path / "evil.zip", env="this:X-v0")
    with pytest.raises(UntrustedContentError, match=r"env \(sb3-rtrl's save does not write this entry\)"):
        load_model(path)
    assert "this" not in sys.modules
    with pytest.raises(UntrustedContentError, match=r"env \("):
        load_model(path, env=env())


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("env", "CartPole-v1", r"env \(sb3-rtrl's save does not write"),
        ("env", "gymnasium.envs.classic_control:CartPoleEnv", r"env \("),
        ("_setup_model", 1, r"_setup_model \(sb3-rtrl's save does not write"),
        ("learn", "os:system", r"learn \("),
        ("policy_class", "sb3_rtrl.policies:RTRLActorCriticPolicy", r"policy_class \("),
        ("gamma", "0.99", r"gamma \(expected a number"),
        ("n_steps", 4.5, r"n_steps \(expected an integer"),
        ("use_sde", "no", r"use_sde \(expected a bool"),
        ("learning_rate", "os:system", r"learning_rate \(expected a number"),
        ("seed", {"entry_point": "os:system"}, r"seed \("),
        ("rollout_buffer_kwargs", {"x": {"kind": "class", "path": "subprocess:Popen"}}, r"rollout_buffer_kwargs"),
    ],
)
def test_only_the_entries_the_project_writes_are_accepted(saved, tmp_path, key, value, match):
    path = with_data(saved["RTRLA2C"], tmp_path / "bad.zip", **{key: value})
    with pytest.raises(UntrustedContentError, match=match):
        load_model(path)


def test_plain_policy_kwargs_are_checked_too(saved, tmp_path):
    """RTRLPPO's policy_kwargs are plain JSON in data: they are checked against the policy as a description is."""
    data = json.loads(members(saved["RTRLPPO"])["data"])
    assert ":serialized:" not in data["policy_kwargs"]
    for kwargs, match in [
        ({"hidden_size": 8, "activation_fn": "os:system"}, "activation_fn"),
        ({"hidden_size": 8, "no_such_keyword": 1}, "takes no such keyword"),
        ({"hidden_size": "8"}, "hidden_size"),
    ]:
        path = with_data(saved["RTRLPPO"], tmp_path / "bad.zip", policy_kwargs=kwargs)
        with pytest.raises(UntrustedContentError, match=match):
            load_model(path)


def test_features_extractor_weights_in_plain_policy_kwargs_open_nothing(saved, tmp_path):
    """No file outside the archive is opened during a load, whatever path the file names."""
    other = tmp_path / "other.zip"
    other.write_bytes(saved["RTRLA2C"].read_bytes())
    load_model(saved["RTRLPPO"])  # imports done before watching
    for target in ("/etc/passwd", str(other)):
        kwargs = {"hidden_size": 8, "cell": DEFAULT_CELL, "features_extractor_weights": target}
        path = with_data(saved["RTRLPPO"], tmp_path / "weights.zip", policy_kwargs=kwargs)
        opened: list[str] = []

        def hook(event, args, opened=opened):
            if event == "open" and isinstance(args[0], (str, bytes, Path)):
                opened.append(str(args[0] if not isinstance(args[0], bytes) else args[0].decode()))

        sys.addaudithook(hook)
        try:
            model = load_model(path)
        finally:
            hook.__defaults__ = ([],)  # audit hooks cannot be removed: stop recording
        assert model.policy_kwargs.get("features_extractor_weights") is None
        outside = [name for name in opened if Path(name).resolve() != path.resolve()]
        assert not outside, outside


def test_tensorboard_log_path_is_dropped(saved, tmp_path):
    path = with_data(saved["RTRLA2C"], tmp_path / "log.zip", tensorboard_log="/etc/evil")
    assert load_model(path).tensorboard_log is None


# ------------------------------------------------------------------ bounds


def test_large_members_are_refused_before_reading(saved, tmp_path):
    files = members(saved["RTRLA2C"])
    files[DESCRIPTION_FILE] = files[DESCRIPTION_FILE][:-1] + b', "pad": "' + b"x" * 50_000 + b'"}'
    path = write(tmp_path / "padded.zip", files)
    small = LoadLimits(member_bytes=40_000)
    with pytest.raises(ModelFileError, match=rf"padded.zip: member '{DESCRIPTION_FILE}' is \d+ bytes, over the limit"):
        load_model(path, limits=small)
    load_model(path)  # within the default limits


def test_huge_declared_spaces_are_refused(saved, tmp_path):
    files = members(saved["RTRLA2C"])
    description = json.loads(files[DESCRIPTION_FILE])
    description["observation_space"]["space"] = {
        "type": "Box",
        "low": 0.0,
        "high": 1.0,
        "shape": [4096, 4096],
        "dtype": "float32",
    }
    files[DESCRIPTION_FILE] = json.dumps(description).encode()
    path = write(tmp_path / "huge.zip", files)
    with pytest.raises(ModelFileError, match=r"observation_space: the space declares 16777216 elements, over the limit"):
        load_model(path)


def test_huge_rollout_buffers_are_refused(saved, tmp_path):
    path = with_data(saved["RTRLA2C"], tmp_path / "buffer.zip", n_steps=10**9)
    with pytest.raises(ModelFileError, match="n_steps \\* n_envs"):
        load_model(path)


# ------------------------------------------------------------------ malformed files are named


def malformed(saved: Path, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    files = members(saved)
    cases = {}
    raw = saved.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(raw[: len(raw) // 2])
    cases["truncated"] = (truncated, "not a zip archive or a damaged one|not a complete saved model")
    cases["no optimizer"] = (
        write(tmp_path / "no_optimizer.zip", {k: v for k, v in files.items() if k != "policy.optimizer.pth"}),
        r"member\(s\) \['policy.optimizer.pth'\] missing",
    )
    cases["no data"] = (
        write(tmp_path / "no_data.zip", {k: v for k, v in files.items() if k != "data"}),
        r"\['data'\] missing",
    )
    cases["not json"] = (
        write(tmp_path / "not_json.zip", {**files, DESCRIPTION_FILE: b"{not json"}),
        f"member '{DESCRIPTION_FILE}' is not valid JSON",
    )
    cases["deep"] = (
        write(tmp_path / "deep.zip", {**files, "data": b"[" * 200_000 + b"]" * 200_000}),
        "member 'data' is nested too deeply",
    )
    cases["digits"] = (
        write(tmp_path / "digits.zip", {**files, DESCRIPTION_FILE: b'{"x": ' + b"7" * 5001 + b"}"}),
        f"member '{DESCRIPTION_FILE}' is not valid JSON",
    )
    cases["data list"] = (write(tmp_path / "list.zip", {**files, "data": b"[1]"}), "member 'data' must hold an object")
    return cases


@pytest.mark.parametrize("load", ["load_model", "RTRLA2C.load"])
def test_malformed_files_are_named_with_their_member(saved, tmp_path, load):
    for name, (path, match) in malformed(saved["RTRLA2C"], tmp_path).items():
        with pytest.raises(ModelFileError, match=match) as info:
            load_model(path) if load == "load_model" else RTRLA2C.load(path)
        message = str(info.value)
        assert str(path) in message, name
        assert "trust_remote_code" not in message, name


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ModelFileError, match="nothing.zip"):
        load_model(tmp_path / "nothing.zip")


def test_save_to_an_unwritable_place_says_where(tmp_path):
    model = RTRLA2C("MlpLstmPolicy", env(), n_steps=4, policy_kwargs=dict(hidden_size=4))
    with pytest.raises(OSError, match="cannot save the model to /proc/x.zip"):
        model.save("/proc/x.zip")
    model.save(tmp_path / "sub" / "model")
    assert (tmp_path / "sub" / "model.zip").is_file()


# ------------------------------------------------------------------ the class that saved the file


def test_loading_with_the_wrong_class_names_the_saving_class(saved):
    with pytest.raises(ModelFileError, match="was saved by RTRLPPO: load it with RTRLPPO.load"):
        RTRLA2C.load(saved["RTRLPPO"])
    with pytest.raises(ModelFileError, match="was saved by RTRLA2C"):
        RTRLPPO.load(saved["RTRLA2C"])
    with pytest.raises(ModelFileError, match="was saved by RTRLPPO"):
        load_model(saved["RTRLPPO"], algorithm=RTRLA2C)
    assert type(load_model(saved["RTRLPPO"])) is RTRLPPO
    assert type(RTRLPPO.load(saved["RTRLPPO"])) is RTRLPPO

    class MyPPO(RTRLPPO):
        pass

    assert type(MyPPO.load(saved["RTRLPPO"])) is MyPPO
