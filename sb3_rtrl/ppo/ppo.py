"""RTRLPPO: RecurrentPPO's clipped epochs over sequence chunks, the recurrent cell trained by exact RTRL."""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple, TypeVar

import numpy as np
import torch as th
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import FloatSchedule, explained_variance

from sb3_rtrl.common.arguments import check_int, check_number
from sb3_rtrl.common.on_policy import RTRLOnPolicyAlgorithm
from sb3_rtrl.common.recurrent.policies import RTRLActorCriticPolicy
from sb3_rtrl.common.recurrent.type_aliases import ChunkStarts, RTRLSequenceSamples
from sb3_rtrl.rtrl import initial_state
from sb3_rtrl.rtrl.backend import Backend

SelfRTRLPPO = TypeVar("SelfRTRLPPO", bound="RTRLPPO")


class MinibatchEvaluation(NamedTuple):
    """
    The policy's outputs on a minibatch's steps, with the gradient through their past, and the rollout's records of
    the same steps in the same order; all flat.

    :param values: value estimates now
    :param log_prob: log-probabilities of the actions taken, now
    :param entropy: the distribution's entropy, None where it has none
    :param advantages: GAE advantages
    :param returns: value targets
    :param old_values: value estimates at collection
    :param old_log_prob: log-probabilities at collection
    """

    values: th.Tensor
    log_prob: th.Tensor
    entropy: th.Tensor | None
    advantages: th.Tensor
    returns: th.Tensor
    old_values: th.Tensor
    old_log_prob: th.Tensor


