"""RTRLA2C: synchronous actor-critic with an eLSTM trained by exact RTRL (the paper's R2AC)."""

from __future__ import annotations

import warnings
from typing import Any, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import explained_variance
from torch.nn import functional as F

from sb3_rtrl.common.arguments import check_number
from sb3_rtrl.common.on_policy import RTRLOnPolicyAlgorithm
from sb3_rtrl.common.recurrent.policies import RTRLActorCriticPolicy
from sb3_rtrl.rtrl.backend import Backend

SelfRTRLA2C = TypeVar("SelfRTRLA2C", bound="RTRLA2C")

# The paper's R2AC's entropy bonus.
DEFAULT_ENT_COEF = 0.01

# RecurrentPPO keywords with no meaning for a single-pass actor-critic.
PPO_ONLY_KWARGS = ("n_epochs", "batch_size", "clip_range", "clip_range_vf", "target_kl")


def default_ent_coef(action_space: spaces.Space) -> float:
    """
    RTRLA2C's entropy coefficient when none is given: 0.01 for every action space. The name stays for code written
    when continuous (Box) actions got 0.0 by default.

    :param action_space: the model's action space (the coefficient is the same for every space)
    :return: the entropy coefficient
    """
    return DEFAULT_ENT_COEF


class RTRLA2C(RTRLOnPolicyAlgorithm):
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
    :param ent_coef: entropy coefficient (None: the default). 0.01 (the paper's R2AC; SB3's A2C has 0.0): a task
        whose reward depends on a memory not yet learned gives the policy no reason to keep exploring, and without
        the bonus it can settle on one action, after which its gradient toward the memory vanishes. On a Gaussian
        (Box actions) the bonus stops raising a standard deviation at half the width of its action's bounds
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
    :param policy_kwargs: policy keyword arguments (see :class:`sb3_rtrl.common.recurrent.policies.RTRLActorCriticPolicy`)
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

    def __init__(
        self,
        policy: str | type[RTRLActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 7e-4,
        n_steps: int = 5,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
        ent_coef: float | None = DEFAULT_ENT_COEF,
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
        given = dict(
            n_epochs=n_epochs, batch_size=batch_size, clip_range=clip_range, clip_range_vf=clip_range_vf, target_kl=target_kl
        )
        ignored = [name for name in PPO_ONLY_KWARGS if given[name] is not None]
        if ignored:
            warnings.warn(
                f"RTRLA2C ignores the PPO-only argument(s) {', '.join(ignored)}: it makes one update per rollout", stacklevel=2
            )
        super().__init__(
            policy,
            env,
            gradient=gradient,
            rtrl_method=rtrl_method,
            rtrl_backend=rtrl_backend,
            learning_rate=learning_rate,
            n_steps=n_steps,
            gamma=gamma,
            gae_lambda=gae_lambda,
            ent_coef=DEFAULT_ENT_COEF if ent_coef is None else ent_coef,
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
        )
        self.normalize_advantage = normalize_advantage
        self.rms_prop_eps = rms_prop_eps
        # As SB3's A2C: RMSprop with its TF-like settings unless the user chose an optimizer.
        if use_rms_prop and "optimizer_class" not in self.policy_kwargs:
            self.policy_kwargs["optimizer_class"] = th.optim.RMSprop
            self.policy_kwargs["optimizer_kwargs"] = dict(alpha=0.99, eps=rms_prop_eps, weight_decay=0)
        if _init_setup_model:
            self._setup_model()

    def _check_arguments(self) -> None:
        super()._check_arguments()
        check_number("rms_prop_eps", self.rms_prop_eps, 0.0, low_open=True)
        if self.normalize_advantage and self.n_steps * self.n_envs < 2:
            raise ValueError(
                f"normalize_advantage=True needs more than one advantage per update, but n_steps * n_envs = "
                f"{self.n_steps} * {self.n_envs} = 1 (their standard deviation would be NaN)"
            )

    def train(self) -> None:
        """One gradient step on the rollout just collected, with the exact RTRL gradient."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        buf = self.rollout_buffer
        self._check_rollout_finite()
        sample = buf.get_rollout()

        values, log_prob, entropy, new_state = self.policy.evaluate_segment(
            sample.observations,
            sample.actions,
            sample.episode_starts,
            sample.start_state,
            sample.prev_actions,
            sample.prev_rewards,
            gradient=self.gradient,
            method=self.rtrl_method,
            backend=self.rtrl_backend,
            out=self._rtrl_spare,
        )

        advantages = sample.advantages
        if self.normalize_advantage:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss = -(advantages * log_prob).mean()
        value_loss = F.mse_loss(sample.returns, values)
        entropy_loss = -th.mean(-log_prob) if entropy is None else -th.mean(entropy)
        loss = policy_loss + self.ent_coef * self._bounded_entropy_loss(entropy_loss) + self.vf_coef * value_loss
        cell_state_rms, sensitivity_rms = self._check_state_finite(new_state)
        self._check_loss_finite(loss, policy_loss, value_loss, entropy_loss)
        grad_norm = self._gradient_step(loss)
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
        self._record_policy_std()
        self._record_state_stats(cell_state_rms, sensitivity_rms)

    def _bounded_entropy_loss(self, entropy_loss: th.Tensor) -> th.Tensor:
        """
        The entropy loss as the bonus uses it. A Gaussian's entropy grows with its log standard deviation without
        bound, and its gradient is the same whatever the rewards: RMSprop turns that constant push into a step of
        about the learning rate an update, so under the bonus alone the standard deviation grows without end (past
        ``e^44`` the log-probabilities overflow and training stops). So the bonus takes the entropy of the Gaussian
        with each standard deviation capped at half the width of its action's bounds: beyond that most samples are
        clipped to a bound and more noise explores nothing. Below the cap it is the entropy itself. Other
        distributions and gSDE: the entropy loss as computed.

        :param entropy_loss: minus the mean entropy of the rollout's action distributions
        :return: minus the mean entropy with the standard deviations capped
        """
        if self.use_sde or type(self.policy.action_dist) is not DiagGaussianDistribution:
            return entropy_loss
        assert isinstance(self.action_space, spaces.Box)
        log_std = self.policy.log_std
        # In float64: the width of float32 bounds near the float32 maximum overflows float32.
        high, low = self.action_space.high.astype(np.float64), self.action_space.low.astype(np.float64)
        half_width = th.as_tensor((high - low) / 2.0, device=log_std.device)
        half_width = half_width.reshape(log_std.shape).to(log_std.dtype)
        # A dimension with no width has no cap (its log would be -inf).
        cap = th.where(half_width > 0, th.log(half_width), th.full_like(half_width, th.inf))
        # The Gaussian's entropy is a constant plus the sum of its log standard deviations.
        return entropy_loss + (log_std - th.minimum(log_std, cap)).sum()

    def learn(
        self: SelfRTRLA2C,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 100,
        tb_log_name: str = "RTRLA2C",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfRTRLA2C:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
