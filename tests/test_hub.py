"""Hub sharing with the network boundary replaced by a local folder, and loading without running code."""

import base64
import json
import os
import shutil
import zipfile
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.torch_layers import FlattenExtractor

from sb3_rtrl import RTRLA2C
from sb3_rtrl.envs import DELAYED_RECALL_ID
from sb3_rtrl.safe_load import UntrustedContentError, load_model

huggingface_hub = pytest.importorskip("huggingface_hub")


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """Replace only the network calls: uploads land in, and downloads come from, a local folder."""
    root = tmp_path / "hub"

    def create_repo(self, repo_id, private=False, exist_ok=False, **kwargs):
        (root / repo_id).mkdir(parents=True, exist_ok=True)
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, repo_id, folder_path, commit_message=None, **kwargs):
        shutil.copytree(folder_path, root / repo_id, dirs_exist_ok=True)
        return f"https://huggingface.co/{repo_id}/commit/local"

    def upload_file(self, path_or_fileobj, path_in_repo, repo_id, commit_message=None, **kwargs):
        shutil.copy(path_or_fileobj, root / repo_id / path_in_repo)
        return f"https://huggingface.co/{repo_id}/commit/local"

    def hf_hub_download(repo_id, filename, **kwargs):
        path = root / repo_id / filename
        if not path.exists():
            raise FileNotFoundError(path)
        return str(path)

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_file", upload_file)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.delenv("TRUST_REMOTE_CODE", raising=False)
    return root


def trained_model(learning_rate=7e-4, **policy_kwargs):
    env = make_vec_env(DELAYED_RECALL_ID, n_envs=2, seed=0, env_kwargs=dict(delay=4))
    model = RTRLA2C(
        "MlpLstmPolicy",
        env,
        n_steps=4,
        seed=0,
        learning_rate=learning_rate,
        policy_kwargs=dict(hidden_size=8, **policy_kwargs),
    )
    return model.learn(64)


def greedy_actions(model):
    env = make_vec_env(DELAYED_RECALL_ID, n_envs=2, seed=5, env_kwargs=dict(delay=4))
    obs, state, starts, out = env.reset(), None, np.ones(2, bool), []
    for _ in range(12):
        action, state = model.predict(obs, state=state, episode_start=starts, deterministic=True)
        obs, _, starts, _ = env.step(action)
        out.append(action)
    return np.array(out)


@pytest.mark.parametrize("cell", ["elstm", "rtu"])
def test_package_to_hub_layout_card_and_round_trip(fake_hub, cell):
    from sb3_rtrl.hub import load_from_hub, package_to_hub

    model = trained_model(cell=cell)
    eval_env = make_vec_env(DELAYED_RECALL_ID, n_envs=1, seed=1, env_kwargs=dict(delay=4))
    url = package_to_hub(model, "user/rtrl-recall", DELAYED_RECALL_ID, eval_env, model_name="rtrl-recall", n_eval_episodes=4)
    assert "user/rtrl-recall" in url
    repo = fake_hub / "user" / "rtrl-recall"
    assert (repo / "rtrl-recall.zip").is_file()
    assert (repo / "rtrl-recall" / "policy.pth").is_file() and (repo / "rtrl-recall" / "data").is_file()
    assert json.loads((repo / "config.json").read_text())["n_steps"] == 4
    results = json.loads((repo / "results.json").read_text())
    assert results["env_id"] == DELAYED_RECALL_ID and results["n_eval_episodes"] == 4
    card = huggingface_hub.ModelCard.load(repo / "README.md")
    assert card.data.library_name == "sb3-rtrl"
    assert {"sb3-rtrl", "rtrl", "recurrent"} <= set(card.data.tags)
    assert "load_from_hub" in card.text
    # A replay video where a video writer (moviepy) imports; skipped, not a crash, where none does.
    try:
        import moviepy  # noqa: F401

        has_writer = True
    except ImportError:
        has_writer = False
    assert (repo / "replay.mp4").exists() == has_writer
    loaded = load_from_hub("user/rtrl-recall", "rtrl-recall.zip")
    assert loaded.policy.cell_name == cell
    np.testing.assert_array_equal(greedy_actions(loaded), greedy_actions(model))


