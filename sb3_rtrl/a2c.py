"""RTRLA2C: synchronous actor-critic with an eLSTM trained by exact RTRL (the paper's R2AC)."""

from __future__ import annotations

import io
import math
import pathlib
import warnings
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.save_util import open_path
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import explained_variance, obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv
from torch.nn import functional as F

from sb3_rtrl.common.arguments import check_choice, check_int, check_number
from sb3_rtrl.common.finite import NonFiniteError, first_non_finite
from sb3_rtrl.policies import (
    CnnELSTMPolicy,
    MlpELSTMPolicy,
    MultiInputELSTMPolicy,
    RTRLActorCriticPolicy,
    check_observation_space,
)
from sb3_rtrl.rtrl import GRADIENTS, METHODS, RTRLState, initial_state
from sb3_rtrl.rtrl.backend import BACKENDS, Backend
from sb3_rtrl.safe_load import add_description

SelfRTRLA2C = TypeVar("SelfRTRLA2C", bound="RTRLA2C")

# RecurrentPPO keywords with no meaning for a single-pass actor-critic.
PPO_ONLY_KWARGS = ("n_epochs", "batch_size", "clip_range", "clip_range_vf", "target_kl")


class RTRLA2C(OnPolicyAlgorithm):
    """
    Advantage actor-critic whose recurrent cell gets exact, untruncated gradients by RTRL.

    One update per rollout of ``n_steps`` (the paper's M) from every environment: one autograd pass
    over the whole rollout from the carried cell state, whose backward also adds the gradient through
    the whole past of each episode (carried by the sensitivities). Acting costs only the cell's forward.

    Accepts RecurrentPPO's constructor keywords, so scripts written for it run unchanged; the PPO-only
    ones (``n_epochs``, ``batch_size``, ``clip_range``, ``clip_range_vf``, ``target_kl``) are ignored with
    a warning.

    :param policy: policy class or alias ("MlpLstmPolicy", "CnnLstmPolicy", "MultiInputLstmPolicy",
        "MlpELSTMPolicy", "CnnELSTMPolicy", "MultiInputELSTMPolicy")
    :param env: environment or its id
    :param learning_rate: learning rate, or a schedule of the remaining progress (1 to 0)
    :param n_steps: steps per environment between updates (M)
    :param gamma: discount factor
    :param gae_lambda: GAE lambda (1.0: n-step returns, as the paper's V-trace with synchronous actors)
    :param ent_coef: entropy coefficient
    :param vf_coef: value loss coefficient
    :param max_grad_norm: global gradient norm clip
    :param rms_prop_eps: RMSprop epsilon
    :param use_rms_prop: RMSprop (default, as SB3's A2C and the paper) rather than Adam
    :param use_sde: generalized state-dependent exploration
    :param sde_sample_freq: gSDE noise resampling frequency (-1: once per rollout)
    :param normalize_advantage: normalize the advantages of each rollout
    :param gradient: "rtrl" (exact, untruncated) or "tbptt" (truncated at each rollout start): the
        paper's comparison in one switch
    :param rtrl_method: "segment" (sensitivities advanced once per rollout) or "step" (per step, reference)
    :param rtrl_backend: "auto", "torch" or "cupy" (CUDA kernels)
    :param stats_window_size: episodes averaged in the rollout logs
    :param tensorboard_log: tensorboard log folder
    :param policy_kwargs: policy keyword arguments (see :class:`sb3_rtrl.policies.RTRLActorCriticPolicy`)
    :param verbose: 0 none, 1 info, 2 debug
    :param seed: random seed
    :param device: "cpu", "cuda" or "auto"
    :param n_epochs: RecurrentPPO keyword, ignored
    :param batch_size: RecurrentPPO keyword, ignored
    :param clip_range: RecurrentPPO keyword, ignored
    :param clip_range_vf: RecurrentPPO keyword, ignored
    :param target_kl: RecurrentPPO keyword, ignored
    :param _init_setup_model: build the networks at construction
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpLstmPolicy": MlpELSTMPolicy,
        "CnnLstmPolicy": CnnELSTMPolicy,
        "MultiInputLstmPolicy": MultiInputELSTMPolicy,
        "MlpELSTMPolicy": MlpELSTMPolicy,
        "CnnELSTMPolicy": CnnELSTMPolicy,
        "MultiInputELSTMPolicy": MultiInputELSTMPolicy,
    }
    policy: RTRLActorCriticPolicy
    rollout_buffer: RolloutBuffer

    def __init__(
        self,
        policy: str | type[RTRLActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 7e-4,
        n_steps: int = 5,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        rms_prop_eps: float = 1e-5,
        use_rms_prop: bool = True,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        normalize_advantage: bool = False,
        gradient: str = "rtrl",
        rtrl_method: str = "segment",
        rtrl_backend: Backend = "auto",
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        n_epochs: int | None = None,
        batch_size: int | None = None,
        clip_range: Any = None,
        clip_range_vf: Any = None,
        target_kl: float | None = None,
        _init_setup_model: bool = True,
    ):
        given = dict(n_epochs=n_epochs, batch_size=batch_size, clip_range=clip_range, clip_range_vf=clip_range_vf,
                     target_kl=target_kl)  # fmt: skip
        ignored = [name for name in PPO_ONLY_KWARGS if given[name] is not None]
        if ignored:
            warnings.warn(f"RTRLA2C ignores the PPO-only argument(s) {', '.join(ignored)}: it makes one update per "
                          "rollout", stacklevel=2)  # fmt: skip
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            n_steps=n_steps,
            gamma=gamma,
            gae_lambda=gae_lambda,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            device=device,
            seed=seed,
            _init_setup_model=False,
            supported_action_spaces=(spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary),
        )
        self.normalize_advantage = normalize_advantage
        self.rms_prop_eps = rms_prop_eps
        self.gradient = gradient
        self.rtrl_method = rtrl_method
        self.rtrl_backend = rtrl_backend
        # As SB3's A2C: RMSprop with its TF-like settings unless the user chose an optimizer.
        if use_rms_prop and "optimizer_class" not in self.policy_kwargs:
            self.policy_kwargs["optimizer_class"] = th.optim.RMSprop
            self.policy_kwargs["optimizer_kwargs"] = dict(alpha=0.99, eps=rms_prop_eps, weight_decay=0)
        self._last_cell_state: th.Tensor | None = None
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ recurrent state

    def _check_arguments(self) -> None:
        """Raise ValueError naming the first argument out of range (at construction and at load alike)."""
        check_choice("gradient", self.gradient, GRADIENTS)
        check_choice("rtrl_method", self.rtrl_method, METHODS)
        check_choice("rtrl_backend", self.rtrl_backend, BACKENDS)
        self.n_steps = check_int("n_steps", self.n_steps, 1)
        check_number("gamma", self.gamma, 0.0, 1.0)
        check_number("gae_lambda", self.gae_lambda, 0.0, 1.0)
        # A negative clip norm would flip the gradient; inf means no clipping.
        check_number("max_grad_norm", self.max_grad_norm, 0.0, low_open=True, allow_inf=True)
        check_number("ent_coef", self.ent_coef)
        check_number("vf_coef", self.vf_coef, 0.0)
        check_number("rms_prop_eps", self.rms_prop_eps, 0.0, low_open=True)
        if not callable(self.learning_rate):  # 0 is allowed: rl-zoo3's enjoy loads models with it
            check_number("learning_rate", self.learning_rate, 0.0)
        if self.normalize_advantage and self.n_steps * self.n_envs < 2:
            raise ValueError(
                f"normalize_advantage=True needs more than one advantage per update, but n_steps * n_envs = "
                f"{self.n_steps} * {self.n_envs} = 1 (their standard deviation would be NaN)"
            )
        if self.rtrl_backend == "cupy":
            if self.device.type != "cuda":
                raise ValueError(f"rtrl_backend='cupy' runs CUDA kernels, but this model is on {self.device}: "
                                 "use device='cuda', or rtrl_backend='auto' or 'torch'")  # fmt: skip
            from sb3_rtrl import kernels

            reason = kernels.unavailable_reason()
            if reason is not None:
                raise ValueError(f"rtrl_backend='cupy' is not usable here: {reason}")

    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        # Before SB3's wrappers, which fail on spaces they cannot store (Text, Graph, Sequence) with
        # errors that do not name the space.
        check_observation_space(env.observation_space)
        return OnPolicyAlgorithm._wrap_env(env, verbose, monitor_wrapper)

    def _setup_model(self) -> None:
        self._check_arguments()
        check_observation_space(self.observation_space)
        super()._setup_model()
        if not isinstance(self.policy, RTRLActorCriticPolicy):
            raise ValueError(f"RTRLA2C needs an RTRLActorCriticPolicy, got {type(self.policy).__name__}")
        self._reset_recurrent_state()

    def _reset_recurrent_state(self) -> None:
        """Zero cell states, sensitivities and previous action/reward for ``n_envs`` environments."""
        cell = self.policy.cell
        n = self.n_envs
        self._last_cell_state = th.zeros(n, cell.hidden_size, device=self.device)
        self._rollout_start_cell_state = self._last_cell_state
        # Two sets of sensitivity buffers, alternated: the new state is written while the old one is read.
        # TBPTT leaves its (zero) sensitivities as they are and needs no second set.
        self._rtrl_state = initial_state(cell, n)
        self._rtrl_spare = initial_state(cell, n) if self.gradient == "rtrl" else self._rtrl_state
        self._last_prev_action = np.zeros((n, self.policy.prev_action_dim), dtype=np.float32)
        self._last_prev_reward = np.zeros(n, dtype=np.float32)
        self._rollout_prev_actions = np.zeros((self.n_steps, n, self.policy.prev_action_dim), dtype=np.float32)
        self._rollout_prev_rewards = np.zeros((self.n_steps, n), dtype=np.float32)

    def _excluded_save_params(self) -> list[str]:
        # Per-environment state is not saved: a loaded model may run with another number of environments.
        return [
            *super()._excluded_save_params(),
            "_last_cell_state",
            "_rollout_start_cell_state",
            "_rtrl_state",
            "_rtrl_spare",
            "_last_prev_action",
            "_last_prev_reward",
            "_rollout_prev_actions",
            "_rollout_prev_rewards",
        ]

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        env_reset = reset_num_timesteps or self._last_obs is None
        result = super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)
        if env_reset or self._last_cell_state is None or self._last_cell_state.shape[0] != self.n_envs:
            self._reset_recurrent_state()
        return result

    def _prev_inputs(self, episode_starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Previous action and reward as the cell reads them now: zero where an episode starts."""
        keep = ~episode_starts.astype(bool)
        return self._last_prev_action * keep[:, None], self._last_prev_reward * keep

    def _tensors(self, *arrays: np.ndarray) -> list[th.Tensor | None]:
        return [th.as_tensor(a, device=self.device) if a.size else None for a in arrays]

    # ------------------------------------------------------------------ rollouts

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: RolloutBuffer,
        n_rollout_steps: int,
    ) -> bool:
        """
        Collect ``n_rollout_steps`` steps per environment with the current policy (no gradient work).

        :param env: training environment
        :param callback: called at every step (and at the rollout's start and end)
        :param rollout_buffer: SB3's buffer to fill
        :param n_rollout_steps: steps per environment
        :return: False if a callback stopped training
        """
        assert self._last_obs is not None, "No previous observation was provided"
        assert self._last_cell_state is not None
        self.policy.set_training_mode(False)
        n_steps = 0
        rollout_buffer.reset()
        if self.use_sde:
            self.policy.reset_noise(env.num_envs)
        callback.on_rollout_start()
        # The training pass replays the rollout from the state acting started it with.
        self._rollout_start_cell_state = self._last_cell_state
        cell_state = self._last_cell_state

        while n_steps < n_rollout_steps:
            if self.use_sde and self.sde_sample_freq > 0 and n_steps % self.sde_sample_freq == 0:
                self.policy.reset_noise(env.num_envs)

            reads_prev = self._reads_prev()
            prev_actions = prev_rewards = None
            if reads_prev:
                prev_action, prev_reward = self._prev_inputs(self._last_episode_starts)
                prev_actions, prev_rewards = self._tensors(prev_action, prev_reward)
            with th.no_grad():
                obs_tensor = obs_as_tensor(self._last_obs, self.device)  # type: ignore[arg-type]
                episode_starts = th.as_tensor(self._last_episode_starts, dtype=th.bool, device=self.device)
                try:
                    actions, values, log_probs, cell_state = self.policy(
                        obs_tensor, cell_state, episode_starts, prev_actions=prev_actions, prev_rewards=prev_rewards
                    )
                except NonFiniteError as err:
                    raise NonFiniteError(
                        f"{err}, at step {n_steps} of the rollout for update {self._n_updates + 1} "
                        f"(num_timesteps={self.num_timesteps})"
                    ) from err
            actions = actions.cpu().numpy()
            clipped_actions = actions
            if isinstance(self.action_space, spaces.Box):
                if self.policy.squash_output:
                    clipped_actions = self.policy.unscale_action(clipped_actions)
                else:
                    clipped_actions = np.clip(actions, self.action_space.low, self.action_space.high)

            new_obs, rewards, dones, infos = env.step(clipped_actions)
            self.num_timesteps += env.num_envs

            callback.update_locals(locals())
            if not callback.on_step():
                return False

            self._update_info_buffer(infos, dones)
            n_steps += 1

            if isinstance(self.action_space, spaces.Discrete):
                actions = actions.reshape(-1, 1)

            if reads_prev:
                self._rollout_prev_actions[n_steps - 1] = prev_action
                self._rollout_prev_rewards[n_steps - 1] = prev_reward
                if self.policy.prev_action:
                    with th.no_grad():
                        encoded = self.policy.encode_actions(th.as_tensor(actions, device=self.device))
                    self._last_prev_action = encoded.cpu().numpy()
                self._last_prev_reward = np.asarray(rewards, dtype=np.float32).copy()  # before bootstrapping

            # Bootstrap on time-limit truncation with the value of the true last observation.
            for idx, done in enumerate(dones):
                if (
                    done
                    and infos[idx].get("terminal_observation") is not None
                    and infos[idx].get("TimeLimit.truncated", False)
                ):
                    terminal_obs = self.policy.obs_to_tensor(infos[idx]["terminal_observation"])[0]
                    with th.no_grad():
                        terminal_prev = self._tensors(
                            self._last_prev_action[idx : idx + 1], self._last_prev_reward[idx : idx + 1]
                        )
                        terminal_value = self.policy.predict_values(
                            terminal_obs,  # type: ignore[arg-type]
                            cell_state[idx : idx + 1],
                            th.zeros(1, dtype=th.bool, device=self.device),
                            *terminal_prev,
                        )[0]
                    rewards[idx] += self.gamma * terminal_value

            rollout_buffer.add(
                self._last_obs,  # type: ignore[arg-type]
                actions,
                rewards,
                self._last_episode_starts,  # type: ignore[arg-type]
                values,
                log_probs,
            )
            self._last_obs = new_obs  # type: ignore[assignment]
            self._last_episode_starts = dones
            self._last_cell_state = cell_state

        prev: list[th.Tensor | None] = [None, None]
        if self._reads_prev():
            prev = self._tensors(*self._prev_inputs(dones))
        with th.no_grad():
            episode_starts = th.as_tensor(dones, dtype=th.bool, device=self.device)
            values = self.policy.predict_values(obs_as_tensor(new_obs, self.device), cell_state, episode_starts, *prev)  # type: ignore[arg-type]

        rollout_buffer.compute_returns_and_advantage(last_values=values, dones=dones)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def _reads_prev(self) -> bool:
        return self.policy.prev_action or self.policy.prev_reward

    # ------------------------------------------------------------------ update

    def _rollout_tensors(self) -> tuple[Any, th.Tensor, th.Tensor]:
        """Observations and actions flat in time-major order, and the ``(T, B)`` episode starts."""
        buf = self.rollout_buffer
        steps, n_envs = buf.buffer_size, buf.n_envs
        if isinstance(buf.observations, dict):
            obs: Any = {k: buf.to_torch(v.reshape(steps * n_envs, *v.shape[2:])) for k, v in buf.observations.items()}
        else:
            obs = buf.to_torch(buf.observations.reshape(steps * n_envs, *buf.observations.shape[2:]))
        actions = buf.to_torch(buf.actions.reshape(steps * n_envs, -1).astype(np.float32, copy=False))
        if isinstance(self.action_space, spaces.Discrete):
            actions = actions.long().flatten()
        starts = th.as_tensor(buf.episode_starts, device=self.device).bool()
        return obs, actions, starts

    def train(self) -> None:
        """One gradient step on the rollout just collected, with the exact RTRL gradient."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        buf = self.rollout_buffer
        self._check_rollout_finite()
        obs, actions, starts = self._rollout_tensors()
        prev_actions = prev_rewards = None
        if self.policy.prev_action:
            prev_actions = th.as_tensor(
                self._rollout_prev_actions.reshape(-1, self.policy.prev_action_dim), device=self.device
            )
        if self.policy.prev_reward:
            prev_rewards = th.as_tensor(self._rollout_prev_rewards.reshape(-1), device=self.device)
        state = RTRLState(c=self._rollout_start_cell_state, sensitivities=self._rtrl_state.sensitivities)

        values, log_prob, entropy, new_state = self.policy.evaluate_segment(
            obs, actions, starts, state, prev_actions, prev_rewards,
            gradient=self.gradient, method=self.rtrl_method, backend=self.rtrl_backend, out=self._rtrl_spare,
        )  # fmt: skip

        advantages = buf.to_torch(buf.advantages.reshape(-1))
        if self.normalize_advantage:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss = -(advantages * log_prob).mean()
        value_loss = F.mse_loss(buf.to_torch(buf.returns.reshape(-1)), values)
        entropy_loss = -th.mean(-log_prob) if entropy is None else -th.mean(entropy)
        loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss
        cell_state_rms = float(new_state.c.pow(2).mean().sqrt())
        sensitivity_rms = new_state.sensitivity_norm() if self.gradient == "rtrl" else 0.0
        if not np.isfinite(cell_state_rms) or not np.isfinite(sensitivity_rms):
            names = [f"cell.{spec.name}" for spec in self.policy.cell.rtrl_specs]
            self._raise_non_finite(
                first_non_finite([("cell state", new_state.c)], ("environment",))
                or first_non_finite((f"sensitivity of {n}", s) for n, s in zip(names, new_state.sensitivities))
                or "sensitivity norm (it overflowed)"
            )

        if not math.isfinite(loss.item()):
            self._raise_non_finite(
                f"loss ({loss.item()}: policy {policy_loss.item()}, value {value_loss.item()}, entropy "
                f"{entropy_loss.item()}; the largest |value target| is {np.abs(buf.returns).max():.3g}: scale the "
                "rewards, e.g. with VecNormalize, or lower the learning rate)"
            )

        self.policy.optimizer.zero_grad()
        loss.backward()
        # clip_grad_norm_ in two steps (its own implementation): clipping by a NaN norm would make every
        # gradient NaN and hide which parameter's went bad.
        params = [p for p in self.policy.parameters() if p.grad is not None]
        total_norm = th.nn.utils.get_total_norm([p.grad for p in params])  # type: ignore[misc]
        grad_norm = float(total_norm)
        if not np.isfinite(grad_norm):
            grads = ((f"gradient of {name}", p.grad) for name, p in self.policy.named_parameters())
            self._raise_non_finite(first_non_finite(grads) or f"gradient norm ({grad_norm}: it overflowed)")
        th.nn.utils.clip_grads_with_norm_(params, self.max_grad_norm, total_norm)
        self.policy.optimizer.step()
        # The new sensitivities were written into the spare buffers; the old ones become the spare.
        self._rtrl_spare, self._rtrl_state = self._rtrl_state, new_state

        explained_var = explained_variance(buf.values.flatten(), buf.returns.flatten())
        self._n_updates += 1
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/explained_variance", explained_var)
        self.logger.record("train/entropy_loss", entropy_loss.item())
        self.logger.record("train/policy_loss", policy_loss.item())
        self.logger.record("train/value_loss", value_loss.item())
        self.logger.record("train/grad_norm", grad_norm)
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        if self.gradient == "rtrl":
            self.logger.record("train/rtrl_sensitivity_rms", sensitivity_rms)
        self.logger.record("train/rtrl_cell_state_rms", cell_state_rms)

    def _check_rollout_finite(self) -> None:
        """Raise NonFiniteError if the rollout holds a non-finite observation, reward, value or value target."""
        buf = self.rollout_buffer
        found = first_non_finite(
            [
                ("observation", buf.observations),
                ("reward", buf.rewards),
                ("value estimate", buf.values),
                ("value target", buf.returns),
            ],
            ("rollout step", "environment"),
        )
        if found is not None:
            self._raise_non_finite(found)

    def _raise_non_finite(self, what: str) -> None:
        raise NonFiniteError(
            f"non-finite {what} at update {self._n_updates + 1} (num_timesteps={self.num_timesteps}); "
            "the weights were not changed"
        )

    def save(self, path: str | pathlib.Path | io.BufferedIOBase, exclude: Any = None, include: Any = None) -> None:
        """
        SB3's save, plus a plain description of the pickled entries so that :func:`sb3_rtrl.hub.load_model`
        can load the file without unpickling anything (see :mod:`sb3_rtrl.safe_load`).

        :param path: file path (``.zip`` added when it has no suffix, as SB3 does) or a writable binary file object
        :param exclude: attributes not to save
        :param include: attributes to save even if normally excluded
        """
        # Built in memory, then written where SB3 itself would write it (its suffix and folder rules).
        buffer = io.BytesIO()
        super().save(buffer, exclude=exclude, include=include)
        add_description(buffer, self)
        file = open_path(path, "w", verbose=0, suffix="zip")
        try:
            file.write(buffer.getvalue())
        finally:
            if isinstance(path, (str, pathlib.Path)):
                file.close()

    def predict(  # type: ignore[override]
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        reward: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """
        Actions and the next recurrent state (RecurrentPPO's contract; see :meth:`RTRLActorCriticPolicy.predict`).

        :param observation: one observation or one per environment
        :param state: the state returned by the previous call, or None for zeros
        :param episode_start: True where the observation starts an episode
        :param deterministic: greedy actions
        :param reward: previous rewards, for a policy with ``prev_reward=True``
        :return: actions and the next state
        """
        return self.policy.predict(observation, state, episode_start, deterministic, reward=reward)

    def learn(
        self: SelfRTRLA2C,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 100,
        tb_log_name: str = "RTRLA2C",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfRTRLA2C:
        check_number("total_timesteps", total_timesteps, 0.0)
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
