"""Sharing RTRLA2C and RTRLPPO models on the Hugging Face Hub (extra ``hub``), in SB3's layout, loaded safely."""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import tempfile
import zipfile
from typing import Any

import numpy as np
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv

from sb3_rtrl.safe_load import load_model

logger = logging.getLogger("sb3_rtrl")
TAGS = ["sb3-rtrl", "rtrl", "recurrent", "reinforcement-learning", "stable-baselines3", "deep-reinforcement-learning"]
__all__ = ["load_from_hub", "load_model", "package_to_hub", "push_to_hub"]


def _hub():
    try:
        import huggingface_hub
    except ImportError as err:
        raise ImportError("sharing on the Hub needs huggingface_hub: pip install 'sb3-rtrl[hub]'") from err
    return huggingface_hub


def _model_card(repo_id: str, env_id: str, model_name: str, results: dict[str, Any], model: Any, video: bool):
    hub = _hub()
    data = hub.ModelCardData(
        library_name="sb3-rtrl",
        tags=[*TAGS, env_id],
        model_name=model_name,
        eval_results=[
            hub.EvalResult(
                task_type="reinforcement-learning",
                task_name="reinforcement-learning",
                dataset_type=env_id,
                dataset_name=env_id,
                metric_type="mean_reward",
                metric_value=f"{results['mean_reward']:.2f} +/- {results['std_reward']:.2f}",
            )
        ],
    )
    repo_name = repo_id.split("/")[-1]
    content = f"""---
{data.to_yaml()}
---

# {type(model).__name__} on {env_id}

An actor-critic ({type(model).__name__}) whose recurrent layer (the element-wise cell `{model.policy.cell_name}`,
hidden size {model.policy.hidden_size}) was
trained with exact, untruncated real-time recurrent learning (`gradient="{model.gradient}"`,
`n_steps={model.n_steps}`) using [sb3-rtrl](https://pypi.org/project/sb3-rtrl/).

Mean reward over {results["n_eval_episodes"]} greedy episodes: {results["mean_reward"]:.2f} +/- {results["std_reward"]:.2f}.
{"A replay video is in `replay.mp4`." if video else "No replay video: the evaluation environment does not render."}

## Usage

```python
from sb3_rtrl.hub import load_from_hub

model = load_from_hub("{repo_id}", "{model_name}.zip")  # loads without unpickling anything
obs = env.reset()
state, episode_start = None, [True]
action, state = model.predict(obs, state=state, episode_start=episode_start, deterministic=True)
```

Files: `{model_name}.zip` (the model), `{model_name}/` (its unzipped contents), `config.json`, `results.json`.
The repository is `{repo_name}`.
"""
    return hub.ModelCard(content)


def _record_video(model: Any, eval_env: VecEnv, folder: str, video_length: int) -> bool:
    """A replay video if the environment can render and a video writer is installed; False otherwise."""
    render_mode = getattr(eval_env, "render_mode", None)
    if render_mode != "rgb_array":
        logger.info("sb3_rtrl: no replay video (the evaluation environment's render_mode is %r)", render_mode)
        return False
    try:
        import moviepy  # noqa: F401  (needed by VecVideoRecorder)
    except ImportError:
        logger.info("sb3_rtrl: no replay video (moviepy is not installed)")
        return False
    from stable_baselines3.common.vec_env import VecVideoRecorder

    with tempfile.TemporaryDirectory() as tmp:
        recorder = VecVideoRecorder(
            eval_env, tmp, record_video_trigger=lambda step: step == 0, video_length=video_length, name_prefix="replay"
        )
        obs = recorder.reset()
        state, starts = None, np.ones(recorder.num_envs, dtype=bool)
        for _ in range(video_length + 1):
            action, state = model.predict(obs, state=state, episode_start=starts, deterministic=True)
            obs, _, starts, _ = recorder.step(action)
        recorder.close()
        videos = [f for f in os.listdir(tmp) if f.endswith(".mp4")]
        if not videos:
            return False
        shutil.move(os.path.join(tmp, videos[0]), os.path.join(folder, "replay.mp4"))
    return True


