"""The paper's experiments as presets: Atari, ProcGen, DeepMind Lab and the built-in memory task."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from typing import Any

from stable_baselines3.common.callbacks import CheckpointCallback
from stable_baselines3.common.utils import LinearSchedule

from sb3_rtrl.a2c import RTRLA2C
from sb3_rtrl.common.recurrent.presets import LONG_MEMORY_NETWORK
from sb3_rtrl.envs import make_env
from sb3_rtrl.envs.atari import atari_env_id
from sb3_rtrl.torch_layers import ImpalaCNN


@dataclass
class Preset:
    """Defaults of one domain, as Irie et al. (ICLR 2024) ran it: network size, unroll length M, environments."""

    env: str  # game, level or env id
    n_steps: int  # M
    hidden_size: int  # N
    n_envs: int = 32  # a batch of 32 segments
    image: bool = True
    env_kwargs: dict[str, Any] = field(default_factory=dict)


PRESETS = {
    "atari": Preset(env="Breakout", n_steps=50, hidden_size=256),
    "procgen": Preset(env="chaser", n_steps=50, hidden_size=256),
    "dmlab": Preset(env="rooms_watermaze", n_steps=100, hidden_size=512),
    "memory": Preset(env="sb3_rtrl/DelayedRecall-v0", n_steps=4, hidden_size=32, n_envs=16, image=False),
}

# R2AC's optimisation in Irie et al.: RMSprop(lr 6e-4, alpha 0.99, eps 0.01) decayed linearly to 0,
# gradient norm clipped at 40, entropy 0.01, value loss weight 0.5 * 0.5, discount 0.99, n-step returns.
PAPER_HYPERPARAMETERS: dict[str, Any] = dict(
    learning_rate=LinearSchedule(6e-4, 0.0, 1.0),
    rms_prop_eps=0.01,
    max_grad_norm=40.0,
    ent_coef=0.01,
    vf_coef=0.25,
    gamma=0.99,
    gae_lambda=1.0,
)


def make_domain_env(domain: str, env: str, n_envs: int, seed: int, monitor_dir: str | None, env_kwargs: dict[str, Any]):
    """The VecEnv of a domain's task (:func:`sb3_rtrl.envs.make_env`)."""
    prefixes = {"atari": "", "procgen": "procgen:", "dmlab": "dmlab:", "memory": ""}
    if domain not in prefixes:
        raise ValueError(f"unknown domain {domain!r}; one of {sorted(PRESETS)}")
    env_id = atari_env_id(env) if domain == "atari" else env
    return make_env(prefixes[domain] + env_id, n_envs=n_envs, seed=seed, monitor_dir=monitor_dir, env_kwargs=env_kwargs)


def make_model(
    domain: str,
    env,
    gradient: str = "rtrl",
    n_steps: int | None = None,
    hidden_size: int | None = None,
    seed: int = 0,
    tensorboard_log: str | None = None,
    features_extractor_weights: str | None = None,
    freeze_features_extractor: bool = False,
    device: str = "auto",
    verbose: int = 1,
) -> RTRLA2C:
    """RTRLA2C with the paper's network and hyperparameters for ``domain``."""
    preset = PRESETS[domain]
    policy_kwargs: dict[str, Any] = dict(
        hidden_size=hidden_size or preset.hidden_size,
        **LONG_MEMORY_NETWORK,
        features_extractor_weights=features_extractor_weights,
        freeze_features_extractor=freeze_features_extractor,
    )
    if preset.image:
        # IMPALA stem -> linear 256 + ReLU -> [features; previous clipped reward] -> eLSTM -> heads.
        policy_kwargs.update(
            features_extractor_class=ImpalaCNN, features_extractor_kwargs=dict(features_dim=256), prev_reward=True
        )
    return RTRLA2C(
        "CnnLstmPolicy" if preset.image else "MlpLstmPolicy",
        env,
        n_steps=n_steps or preset.n_steps,
        gradient=gradient,
        policy_kwargs=policy_kwargs,
        seed=seed,
        tensorboard_log=tensorboard_log,
        device=device,
        verbose=verbose,
        **PAPER_HYPERPARAMETERS,
    )


def run_experiment(
    domain: str,
    steps: int,
    gradient: str = "rtrl",
    env: str | None = None,
    n_steps: int | None = None,
    n_envs: int | None = None,
    hidden_size: int | None = None,
    seed: int = 0,
    out: str = "runs/experiment",
    tensorboard: bool = True,
    checkpoint_every: int = 1_000_000,
    features_extractor_weights: str | None = None,
    freeze_features_extractor: bool = False,
    env_kwargs: dict[str, Any] | None = None,
    device: str = "auto",
    progress_bar: bool = False,
    verbose: int = 1,
) -> RTRLA2C:
    """
    Train one domain with the paper's settings; Monitor logs, tensorboard and checkpoints under ``out``.

    :return: the trained model (also saved as ``out/final.zip``)
    """
    if domain not in PRESETS:
        raise ValueError(f"unknown domain {domain!r}; one of {sorted(PRESETS)}")
    tb_log = None
    if tensorboard:
        if importlib.util.find_spec("tensorboard") is None:
            raise ImportError("tensorboard logging needs: pip install 'sb3-rtrl[tensorboard]' (or pass tensorboard=False)")
        tb_log = os.path.join(out, "tensorboard")
    preset = PRESETS[domain]
    n_envs = n_envs or preset.n_envs
    vec_env = make_domain_env(
        domain, env or preset.env, n_envs, seed, os.path.join(out, "monitor"), {**preset.env_kwargs, **(env_kwargs or {})}
    )
    model = make_model(
        domain,
        vec_env,
        gradient,
        n_steps,
        hidden_size,
        seed,
        tb_log,
        features_extractor_weights,
        freeze_features_extractor,
        device,
        verbose,
    )
    checkpoints = CheckpointCallback(
        save_freq=max(checkpoint_every // n_envs, 1),
        save_path=os.path.join(out, "checkpoints"),
        name_prefix=f"{domain}_{gradient}",
    )
    model.learn(steps, callback=checkpoints, tb_log_name=f"{domain}_{gradient}", progress_bar=progress_bar)
    model.save(os.path.join(out, "final.zip"))
    vec_env.close()
    return model


def run_dmlab_protocol(pretrain_steps: int, steps: int, out: str = "runs/dmlab", **kwargs: Any) -> RTRLA2C:
    """
    The paper's DMLab memory-task protocol: pre-train with TBPTT, save, then train with RTRL from the
    frozen pre-trained features extractor.

    :param pretrain_steps: environment steps of the TBPTT pre-training
    :param steps: environment steps of the RTRL run
    :param out: output folder (``pretrain/`` and ``rtrl/`` inside)
    :param kwargs: more :func:`run_experiment` arguments for both phases
    """
    pretrain_out = os.path.join(out, "pretrain")
    run_experiment("dmlab", pretrain_steps, gradient="tbptt", out=pretrain_out, **kwargs)
    return run_experiment(
        "dmlab",
        steps,
        gradient="rtrl",
        out=os.path.join(out, "rtrl"),
        features_extractor_weights=os.path.join(pretrain_out, "final.zip"),
        freeze_features_extractor=True,
        **kwargs,
    )
