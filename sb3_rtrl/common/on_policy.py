"""What RTRLA2C and RTRLPPO share: the recurrent state, rollout collection, finite checks, save and predict."""

from __future__ import annotations

import io
import math
import pathlib
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.save_util import open_path
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback
from stable_baselines3.common.utils import obs_as_tensor, update_learning_rate
from stable_baselines3.common.vec_env import VecEnv

from sb3_rtrl.common.arguments import check_bool, check_choice, check_int, check_number
from sb3_rtrl.common.finite import NonFiniteError, first_non_finite
from sb3_rtrl.common.recurrent.buffers import RTRLDictRolloutBuffer, RTRLRolloutBuffer
from sb3_rtrl.common.recurrent.keywords import check_observation_space
from sb3_rtrl.common.recurrent.policies import (
    CnnELSTMPolicy,
    MlpELSTMPolicy,
    MultiInputELSTMPolicy,
    RTRLActorCriticPolicy,
)
from sb3_rtrl.common.recurrent.presets import DEFAULT_CELL, DEFAULT_NETWORK_CELLS, LEGACY_DEFAULT_CELL
from sb3_rtrl.rtrl import GRADIENTS, METHODS, RTRLState, initial_state
from sb3_rtrl.rtrl.backend import BACKENDS, Backend
from sb3_rtrl.rtrl.segment import Gradient, Method
from sb3_rtrl.safe_load import add_description, check_algorithm

SelfRTRLOnPolicyAlgorithm = TypeVar("SelfRTRLOnPolicyAlgorithm", bound="RTRLOnPolicyAlgorithm")

# A Gaussian policy's log standard deviation above which a non-finite loss is blamed on it (a standard deviation of
# e^20, far beyond any action's bounds, reached only under an entropy bonus's unbounded push).
LOG_STD_TOO_HIGH = 20.0