def package(
    model: Any,
    folder: str,
    repo_id: str,
    env_id: str,
    eval_env: VecEnv,
    model_name: str | None = None,
    n_eval_episodes: int = 10,
    video_length: int = 1000,
) -> str:
    """
    Write SB3's Hub layout for ``model`` into ``folder`` (no network): model zip, unzipped folder,
    config.json, results.json from a greedy evaluation with recurrent states, a model card, and a
    replay video when the environment can render.

    :return: the folder
    """
    model_name = model_name or f"{algorithm_name(model)}-{env_id.replace('/', '-')}"
    os.makedirs(folder, exist_ok=True)
    zip_path = os.path.join(folder, f"{model_name}.zip")
    model.save(zip_path)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(os.path.join(folder, model_name))
        data = json.loads(archive.read("data"))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(data, f, indent=2)
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=n_eval_episodes, deterministic=True)
    assert isinstance(mean, float) and isinstance(std, float), "evaluate_policy's mean and std"
    results = {
        "env_id": env_id,
        "mean_reward": float(mean),
        "std_reward": float(std),
        "n_eval_episodes": n_eval_episodes,
        "eval_datetime": datetime.datetime.now().isoformat(),
    }
    with open(os.path.join(folder, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    video = _record_video(model, eval_env, folder, video_length)
    _model_card(repo_id, env_id, model_name, results, model, video).save(os.path.join(folder, "README.md"))
    return folder


def package_to_hub(
    model: Any,
    repo_id: str,
    env_id: str,
    eval_env: VecEnv,
    model_name: str | None = None,
    n_eval_episodes: int = 10,
    video_length: int = 1000,
    commit_message: str = "Upload model with sb3-rtrl",
    token: str | None = None,
    private: bool = False,
    local_dir: str | None = None,
) -> str:
    """
    Evaluate, package (see :func:`package`) and upload ``model`` to the Hub repository ``repo_id``.

    :param model: an RTRLA2C or RTRLPPO model
    :param repo_id: ``"user/name"``
    :param env_id: the environment's id (for the card and results)
    :param eval_env: a VecEnv to evaluate on (and to record a replay from, if it renders)
    :param model_name: file name of the model (default ``<algorithm>-<env_id>``, e.g. ``rtrl_ppo-CartPole-v1``)
    :param n_eval_episodes: evaluation episodes
    :param video_length: replay length in steps
    :param commit_message: commit message
    :param token: Hub token (default: the logged-in one)
    :param private: create the repository private
    :param local_dir: keep the packaged folder there (default: a temporary folder)
    :return: the URL of the commit
    """
    hub = _hub()
    api = hub.HfApi(token=token)
    with tempfile.TemporaryDirectory() as tmp:
        folder = package(model, local_dir or tmp, repo_id, env_id, eval_env, model_name, n_eval_episodes, video_length)
        api.create_repo(repo_id=repo_id, private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message)
    return str(info)


def push_to_hub(
    repo_id: str, filename: str, commit_message: str = "Upload model with sb3-rtrl", token: str | None = None
) -> str:
    """
    Upload one saved model zip to the Hub repository ``repo_id`` (created if missing).

    :return: the URL of the commit
    """
    if not os.path.isfile(filename):
        raise ValueError(f"no file {filename} to push")
    api = _hub().HfApi(token=token)
    api.create_repo(repo_id=repo_id, exist_ok=True)
    info = api.upload_file(
        path_or_fileobj=filename, path_in_repo=os.path.basename(filename), repo_id=repo_id, commit_message=commit_message
    )
    return str(info)


def load_from_hub(
    repo_id: str, filename: str, trust_remote_code: bool | None = None, algorithm: type | None = None, **load_kwargs: Any
):
    """
    Download a model from the Hub and load it with the algorithm that saved it, running no code from the file
    unless trusted.

    :param repo_id: ``"user/name"``
    :param filename: the model zip in the repository
    :param trust_remote_code: allow unpickling; None reads the ``TRUST_REMOTE_CODE`` environment variable
    :param algorithm: the algorithm class to load with; None: the one that saved the file
    :param load_kwargs: more arguments of the algorithm's ``load`` (``env``, ``device``, ...)
    """
    path = _hub().hf_hub_download(repo_id=repo_id, filename=filename)
    return load_model(path, trust_remote_code=trust_remote_code, algorithm=algorithm, **load_kwargs)


def algorithm_name(model: Any) -> str:
    """The rl-zoo3 name of ``model``'s algorithm: ``rtrl_a2c``, ``rtrl_ppo`` (the class name, snake case)."""
    name = type(model).__name__
    return f"rtrl_{name[4:].lower()}" if name.startswith("RTRL") else name.lower()