class RTRLPPO(RTRLOnPolicyAlgorithm):
    """
    Proximal policy optimization with an eLSTM policy whose recurrent weights get exact RTRL gradients.

    RecurrentPPO's constructor, defaults and meaning, so that its scripts and rl-zoo3 configs run with the
    class name changed. Each environment's rollout is cut into sequence chunks of ``chunk_length`` steps
    (default ``min(n_steps, batch_size)``; the last one shorter when it does not divide ``n_steps``); a minibatch
    is ``batch_size // chunk`` chunks (at least one), drawn without replacement each epoch. After the rollout,
    one pass without gradients carries the cell state and the RTRL sensitivities across the chunks, with the
    weights that collected it; every epoch then recomputes each chunk with autograd from its start state and
    injects its start sensitivities. So the first minibatch's gradient is exact over the whole past of its
    sequences; later ones use sensitivities as stale as the weights have moved within the update (as
    RecurrentPPO's stored LSTM states are). The sensitivities carried to the next rollout are those at the
    rollout's end.

    :param policy: policy class or alias ("MlpLstmPolicy", "CnnLstmPolicy", "MultiInputLstmPolicy", and the
        "...ELSTMPolicy" names)
    :param env: environment or its id
    :param learning_rate: learning rate, or a schedule of the remaining progress (1 to 0)
    :param n_steps: steps per environment between updates
    :param batch_size: transitions per minibatch (None: the whole rollout)
    :param n_epochs: passes over the rollout per update
    :param gamma: discount factor
    :param gae_lambda: GAE lambda
    :param clip_range: policy clipping parameter, or a schedule
    :param clip_range_vf: value clipping parameter around the old value estimates, or a schedule; None: none
    :param normalize_advantage: normalize the advantages of each minibatch
    :param ent_coef: entropy coefficient
    :param vf_coef: value loss coefficient
    :param max_grad_norm: global gradient norm clip
    :param use_sde: generalized state-dependent exploration
    :param sde_sample_freq: gSDE noise resampling frequency (-1: once per rollout)
    :param target_kl: stop the update's epochs when the approximate KL divergence of a minibatch exceeds
        ``1.5 * target_kl`` (None: never)
    :param gradient: "rtrl" (exact, untruncated) or "tbptt" (truncated at each chunk's start, as RecurrentPPO)
    :param chunk_length: steps of each training sequence (None: ``min(n_steps, batch_size)``). With RTRL a chunk's
        gradient reaches its whole past whatever its length, so short chunks, many to a minibatch, train the same
        sequences with fewer sequential steps; with TBPTT they truncate sooner
    :param rtrl_method: "segment" or "step" (how the sensitivities are advanced)
    :param rtrl_backend: "auto", "torch" or "cupy" (CUDA kernels)
    :param stats_window_size: episodes averaged in the rollout logs
    :param tensorboard_log: tensorboard log folder
    :param policy_kwargs: policy keyword arguments (see :class:`sb3_rtrl.common.recurrent.policies.RTRLActorCriticPolicy`).
        With the default cell and no ``action_latent_gain`` named, the gain is 2.0; other cells keep 1.0
    :param verbose: 0 none, 1 info, 2 debug
    :param seed: random seed
    :param device: "cpu", "cuda" or "auto"
    :param _init_setup_model: build the networks at construction
    """

    # The default cell's latent at twice SB3's scale before the action layer, so that PPO's small clipped updates move
    # the actions further from their near-uniform start: two board games and the count are learned better with it, no
    # task much worse. Measured with this cell only; the others keep SB3's head.
    default_action_latent_gain: ClassVar[float] = 2.0

    def __init__(
        self,
        policy: str | type[RTRLActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        n_steps: int = 128,
        batch_size: int | None = 128,
        n_epochs: int = 10,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_range: float | Schedule = 0.2,
        clip_range_vf: float | Schedule | None = None,
        normalize_advantage: bool = True,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        target_kl: float | None = None,
        gradient: str = "rtrl",
        chunk_length: int | None = None,
        rtrl_method: str = "segment",
        rtrl_backend: Backend = "auto",
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
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
        )
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.clip_range = clip_range
        self.clip_range_vf = clip_range_vf
        self.normalize_advantage = normalize_advantage
        self.target_kl = target_kl
        self.chunk_length = chunk_length
        if _init_setup_model:
            self._setup_model()

    def _check_arguments(self) -> None:
        super()._check_arguments()
        self.n_epochs = check_int("n_epochs", self.n_epochs, 1)
        if self.batch_size is not None:
            self.batch_size = check_int("batch_size", self.batch_size, 1)
        if self.chunk_length is not None:
            self.chunk_length = check_int("chunk_length", self.chunk_length, 1)
        if self.normalize_advantage and min(self.batch_size or 2, self.n_steps * self.n_envs) < 2:
            raise ValueError(
                f"normalize_advantage=True needs more than one advantage per minibatch, but batch_size={self.batch_size} "
                f"and n_steps * n_envs = {self.n_steps * self.n_envs} (their standard deviation would be NaN)"
            )
        for name in ("clip_range", "clip_range_vf"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                check_number(name, value, 0.0, low_open=True)
        if self.target_kl is not None:
            check_number("target_kl", self.target_kl, 0.0, low_open=True)

    def _setup_model(self) -> None:
        super()._setup_model()
        self.clip_range = FloatSchedule(self.clip_range)
        if self.clip_range_vf is not None:
            self.clip_range_vf = FloatSchedule(self.clip_range_vf)

    # ------------------------------------------------------------------ chunks

    def _chunk_steps(self) -> int:
        """Steps of each training sequence: ``chunk_length``, or ``min(n_steps, batch_size)``; at most ``n_steps``."""
        default = min(self.n_steps, self.batch_size or self.n_steps)
        return default if self.chunk_length is None else min(self.chunk_length, self.n_steps)

    def _chunk_starts(self) -> ChunkStarts:
        """
        One pass over the rollout without gradients, chunk by chunk, with the weights that collected it: the state
        at every chunk's start, and last at the rollout's end (which becomes the carried one, as in RTRLA2C).
        """
        buf = self.rollout_buffer
        bounds = buf.chunk_bounds(self._chunk_steps())
        states = [buf.start_state]
        for i, (t0, t1) in enumerate(bounds):
            sample = buf.sequences(slice(t0, t1), slice(None), states[-1])
            # The state at the rollout's end goes into the spare buffers (the carried state is read now);
            # the states between chunks get their own, kept until the update ends.
            last = i == len(bounds) - 1
            out = self._rtrl_spare if last or self.gradient != "rtrl" else initial_state(self.policy.cell, self.n_envs)
            new_state = self.policy.advance_state(
                sample.observations,
                sample.episode_starts,
                sample.start_state,
                sample.prev_actions,
                sample.prev_rewards,
                gradient=self.gradient,
                method=self.rtrl_method,
                backend=self.rtrl_backend,
                out=out,
            )
            states.append(new_state)
        return ChunkStarts(bounds, states)

    def _evaluate_minibatch(self, samples: tuple[RTRLSequenceSamples, ...]) -> MinibatchEvaluation:
        """
        The policy's outputs on a minibatch's chunks, with the exact gradient through their past, and the
        rollout's records of the same steps in the same order.

        :param samples: the minibatch, one sample per chunk length
        """
        parts: dict[str, list[th.Tensor]] = {
            key: [] for key in ("values", "log_prob", "entropy", "advantages", "returns", "old_values", "old_log_prob")
        }
        has_entropy = True
        for sample in samples:
            values, log_prob, entropy = self.policy.evaluate_chunk(
                sample.observations,
                sample.actions,
                sample.episode_starts,
                sample.start_state,
                sample.prev_actions,
                sample.prev_rewards,
                gradient=self.gradient,
                backend=self.rtrl_backend,
            )
            parts["values"].append(values)
            parts["log_prob"].append(log_prob)
            if entropy is None:
                has_entropy = False
            else:
                parts["entropy"].append(entropy)
            # In the policy's dtype: the loss's statistics (advantage mean and std) are then as exact as it.
            for key in ("advantages", "returns", "old_values", "old_log_prob"):
                parts[key].append(getattr(sample, key).to(values.dtype))
        joined = {key: th.cat(tensors) for key, tensors in parts.items() if key != "entropy"}
        return MinibatchEvaluation(entropy=th.cat(parts["entropy"]) if has_entropy else None, **joined)

    def _minibatch_loss(
        self, batch: MinibatchEvaluation, clip_range: float, clip_range_vf: float | None
    ) -> tuple[th.Tensor, dict[str, float]]:
        """RecurrentPPO's loss on one minibatch (every step is real: chunks need no padding) and its statistics."""
        values, log_prob, entropy = batch.values, batch.log_prob, batch.entropy
        advantages, old_log_prob, old_values = batch.advantages, batch.old_log_prob, batch.old_values
        if self.normalize_advantage and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        ratio = th.exp(log_prob - old_log_prob)
        policy_loss = -th.min(advantages * ratio, advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)).mean()
        if clip_range_vf is not None:
            values = old_values + th.clamp(values - old_values, -clip_range_vf, clip_range_vf)
        value_loss = ((batch.returns - values) ** 2).mean()
        entropy_loss = -th.mean(-log_prob) if entropy is None else -th.mean(entropy)
        loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss
        self._check_loss_finite(loss, policy_loss, value_loss, entropy_loss)
        with th.no_grad():
            log_ratio = log_prob - old_log_prob
            stats = dict(
                policy_loss=policy_loss.item(),
                value_loss=value_loss.item(),
                entropy_loss=entropy_loss.item(),
                clip_fraction=th.mean((th.abs(ratio - 1) > clip_range).float()).item(),
                approx_kl=th.mean((th.exp(log_ratio) - 1) - log_ratio).item(),
                loss=loss.item(),
            )
        return loss, stats

    # ------------------------------------------------------------------ update

    def train(self) -> None:
        """``n_epochs`` passes of clipped minibatch updates over the rollout's chunks."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = self.schedule_value("clip_range", self.clip_range)  # type: ignore[arg-type]
        clip_range_vf = None if self.clip_range_vf is None else self.schedule_value("clip_range_vf", self.clip_range_vf)  # type: ignore[arg-type]
        self._check_rollout_finite()
        buf = self.rollout_buffer
        buf.chunk_starts = self._chunk_starts()
        end_state = buf.chunk_starts.states[-1]
        cell_state_rms, sensitivity_rms = self._check_state_finite(end_state)

        history: dict[str, list[float]] = {}
        grad_norms: list[float] = []
        continue_training = True
        for epoch in range(self.n_epochs):
            approx_kl: list[float] = []
            for samples in buf.get(self.batch_size):
                loss, stats = self._minibatch_loss(self._evaluate_minibatch(samples), clip_range, clip_range_vf)
                approx_kl.append(stats["approx_kl"])
                for key, value in stats.items():
                    history.setdefault(key, []).append(value)
                if self.target_kl is not None and stats["approx_kl"] > 1.5 * self.target_kl:
                    continue_training = False
                    if self.verbose >= 1:
                        print(f"Early stopping at step {epoch} due to reaching max kl: {stats['approx_kl']:.2f}")
                    break
                grad_norms.append(self._gradient_step(loss))
            self._n_updates += 1
            if not continue_training:
                break
        # The sensitivities at the rollout's end went into the spare buffers; the old ones become the spare.
        if self.gradient == "rtrl":
            self._rtrl_spare, self._rtrl_state = self._rtrl_state, end_state

        self.logger.record("train/entropy_loss", np.mean(history["entropy_loss"]))
        self.logger.record("train/policy_gradient_loss", np.mean(history["policy_loss"]))
        self.logger.record("train/value_loss", np.mean(history["value_loss"]))
        self.logger.record("train/approx_kl", np.mean(approx_kl))
        self.logger.record("train/clip_fraction", np.mean(history["clip_fraction"]))
        self.logger.record("train/loss", history["loss"][-1])
        self.logger.record("train/explained_variance", explained_variance(buf.values.flatten(), buf.returns.flatten()))
        if grad_norms:
            self.logger.record("train/grad_norm", np.mean(grad_norms))
        self._record_policy_std()
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)
        if clip_range_vf is not None:
            self.logger.record("train/clip_range_vf", clip_range_vf)
        self._record_state_stats(cell_state_rms, sensitivity_rms)

    def learn(
        self: SelfRTRLPPO,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "RTRLPPO",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfRTRLPPO:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