def test_push_to_hub_bare_zip(fake_hub, tmp_path):
    from sb3_rtrl.hub import load_from_hub, push_to_hub

    model = trained_model()
    model.save(tmp_path / "m.zip")
    push_to_hub("user/bare", str(tmp_path / "m.zip"))
    assert isinstance(load_from_hub("user/bare", "m.zip"), RTRLA2C)
    with pytest.raises(ValueError, match="no file"):
        push_to_hub("user/bare", str(tmp_path / "missing.zip"))


class _Marker:
    """Unpickling this creates a directory: a stand-in for code an attacker would run."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def plant(zip_path: Path, key: str, marker: Path, drop_description: bool = False) -> None:
    """Replace the pickled entry ``key`` of a saved model with a pickle that runs code."""
    with zipfile.ZipFile(zip_path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(files["data"])
    data[key] = {
        ":type:": "<class 'object'>",
        ":serialized:": base64.b64encode(cloudpickle.dumps(_Marker(str(marker)))).decode(),
    }
    files["data"] = json.dumps(data).encode()
    if drop_description:
        desc = json.loads(files["sb3_rtrl.json"])
        desc.pop(key, None)
        files["sb3_rtrl.json"] = json.dumps(desc).encode()
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)


def test_planted_pickle_does_not_run_without_trust(tmp_path, monkeypatch):
    monkeypatch.delenv("TRUST_REMOTE_CODE", raising=False)
    model = trained_model()
    path = tmp_path / "m.zip"
    model.save(path)
    marker = tmp_path / "pwned"
    # 1. in an entry sb3-rtrl describes: the description is used, the pickle never read
    plant(path, "observation_space", marker)
    loaded = load_model(str(path))
    assert not marker.exists()
    assert loaded.observation_space == model.observation_space
    np.testing.assert_array_equal(greedy_actions(loaded), greedy_actions(model))
    # 2. in an entry it cannot rebuild: refused, with the way to trust, and still nothing ran
    plant(path, "policy_kwargs", marker, drop_description=True)
    with pytest.raises(UntrustedContentError, match="policy_kwargs .*trust_remote_code=True .*TRUST_REMOTE_CODE=1"):
        load_model(str(path))
    assert not marker.exists()
    # 3. trusted, the pickle runs: the test above could have seen it
    with pytest.raises(Exception):  # noqa: B017  (the planted object is no valid policy_kwargs)
        load_model(str(path), trust_remote_code=True)
    assert marker.exists()
    marker.rmdir()
    monkeypatch.setenv("TRUST_REMOTE_CODE", "1")
    with pytest.raises(Exception):  # noqa: B017
        load_model(str(path))
    assert marker.exists()


def test_planted_pickle_in_weights_is_refused(tmp_path):
    model = trained_model()
    path = tmp_path / "m.zip"
    model.save(path)
    marker = tmp_path / "pwned"
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    import io

    buffer = io.BytesIO()
    th.save({"x": _Marker(str(marker))}, buffer)
    files["policy.pth"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    with pytest.raises(Exception, match="(?i)weights_only|unsupported"):
        load_model(str(path))
    assert not marker.exists()


class MyExtractor(FlattenExtractor):
    """A user's own class: its module is not among the trusted packages."""


def test_users_own_class_needs_trust(tmp_path, monkeypatch):
    monkeypatch.delenv("TRUST_REMOTE_CODE", raising=False)
    model = trained_model(features_extractor_class=MyExtractor)
    model.save(tmp_path / "m.zip")
    with pytest.raises(UntrustedContentError, match="MyExtractor' is not on the safe-load allowlist"):
        load_model(str(tmp_path / "m.zip"))
    loaded = load_model(str(tmp_path / "m.zip"), trust_remote_code=True)
    assert loaded.policy.features_extractor_class is MyExtractor


def test_schedules_and_image_policy_kwargs_round_trip(tmp_path):
    from sb3_rtrl.cli.experiments import PAPER_HYPERPARAMETERS

    model = trained_model(PAPER_HYPERPARAMETERS["learning_rate"], net_arch=dict(pi=[8], vf=[8]), activation_fn=th.nn.ReLU)
    model.save(tmp_path / "m.zip")
    loaded = load_model(str(tmp_path / "m.zip"))
    assert loaded.lr_schedule(0.5) == pytest.approx(3e-4)
    assert loaded.policy.activation_fn is th.nn.ReLU and loaded.policy.net_arch == dict(pi=[8], vf=[8])