class RTRLOnPolicyAlgorithm(OnPolicyAlgorithm):
    """
    Base of the on-policy algorithms whose policy's recurrent cell gets exact RTRL gradients.

    It keeps per environment the cell state acting reached, the sensitivities carried from one rollout to
    the next and the previous action and reward; collects rollouts into SB3's buffer with the cell's
    forward only; and checks every number an update reads. Each algorithm writes its own ``train``.

    :param gradient: "rtrl" (exact, untruncated) or "tbptt" (truncated where each training sequence starts)
    :param rtrl_method: "segment" (sensitivities advanced once per sequence) or "step" (per step, reference)
    :param rtrl_backend: "auto", "torch" or "cupy" (CUDA kernels)
    :param kwargs: SB3's ``OnPolicyAlgorithm`` arguments
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
    rollout_buffer: RTRLRolloutBuffer
    # The action layer's gain (``action_latent_gain``) a new model with the default cell (or the default before it,
    # the same layer) gets unless it names one; other cells keep SB3's head (1.0), the one they were measured with.
    default_action_latent_gain: ClassVar[float] = 1.0

    def __init__(
        self,
        policy: str | type[RTRLActorCriticPolicy],
        env: GymEnv | str,
        gradient: str = "rtrl",
        rtrl_method: str = "segment",
        rtrl_backend: Backend = "auto",
        **kwargs: Any,
    ):
        super().__init__(
            policy,
            env,
            _init_setup_model=False,
            supported_action_spaces=(spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary),
            **kwargs,
        )
        # The cell, and the default cell's action layer gain, are named in the saved policy_kwargs, so that a file
        # keeps them when the defaults change.
        if isinstance(self.policy_kwargs, dict):
            policy_kwargs = {"cell": DEFAULT_CELL, **self.policy_kwargs}
            if policy_kwargs["cell"] in DEFAULT_NETWORK_CELLS:
                policy_kwargs.setdefault("action_latent_gain", self.default_action_latent_gain)
            self.policy_kwargs = policy_kwargs
        # Checked against GRADIENTS and METHODS below.
        self.gradient = cast(Gradient, gradient)
        self.rtrl_method = cast(Method, rtrl_method)
        self.rtrl_backend = rtrl_backend
        self._last_cell_state: th.Tensor | None = None

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
        if not callable(self.learning_rate):  # 0 is allowed: rl-zoo3's enjoy loads models with it
            check_number("learning_rate", self.learning_rate, 0.0)
        check_bool("use_sde", self.use_sde)
        self.sde_sample_freq = check_int("sde_sample_freq", self.sde_sample_freq, -1)
        self._stats_window_size = check_int("stats_window_size", self._stats_window_size, 1)
        if self.rtrl_backend == "cupy":
            if self.device.type != "cuda":
                raise ValueError(
                    f"rtrl_backend='cupy' runs CUDA kernels, but this model is on {self.device}: "
                    "use device='cuda', or rtrl_backend='auto' or 'torch'"
                )
            from sb3_rtrl.rtrl import kernels

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
        if isinstance(self.policy_kwargs, dict) and "cell" not in self.policy_kwargs:
            # Only a file saved before the default cell became "mixed" names no cell: its cell is the eLSTM.
            self.policy_kwargs = {**self.policy_kwargs, "cell": LEGACY_DEFAULT_CELL}
        self._check_arguments()
        check_observation_space(self.observation_space)
        # Always the RTRL buffer, whatever class an older file saved (SB3's RolloutBuffer).
        self.rollout_buffer_class = (
            RTRLDictRolloutBuffer if isinstance(self.observation_space, spaces.Dict) else RTRLRolloutBuffer
        )
        super()._setup_model()
        if not isinstance(self.policy, RTRLActorCriticPolicy):
            raise ValueError(f"{type(self).__name__} needs an RTRLActorCriticPolicy, got {type(self.policy).__name__}")
        self._reset_recurrent_state()

    def _reset_recurrent_state(self) -> None:
        """Zero cell states, sensitivities and previous action/reward for ``n_envs`` environments."""
        cell = self.policy.cell
        n = self.n_envs
        self._last_cell_state = th.zeros(n, cell.state_size, device=self.device)
        # Two sets of sensitivity buffers, alternated: the new state is written while the old one is read.
        # TBPTT leaves its (zero) sensitivities as they are and needs no second set.
        self._rtrl_state = initial_state(cell, n)
        self._rtrl_spare = initial_state(cell, n) if self.gradient == "rtrl" else self._rtrl_state
        self._last_prev_action = np.zeros((n, self.policy.prev_action_dim), dtype=np.float32)
        self._last_prev_reward = np.zeros(n, dtype=np.float32)

    def _excluded_save_params(self) -> list[str]:
        # Per-environment state is not saved: a loaded model may run with another number of environments.
        return [
            *super()._excluded_save_params(),
            "_last_cell_state",
            "_rtrl_state",
            "_rtrl_spare",
            "_last_prev_action",
            "_last_prev_reward",
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
        :param rollout_buffer: the RTRL rollout buffer to fill
        :param n_rollout_steps: steps per environment
        :return: False if a callback stopped training
        """
        assert self._last_obs is not None, "No previous observation was provided"
        assert self._last_cell_state is not None
        if not isinstance(rollout_buffer, RTRLRolloutBuffer):
            raise TypeError(f"{type(self).__name__} collects into an RTRL rollout buffer, got {type(rollout_buffer).__name__}")
        self.policy.set_training_mode(False)
        n_steps = 0
        rollout_buffer.reset()
        # The training pass replays the rollout from the state acting started it with.
        rollout_buffer.start_state = RTRLState(c=self._last_cell_state, sensitivities=self._rtrl_state.sensitivities)
        if self.use_sde:
            self.policy.reset_noise(env.num_envs)
        callback.on_rollout_start()
        cell_state = self._last_cell_state

        while n_steps < n_rollout_steps:
            if self.use_sde and self.sde_sample_freq > 0 and n_steps % self.sde_sample_freq == 0:
                self.policy.reset_noise(env.num_envs)

            reads_prev = self._reads_prev()
            prev_action: np.ndarray | None = None
            prev_reward: np.ndarray | None = None
            prev_actions = prev_rewards = None
            if reads_prev:
                assert self._last_episode_starts is not None, "set by _setup_learn"
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
                self._last_obs,
                actions,
                rewards,
                self._last_episode_starts,
                values,
                log_probs,
                prev_action=prev_action if self.policy.prev_action else None,
                prev_reward=prev_reward if self.policy.prev_reward else None,
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

    def _check_state_finite(self, state: RTRLState) -> tuple[float, float]:
        """The RMS of a new cell state and of its sensitivities; NonFiniteError naming the first bad entry."""
        cell_state_rms = float(state.c.pow(2).mean().sqrt())
        sensitivity_rms = state.sensitivity_norm() if self.gradient == "rtrl" else 0.0
        if not np.isfinite(cell_state_rms) or not np.isfinite(sensitivity_rms):
            names = [f"cell.{spec.name}" for spec in self.policy.cell.rtrl_specs]
            self._raise_non_finite(
                first_non_finite([("cell state", state.c)], ("environment",))
                or first_non_finite((f"sensitivity of {n}", s) for n, s in zip(names, state.sensitivities))
                or "sensitivity norm (it overflowed)"
            )
        return cell_state_rms, sensitivity_rms

    def _record_state_stats(self, cell_state_rms: float, sensitivity_rms: float) -> None:
        """Log the RMS of the carried cell state and, with RTRL, of the sensitivities (from :meth:`_check_state_finite`)."""
        if self.gradient == "rtrl":
            self.logger.record("train/rtrl_sensitivity_rms", sensitivity_rms)
        self.logger.record("train/rtrl_cell_state_rms", cell_state_rms)

    def _check_loss_finite(
        self, loss: th.Tensor, policy_loss: th.Tensor, value_loss: th.Tensor, entropy_loss: th.Tensor
    ) -> None:
        if not math.isfinite(loss.item()):
            advice = "scale the rewards, e.g. with VecNormalize, or lower the learning rate"
            log_std = getattr(self.policy, "log_std", None)
            if isinstance(log_std, th.Tensor) and log_std.max().item() > LOG_STD_TOO_HIGH:
                # The squares in a Gaussian's log-probability overflow float32 near a log std of 44.
                advice = (
                    f"the Gaussian's log standard deviation has reached {log_std.max().item():.3g}: an entropy bonus "
                    "(ent_coef) raises it without bound on continuous actions; lower ent_coef or set log_std_init"
                )
            self._raise_non_finite(
                f"loss ({loss.item()}: policy {policy_loss.item()}, value {value_loss.item()}, entropy "
                f"{entropy_loss.item()}; the largest |value target| is {np.abs(self.rollout_buffer.returns).max():.3g}: "
                f"{advice})"
            )

    def schedule_value(self, name: str, schedule: Callable[[float], float]) -> float:
        """
        A schedule's value now, checked: a negative learning rate or clip range would train on nonsense, silently.

        The last rollout may overshoot ``total_timesteps``; past the end the schedule is read at progress 0, where
        SB3 reads it below 0 (rl-zoo3's linear schedules turn negative there).
        """
        progress = max(self._current_progress_remaining, 0.0)
        return check_number(f"{name} (the schedule's value at progress remaining {progress:.4g})", schedule(progress), 0.0)

    def _update_learning_rate(self, optimizers: list[th.optim.Optimizer] | th.optim.Optimizer) -> None:
        learning_rate = self.schedule_value("learning_rate", self.lr_schedule)
        self.logger.record("train/learning_rate", learning_rate)
        for optimizer in optimizers if isinstance(optimizers, list) else [optimizers]:
            update_learning_rate(optimizer, learning_rate)

    def _gradient_step(self, loss: th.Tensor) -> float:
        """Backward, clip the global norm to ``max_grad_norm``, optimizer step; returns the norm before clipping."""
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
        return grad_norm

    def _record_policy_std(self) -> None:
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())

    def save(self, path: str | pathlib.Path | io.BufferedIOBase, exclude: Any = None, include: Any = None) -> None:
        """
        SB3's save, plus a plain description of the pickled entries so that :func:`sb3_rtrl.hub.load_model`
        can load the file without unpickling anything (see :mod:`sb3_rtrl.safe_load`).

        :param path: file path (``.zip`` added when it has no suffix, as SB3 does) or a writable binary file object
        :param exclude: attributes not to save
        :param include: attributes to save even if normally excluded
        """
        # Built in memory, then written where SB3 itself would write it (".zip" added to a path without a suffix,
        # missing folders made).
        buffer = io.BytesIO()
        super().save(buffer, exclude=exclude, include=include)
        add_description(buffer, self)
        if not isinstance(path, (str, pathlib.Path)):
            open_path(path, "w", verbose=0, suffix="zip").write(buffer.getvalue())
            return
        target = pathlib.Path(path)
        if target.suffix == "":
            target = target.with_name(f"{target.name}.zip")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as file:
                file.write(buffer.getvalue())
        except OSError as err:
            raise OSError(f"cannot save the model to {target}: {err.strerror or err}") from err

    @classmethod
    def load(  # type: ignore[override]
        cls: type[SelfRTRLOnPolicyAlgorithm],
        path: str | pathlib.Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfRTRLOnPolicyAlgorithm:
        """
        SB3's load, after checking that this class (or a parent of it) saved the file and that the file is whole
        and within :class:`sb3_rtrl.safe_load.LoadLimits`. This unpickles the file's entries (trusted files only);
        :func:`sb3_rtrl.hub.load_model` loads any file without running code from it.

        :raises sb3_rtrl.safe_load.ModelFileError: naming the file and what is wrong with it
        """
        check_algorithm(path, cls)
        return super().load(
            path,
            env=env,
            device=device,
            custom_objects=custom_objects,
            print_system_info=print_system_info,
            force_reset=force_reset,
            **kwargs,
        )

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
        self: SelfRTRLOnPolicyAlgorithm,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 100,
        tb_log_name: str = "run",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfRTRLOnPolicyAlgorithm:
        check_number("total_timesteps", total_timesteps, 0.0)
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
