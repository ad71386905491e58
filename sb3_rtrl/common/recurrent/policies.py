"""Actor-critic policies whose recurrent core is an element-wise cell (eLSTM, RTU) trained by exact RTRL."""

from __future__ import annotations

import os
import warnings
from typing import Any, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    MlpExtractor,
    NatureCNN,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_rtrl.cells import cell_entry, resolve_cell_kwargs
from sb3_rtrl.common.arguments import check_bool, check_class, check_int, check_net_arch, check_number
from sb3_rtrl.common.finite import NonFiniteError, first_non_finite
from sb3_rtrl.common.recurrent.keywords import (
    check_cell_optimizer_kwargs,
    check_extractor_fits,
    check_forget_bias,
    check_observation_space,
    check_recurrent_ppo_keywords,
    critic_has_own_cell,
    default_net_arch,
    prev_action_dim,
)
from sb3_rtrl.common.recurrent.presets import DEFAULT_CELL
from sb3_rtrl.rtrl import RTRLState, rtrl_replay, rtrl_segment
from sb3_rtrl.rtrl.backend import Backend
from sb3_rtrl.rtrl.segment import Gradient, Method
from sb3_rtrl.safe_load import register_safe_class


class RTRLActorCriticPolicy(ActorCriticPolicy):
    """
    Features extractor -> recurrent cell (eLSTM by default) -> MLP extractor (``net_arch``) -> action and value heads.

    One cell is shared by actor and critic (as in the paper), or the critic has its own (``shared_lstm=False``,
    RecurrentPPO's default policy), which may read its own features extractor (``share_features_extractor=False``).
    The cells' recurrent weights get exact RTRL gradients; everything below them gets gradients truncated at the
    start of each training sequence.

    :param observation_space: observation space
    :param action_space: action space
    :param lr_schedule: learning rate schedule
    :param net_arch: MLP layers between the cell and the heads (SB3's format). By default as SB3 and
        RecurrentPPO choose: ``[64, 64]`` for each head on vector features, none after a CNN. ``[]`` with
        ``skip_connection=False`` is the paper's network (:data:`PAPER_NETWORK`)
    :param activation_fn: activation of the MLP layers
    :param ortho_init: orthogonal init of extractor, MLP and heads (the cell keeps its own init)
    :param use_sde: generalized state-dependent exploration (Box actions)
    :param log_std_init: initial log standard deviation (Box actions)
    :param full_std: see SB3's ``ActorCriticPolicy``
    :param use_expln: see SB3's ``ActorCriticPolicy``
    :param squash_output: see SB3's ``ActorCriticPolicy``
    :param features_extractor_class: features extractor class
    :param features_extractor_kwargs: its keyword arguments
    :param share_features_extractor: False: the critic has its own features extractor, read by its own cell
        (implied; ``shared_lstm=True`` is refused); the actor's cell, MLP and head read the actor's extractor
    :param normalize_images: divide image observations by 255
    :param optimizer_class: optimizer class
    :param optimizer_kwargs: its keyword arguments
    :param cell_optimizer_kwargs: the optimizer's keyword arguments for parts of the cell, each part's parameters in a
        group of their own, over ``optimizer_kwargs`` (not ``lr``, which the schedule sets for all): keyed by the name
        of one of the cell's submodules (``"elstm"``, ``"rtu"``, ``"gated"`` in the mixed layers) or ``"*"`` for the
        rest of the cell, e.g. ``{"*": dict(eps=1e-8)}``. None (default): one group for all parameters. The exact
        gradients of a wide cell's parameters are mostly far below SB3's eps of 1e-5, which shrinks their steps to a
        small fraction of the learning rate; a smaller eps lets units that start silent learn to hold a cue
    :param hidden_size: N, the width of each head's recurrent state in reals: what the actor reads from the cell, and
        the critic from its own cell when it has one (256 in the paper for Atari and ProcGen). The cell holds one
        group of N per head (its ``state_size``)
    :param lstm_hidden_size: RecurrentPPO's name for ``hidden_size``; wins when given
    :param cell: the recurrent cell, by its registered name (``sb3_rtrl.cells.CELLS``): ``"mixed_gated_v4"``
        (default, :class:`sb3_rtrl.cells.MixedCell` with three kinds of unit per head: eLSTM units that latch, RTU
        units that keep the recent past in order and gated linear units that hold an item through distractors; the
        RTU and gated parts an eighth of the width each, but at least 8 units each while the eLSTM units keep five
        eighths; the gated units start silent when a head is wider than 64 units, and in narrower heads the heads read
        each gated unit standardized by running statistics), ``"mixed_gated_v2"`` (the same layer with every unit read
        as it is; the default of files saved before), ``"mixed_gated"`` (the same layer with its gated units loud at
        the start at every width; the default of files saved before that), ``"mixed"`` (the
        layer without the gated units, three quarters eLSTM units and a quarter RTU units; the default of files saved
        before that), ``"elstm"`` (:class:`sb3_rtrl.cells.ELSTMCell`, the paper's), ``"rtu"``
        (recurrent trace units, :class:`sb3_rtrl.cells.RTUCell`; ``hidden_size`` reals are ``hidden_size // 2``
        complex units) or ``"gated"`` (gated linear units, :class:`sb3_rtrl.cells.GatedLinearCell`)
    :param cell_kwargs: keywords of the cell's own (e.g. ``dict(activation="relu", r_min=0.5)`` for the RTU),
        over the cell's policy defaults
    :param forget_bias: the eLSTM units' (cells ``"elstm"``, ``"mixed"`` and the ``"mixed_gated"`` layers; None: the
        cell's policy default, ``(0, 3)`` for the eLSTM, ``(0, 6)`` for the mixed layers). Added to the forget-gate bias at
        init. +3 (f = 0.95) lets a memory last tens of steps from the start; with 0 (the paper's init, f = 0.5) it
        fades within a few steps and even exact gradients vanish before long delays can be learned. A pair ``(low,
        high)`` spreads it evenly over the units, fast ones that follow the input to slow ones that keep it
    :param skip_connection: the MLP and heads read the cell's input (features, previous action and reward)
        beside its output, so the current observation reaches them without passing through the memory
        (default; without it the eLSTM's slow state is all the heads see, and reactive control suffers)
    :param init_std: the eLSTM units' (cells ``"elstm"``, ``"mixed"`` and the ``"mixed_gated"`` layers; None: 0.5). Standard
        deviation of the init of the cell's recurrent weights and biases. 0.5 gives the element-wise recurrence
        (``w_z * c``, ``w_f * c``) enough strength to hold a state; with the paper's 0.1 the eLSTM learned far more
        slowly
    :param input_init_std: standard deviation of the init of the cell's input projection. None (default):
        ``1 / sqrt(input size)``, so that the input moves the gates by about one unit whatever its width
        (0.5 for a one-hot of 4, 0.06 for 257 features)
    :param prev_action: feed the previous action (one-hot for discrete spaces, zeros at an episode's start) to the
        cell; a task whose observation says only what the last action did (a hit or a miss) needs it
    :param prev_reward: feed the previous reward, clipped to [-1, 1], to the cell (paper)
    :param freeze_features_extractor: do not train the features extractor (the paper's DMLab protocol)
    :param features_extractor_weights: path of a saved model (``.zip``) whose features extractor weights
        are loaded at construction
    :param n_lstm_layers: RecurrentPPO's keyword; only 1 is possible (stacked eLSTMs are fully recurrent)
    :param shared_lstm: RecurrentPPO's keyword. True: actor and critic read one cell (the paper's network, the
        default when neither this nor ``enable_critic_lstm`` is given). False: the critic has its own cell of
        ``hidden_size`` units (RecurrentPPO's default policy), trained by RTRL too
    :param enable_critic_lstm: RecurrentPPO's keyword. True: the critic's own cell (``shared_lstm`` must not be
        True, as in RecurrentPPO). False with ``shared_lstm=False`` (a critic without memory) is refused
    :param lstm_kwargs: RecurrentPPO's keyword; must be empty
    :param action_latent_gain: the actor's latent (the MLP's last layer) times this before the action layer and, with
        gSDE, the features its noise reads (a real number above 0; default 1.0, SB3's head; RTRLPPO gives its default
        cell 2.0 when none is named). Above 1 the actions start and move further per update (Adam's steps on the
        action layer keep their size, its input grows), and the policy loss's gradient into the MLP and the cell grows
        by the gain against the value loss's; the value head is unchanged
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        ortho_init: bool = True,
        use_sde: bool = False,
        log_std_init: float = 0.0,
        full_std: bool = True,
        use_expln: bool = False,
        squash_output: bool = False,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        share_features_extractor: bool = True,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        cell_optimizer_kwargs: dict[str, dict[str, Any]] | None = None,
        hidden_size: int = 256,
        lstm_hidden_size: int | None = None,
        cell: str = DEFAULT_CELL,
        cell_kwargs: dict[str, Any] | None = None,
        forget_bias: float | tuple[float, float] | None = None,
        init_std: float | None = None,
        input_init_std: float | None = None,
        skip_connection: bool = True,
        prev_action: bool = False,
        prev_reward: bool = False,
        freeze_features_extractor: bool = False,
        features_extractor_weights: str | None = None,
        n_lstm_layers: int = 1,
        shared_lstm: bool | None = None,
        enable_critic_lstm: bool | None = None,
        lstm_kwargs: dict[str, Any] | None = None,
        action_latent_gain: float = 1.0,
    ) -> None:
        check_observation_space(observation_space)
        # Finite and above 0: at 0 the actions would ignore the observations, below it the gradient would flip.
        self.action_latent_gain = check_number("action_latent_gain", action_latent_gain, 0.0, low_open=True)
        flags = dict(
            ortho_init=ortho_init,
            use_sde=use_sde,
            share_features_extractor=share_features_extractor,
            normalize_images=normalize_images,
            skip_connection=skip_connection,
            prev_action=prev_action,
            prev_reward=prev_reward,
            freeze_features_extractor=freeze_features_extractor,
        )
        # SB3 saves these three as None when use_sde is off.
        optional = dict(full_std=full_std, use_expln=use_expln, squash_output=squash_output)
        flags.update({k: v for k, v in optional.items() if v is not None})
        for flag, value in flags.items():
            check_bool(flag, value)
        if net_arch is not None:
            check_net_arch(net_arch)
        check_class("activation_fn", activation_fn, nn.Module)
        check_class("optimizer_class", optimizer_class, th.optim.Optimizer)
        self.cell_optimizer_kwargs = check_cell_optimizer_kwargs(cell_optimizer_kwargs)
        check_class("features_extractor_class", features_extractor_class, BaseFeaturesExtractor)
        check_recurrent_ppo_keywords(n_lstm_layers, lstm_kwargs)
        self.critic_cell = critic_has_own_cell(shared_lstm, enable_critic_lstm, share_features_extractor)
        check_extractor_fits(observation_space, features_extractor_class)
        name = "lstm_hidden_size" if lstm_hidden_size is not None else "hidden_size"
        self.hidden_size = check_int(name, lstm_hidden_size if lstm_hidden_size is not None else hidden_size, 1)
        self.forget_bias = check_forget_bias(forget_bias)
        self.init_std = None if init_std is None else check_number("init_std", init_std, 0.0)
        self.cell_name = cell
        self.cell_kwargs = dict(cell_kwargs or {})
        # The eLSTM's keywords are the policy's too (RecurrentPPO users set them there); they join cell_kwargs.
        own = {k: v for k, v in (("forget_bias", self.forget_bias), ("init_std", self.init_std)) if v is not None}
        clash = sorted(set(own) & set(self.cell_kwargs))
        if clash:
            raise ValueError(f"{clash} given both as policy keywords and in cell_kwargs")
        resolved_cell_kwargs = resolve_cell_kwargs(cell, {**self.cell_kwargs, **own})
        self.input_init_std = None if input_init_std is None else check_number("input_init_std", input_init_std, 0.0)
        self.skip_connection = bool(skip_connection)
        # Known before SB3 builds the MLP, which reads the cell's input too with a skip connection.
        self.prev_action_dim = prev_action_dim(action_space) if prev_action else 0
        self.prev_action = prev_action
        self.prev_reward = prev_reward
        self.freeze_features_extractor = freeze_features_extractor
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=net_arch if net_arch is not None else default_net_arch(features_extractor_class),
            activation_fn=activation_fn,
            ortho_init=ortho_init,
            use_sde=use_sde,
            log_std_init=log_std_init,
            full_std=full_std,
            use_expln=use_expln,
            squash_output=squash_output,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            share_features_extractor=share_features_extractor,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )
        input_std = self.read_size**-0.5 if self.input_init_std is None else self.input_init_std
        # A critic cell is a second group of units of the same cell: element-wise, the groups never interact.
        groups = 2 if self.critic_cell else 1
        input_mask = None
        if not self.share_features_extractor:
            # The cell's input is [actor features; critic features; previous action and reward]: each group
            # reads its own features (and both read the previous action and reward).
            input_mask = th.ones(2, self.cell_input_size, dtype=th.bool)
            input_mask[0, self.features_dim : 2 * self.features_dim] = False
            input_mask[1, : self.features_dim] = False
        try:
            self.cell = cell_entry(cell).cls(
                self.cell_input_size,
                groups * self.hidden_size,
                input_init_std=input_std,
                groups=groups,
                input_mask=input_mask,
                **resolved_cell_kwargs,
            )
        except ValueError as err:
            # The cell sees the width of all its groups (state_size); the user gave the width of one.
            critic = f" (the critic's cell doubles the cell's width to {groups * self.hidden_size})" if groups > 1 else ""
            raise ValueError(f"{name}={self.hidden_size} with cell {cell!r}{critic}: {err}") from err
        if features_extractor_weights is not None:
            self.load_features_extractor(features_extractor_weights)
        if freeze_features_extractor:
            self.pi_features_extractor.requires_grad_(False)
            self.vf_features_extractor.requires_grad_(False)
        # The cell was made after SB3 built the optimizer: make it again over all trainable parameters.
        self.optimizer = self.optimizer_class(
            self._parameter_groups(),
            lr=lr_schedule(1),  # type: ignore[call-arg]
            **self.optimizer_kwargs,
        )
        if not isinstance(self.optimizer, th.optim.Optimizer):
            raise ValueError(f"optimizer_class {optimizer_class!r} made {self.optimizer!r}, not a torch.optim.Optimizer")
        given = {key for kwargs in (self.cell_optimizer_kwargs or {}).values() for key in kwargs}
        unknown = sorted(given - set(self.optimizer.defaults))
        if unknown:
            raise ValueError(
                f"cell_optimizer_kwargs {unknown} are not keywords of {self.optimizer_class.__name__} "
                f"(it takes {sorted(k for k in self.optimizer.defaults if k != 'lr')})"
            )

    def _parameter_groups(self) -> list[th.nn.Parameter] | list[dict[str, Any]]:
        """
        The trainable parameters: all in one group, or each part of the cell named in ``cell_optimizer_kwargs`` in a
        group of its own with its keywords (``"*"``: the cell's parameters in no named part), the rest in the first.
        """
        trainable = [p for p in self.parameters() if p.requires_grad]
        if self.cell_optimizer_kwargs is None:
            return trainable
        parts = dict(self.cell.named_children())
        missing = sorted(set(self.cell_optimizer_kwargs) - set(parts) - {"*"})
        if missing:
            raise ValueError(
                f"cell_optimizer_kwargs names {missing}, not parts of the {self.cell_name!r} cell "
                f"(its parts: {sorted(parts) or 'none'}; '*' is the whole cell)"
            )
        taken: set[int] = set()
        groups: list[dict[str, Any]] = []
        # "*" last: it takes what the named parts left.
        for part in sorted(self.cell_optimizer_kwargs, key=lambda name: name == "*"):
            module = self.cell if part == "*" else parts[part]
            params = [p for p in module.parameters() if p.requires_grad and id(p) not in taken]
            taken.update(id(p) for p in params)
            groups.append(dict(params=params, **self.cell_optimizer_kwargs[part]))
        return [dict(params=[p for p in trainable if id(p) not in taken]), *groups]

    def _build_mlp_extractor(self) -> None:
        # The MLP reads the cell's output (and, with the skip connection, the cell's input beside it: with two
        # extractors, the actor's or the critic's part of it).
        extras = self.prev_action_dim + int(self.prev_reward)
        self.read_size = self.features_dim + extras
        self.cell_input_size = self.features_dim * (1 if self.share_features_extractor else 2) + extras
        width = self.hidden_size + (self.read_size if self.skip_connection else 0)
        self.mlp_extractor = MlpExtractor(width, self.net_arch, self.activation_fn, device=self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            hidden_size=self.hidden_size,
            cell=self.cell_name,
            cell_kwargs=self.cell_kwargs,
            forget_bias=self.forget_bias,
            init_std=self.init_std,
            input_init_std=self.input_init_std,
            skip_connection=self.skip_connection,
            prev_action=self.prev_action,
            prev_reward=self.prev_reward,
            freeze_features_extractor=self.freeze_features_extractor,
            share_features_extractor=self.share_features_extractor,
            shared_lstm=not self.critic_cell,
            enable_critic_lstm=self.critic_cell,
            action_latent_gain=self.action_latent_gain,
            cell_optimizer_kwargs=self.cell_optimizer_kwargs,
        )
        return data

    def load_features_extractor(self, path: str) -> None:
        """
        Load the features extractor's weights from a model saved by SB3 (``model.save``); with separate
        extractors, into both.

        :param path: path of the ``.zip``
        """
        if not (os.path.isfile(path) or os.path.isfile(f"{path}.zip")):
            raise ValueError(f"features_extractor_weights: no saved model at {path}")
        _, params, _ = load_from_zip_file(path, device=self.device, load_data=False)
        if params is None or "policy" not in params:
            raise ValueError(f"{path} holds no policy weights")
        prefix = "features_extractor."
        saved = cast(dict[str, th.Tensor], params["policy"])
        weights = {k[len(prefix) :]: v for k, v in saved.items() if k.startswith(prefix)}
        if not weights:
            raise ValueError(f"{path} holds no features extractor weights (no keys starting with {prefix!r})")
        self.pi_features_extractor.load_state_dict(weights)
        if not self.share_features_extractor:
            self.vf_features_extractor.load_state_dict(weights)

    # ------------------------------------------------------------------ inputs of the cell

    def state_shape(self, n_envs: int) -> tuple[int, int, int]:
        """
        Shape of each array of the ``predict`` state: ``(1, n_envs, units)`` as RecurrentPPO, where units is
        ``hidden_size``, twice that with a critic cell.
        """
        return (1, n_envs, self.cell.state_size)

    def encode_actions(self, actions: th.Tensor) -> th.Tensor:
        """Previous-action input: one-hot for discrete spaces, float vectors otherwise; ``(B, prev_action_dim)``."""
        encoded = preprocess_obs(actions, self.action_space, normalize_images=False)
        assert isinstance(encoded, th.Tensor), "action spaces are not Dict spaces"
        return encoded.reshape(actions.shape[0], -1).float()

    def cell_inputs(
        self, obs: PyTorchObs, prev_actions: th.Tensor | None = None, prev_rewards: th.Tensor | None = None
    ) -> th.Tensor:
        """
        Features, and the previous action and reward where enabled, for a flat batch.

        :param obs: observations, batch first
        :param prev_actions: ``(B, prev_action_dim)`` encoded previous actions (zeros at episode starts)
        :param prev_rewards: ``(B,)`` previous rewards (clipped here to [-1, 1])
        :return: ``(B, cell_input_size)``
        """
        # SB3's: one tensor, or the actor's and the critic's features with separate extractors.
        extracted = self.extract_features(obs)
        parts = list(extracted) if isinstance(extracted, tuple) else [extracted]
        features = parts[0]
        if self.prev_action:
            assert prev_actions is not None, "this policy reads the previous action"
            parts.append(prev_actions.to(features.dtype))
        if self.prev_reward:
            assert prev_rewards is not None, "this policy reads the previous reward"
            parts.append(prev_rewards.to(features.dtype).clamp(-1.0, 1.0).unsqueeze(-1))
        return th.cat(parts, dim=-1) if len(parts) > 1 else features

    def _heads(self, h: th.Tensor, x: th.Tensor) -> tuple[Distribution, th.Tensor]:
        """The action distribution and values from the cell's output ``h`` (and its input ``x``, with the skip)."""
        h = self.cell.read_out(h)
        if self.critic_cell:
            h_pi, h_vf = h.split(self.hidden_size, dim=-1)
            if self.skip_connection:
                x_pi, x_vf = x, x
                if not self.share_features_extractor:
                    n = self.features_dim
                    x_pi, x_vf = th.cat([x[:, :n], x[:, 2 * n :]], dim=-1), x[:, n:]
                h_pi, h_vf = th.cat([h_pi, x_pi], dim=-1), th.cat([h_vf, x_vf], dim=-1)
            latent_pi, latent_vf = self.mlp_extractor.forward_actor(h_pi), self.mlp_extractor.forward_critic(h_vf)
        else:
            latent_pi, latent_vf = self.mlp_extractor(th.cat([h, x], dim=-1) if self.skip_connection else h)
        if self.action_latent_gain != 1.0:
            latent_pi = latent_pi * self.action_latent_gain
        return self._get_action_dist_from_latent(latent_pi), self.value_net(latent_vf)

    # ------------------------------------------------------------------ acting (one step, no sensitivities)

    def step(
        self,
        obs: PyTorchObs,
        cell_state: th.Tensor,
        episode_starts: th.Tensor,
        prev_actions: th.Tensor | None = None,
        prev_rewards: th.Tensor | None = None,
    ) -> tuple[Distribution, th.Tensor, th.Tensor]:
        """
        One step for a batch of environments.

        :param obs: observations ``(B, ...)``
        :param cell_state: ``(B, N)`` cell state before this step
        :param episode_starts: ``(B,)`` bool or 0/1, True where ``obs`` starts an episode
        :param prev_actions: encoded previous actions, when the policy reads them
        :param prev_rewards: previous rewards, when the policy reads them
        :return: the action distribution, values ``(B, 1)`` and the new cell state ``(B, N)``
        """
        x = self.cell_inputs(obs, prev_actions, prev_rewards)
        starts = episode_starts.to(th.bool).reshape(1, -1)
        h, c = self.cell(x.unsqueeze(0), cell_state, starts)
        try:
            dist, values = self._heads(h[0], x)
        except ValueError as err:
            # torch.distributions rejects NaN parameters; say which input brought the NaN in.
            found = first_non_finite(
                [
                    ("observation", obs),
                    ("previous action", prev_actions),
                    ("previous reward", prev_rewards),
                    ("cell state", cell_state),
                ],
                ("environment",),
            )
            if found is None:
                raise
            raise NonFiniteError(f"non-finite {found} reached the policy") from err
        return dist, values, c

    def forward(  # type: ignore[override]
        self,
        obs: PyTorchObs,
        cell_state: th.Tensor,
        episode_starts: th.Tensor,
        deterministic: bool = False,
        prev_actions: th.Tensor | None = None,
        prev_rewards: th.Tensor | None = None,
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor]:
        """Actions, values, log-probabilities and the new cell state for one step (see :meth:`step`)."""
        dist, values, c = self.step(obs, cell_state, episode_starts, prev_actions, prev_rewards)
        actions = dist.get_actions(deterministic=deterministic)
        log_prob = dist.log_prob(actions)
        actions = actions.reshape((-1, *self.action_space.shape))  # type: ignore[misc]
        return actions, values, log_prob, c

    # ------------------------------------------------------------------ training (one segment)

    def evaluate_segment(
        self,
        obs: PyTorchObs,
        actions: th.Tensor,
        episode_starts: th.Tensor,
        state: RTRLState,
        prev_actions: th.Tensor | None = None,
        prev_rewards: th.Tensor | None = None,
        gradient: Gradient = "rtrl",
        method: Method = "segment",
        backend: Backend = "auto",
        out: RTRLState | None = None,
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor | None, RTRLState]:
        """
        Values, log-probabilities and entropy of a whole rollout segment, with the RTRL gradient attached.

        :param obs: observations, flat ``(T * B, ...)`` in time-major order
        :param actions: actions taken, flat ``(T * B, ...)``
        :param episode_starts: ``(T, B)`` bool
        :param state: carried cell state and sensitivities at the segment start
        :param prev_actions: encoded previous actions ``(T * B, prev_action_dim)``, when read
        :param prev_rewards: previous rewards ``(T * B,)``, when read
        :param gradient: ``"rtrl"`` or ``"tbptt"``
        :param method: ``"segment"`` or ``"step"``
        :param backend: sensitivity backend
        :param out: buffers for the new state (see :func:`sb3_rtrl.rtrl.rtrl_segment`)
        :return: values ``(T * B,)``, log-probabilities ``(T * B,)``, entropy or None, and the new state
        """
        x = self._sequence_inputs(obs, episode_starts, prev_actions, prev_rewards)
        h, new_state = rtrl_segment(
            self.cell, x, episode_starts, state, method=method, gradient=gradient, backend=backend, out=out
        )
        return (*self._sequence_outputs(h, x, actions), new_state)

    def advance_state(
        self,
        obs: PyTorchObs,
        episode_starts: th.Tensor,
        state: RTRLState,
        prev_actions: th.Tensor | None = None,
        prev_rewards: th.Tensor | None = None,
        gradient: Gradient = "rtrl",
        method: Method = "segment",
        backend: Backend = "auto",
        out: RTRLState | None = None,
    ) -> RTRLState:
        """
        The cell state and sensitivities at the end of a segment, without gradients (a PPO rollout's
        sensitivities at the start of each of its chunks). Arguments as :meth:`evaluate_segment`.
        """
        with th.no_grad():
            x = self._sequence_inputs(obs, episode_starts, prev_actions, prev_rewards)
            _, new_state = rtrl_segment(
                self.cell, x, episode_starts, state, method=method, gradient=gradient, backend=backend, out=out
            )
        return new_state

    def evaluate_chunk(
        self,
        obs: PyTorchObs,
        actions: th.Tensor,
        episode_starts: th.Tensor,
        state: RTRLState,
        prev_actions: th.Tensor | None = None,
        prev_rewards: th.Tensor | None = None,
        gradient: Gradient = "rtrl",
        backend: Backend = "auto",
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        """
        Values, log-probabilities and entropy of a segment whose start sensitivities are known (see
        :func:`sb3_rtrl.rtrl.rtrl_replay`): the gradient of :meth:`evaluate_segment` without advancing
        the sensitivities. Arguments as :meth:`evaluate_segment`.
        """
        x = self._sequence_inputs(obs, episode_starts, prev_actions, prev_rewards)
        h = rtrl_replay(self.cell, x, episode_starts, state, gradient=gradient, backend=backend)
        return self._sequence_outputs(h, x, actions)

    def _sequence_inputs(
        self,
        obs: PyTorchObs,
        episode_starts: th.Tensor,
        prev_actions: th.Tensor | None,
        prev_rewards: th.Tensor | None,
    ) -> th.Tensor:
        """The cell's inputs for a segment of flat time-major data, shaped ``(T, B, cell_input_size)``."""
        steps, n_envs = episode_starts.shape
        return self.cell_inputs(obs, prev_actions, prev_rewards).reshape(steps, n_envs, -1)

    def _sequence_outputs(
        self, h: th.Tensor, x: th.Tensor, actions: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        """Values, log-probabilities of ``actions`` and entropy, flat ``(T * B,)``, from the cell's ``(T, B, .)`` output."""
        dist, values = self._heads(h.flatten(0, 1), x.flatten(0, 1))
        return values.flatten(), dist.log_prob(actions), dist.entropy()

    # ------------------------------------------------------------------ SB3's interface

    def predict_values(  # type: ignore[override]
        self,
        obs: PyTorchObs,
        cell_state: th.Tensor,
        episode_starts: th.Tensor,
        prev_actions: th.Tensor | None = None,
        prev_rewards: th.Tensor | None = None,
    ) -> th.Tensor:
        """Values ``(B, 1)`` for one step from the given cell state."""
        return self.step(obs, cell_state, episode_starts, prev_actions, prev_rewards)[1]

    def evaluate_actions(self, obs: PyTorchObs, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        raise NotImplementedError("recurrent policy: use evaluate_segment, which needs the episode starts and the state")

    def get_distribution(self, obs: PyTorchObs) -> Distribution:
        raise NotImplementedError("recurrent policy: use step, which needs the cell state and the episode starts")

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        raise NotImplementedError("recurrent policy: use predict(observation, state, episode_start)")

    def predict(  # type: ignore[override]
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        reward: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """
        Actions and the next recurrent state, with RecurrentPPO's contract.

        :param observation: one observation or a batch (one per environment)
        :param state: the state returned by the previous call, ``None`` for zeros. A tuple of arrays of
            shape ``(1, n_envs, hidden_size)``: the cell state, then the previous action (when the
            policy reads it)
        :param episode_start: ``(n_envs,)``, True where the observation starts a new episode
        :param deterministic: greedy actions
        :param reward: ``(n_envs,)`` rewards received for the previous actions, read only by a policy
            with ``prev_reward=True`` (``evaluate_policy`` cannot pass them: zeros are used, with a warning)
        :return: actions and the next state
        """
        self.set_training_mode(False)
        obs_tensor, vectorized_env = self.obs_to_tensor(observation)
        first = obs_tensor[next(iter(obs_tensor))] if isinstance(obs_tensor, dict) else obs_tensor
        n_envs = first.shape[0]
        shape = self.state_shape(n_envs)
        n_arrays = 1 + int(self.prev_action)
        if state is None:
            state = tuple(
                np.zeros(shape if i == 0 else (1, n_envs, self.prev_action_dim), np.float32) for i in range(n_arrays)
            )
        if not isinstance(state, (tuple, list)) or len(state) != n_arrays:
            raise ValueError(f"state must be a tuple of {n_arrays} arrays as returned by predict, or None")
        if np.shape(state[0]) != shape:
            raise ValueError(
                f"state[0] has shape {np.shape(state[0])}, but {n_envs} observation(s) need {shape}: pass one observation "
                "per environment of the state (a time sequence is not accepted), or state=None"
            )
        if episode_start is None:
            episode_start = np.zeros(n_envs, dtype=bool)
        episode_start = np.asarray(episode_start).reshape(-1)
        if episode_start.dtype.kind not in "biuf":
            # Text such as "False" would read as True.
            raise ValueError(f"episode_start must hold bools (or 0/1), got dtype {episode_start.dtype}: {episode_start[:4]}")
        if episode_start.shape[0] != n_envs:
            raise ValueError(f"episode_start has {episode_start.shape[0]} entries for {n_envs} observation(s)")
        if self.prev_action and np.shape(state[1]) != (1, n_envs, self.prev_action_dim):
            raise ValueError(
                f"state[1] (the previous action) has shape {np.shape(state[1])}, but {n_envs} observation(s) need "
                f"{(1, n_envs, self.prev_action_dim)}: pass the state predict returned, or state=None"
            )
        prev_rewards = None
        if self.prev_reward:
            if reward is None:
                warnings.warn("this policy reads the previous reward but predict() got none: zeros used", stacklevel=2)
                reward = np.zeros(n_envs, dtype=np.float32)
            if np.size(reward) != n_envs:
                raise ValueError(f"reward has {np.size(reward)} entries for {n_envs} observation(s): pass one per environment")
            prev_rewards = th.as_tensor(np.asarray(reward, dtype=np.float32).reshape(-1), device=self.device)
        with th.no_grad():
            starts = th.as_tensor(episode_start.astype(bool), device=self.device)
            cell_state = th.as_tensor(np.asarray(state[0], dtype=np.float32), device=self.device)[0]
            prev_actions = None
            if self.prev_action:
                prev_actions = th.as_tensor(np.asarray(state[1], dtype=np.float32), device=self.device)[0]
                prev_actions = prev_actions * (~starts).float().unsqueeze(-1)
            if prev_rewards is not None:
                prev_rewards = prev_rewards * (~starts).float()
            dist, _, c = self.step(obs_tensor, cell_state, starts, prev_actions, prev_rewards)
            actions = dist.get_actions(deterministic=deterministic)
            new_state = [c.unsqueeze(0).cpu().numpy()]
            if self.prev_action:
                new_state.append(self.encode_actions(actions).unsqueeze(0).cpu().numpy())
        action_shape: tuple[int, ...] = self.action_space.shape or ()
        actions_np = actions.cpu().numpy().reshape((-1, *action_shape))
        if isinstance(self.action_space, spaces.Box):
            if self.squash_output:
                actions_np = self.unscale_action(actions_np)
            else:
                actions_np = np.clip(actions_np, self.action_space.low, self.action_space.high)
        if not vectorized_env:
            actions_np = actions_np.squeeze(axis=0)
        return actions_np, tuple(new_state)


class RTRLActorCriticCnnPolicy(RTRLActorCriticPolicy):
    """:class:`RTRLActorCriticPolicy` with SB3's NatureCNN features extractor (image observations)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", NatureCNN)
        super().__init__(*args, **kwargs)


class RTRLMultiInputActorCriticPolicy(RTRLActorCriticPolicy):
    """:class:`RTRLActorCriticPolicy` with SB3's CombinedExtractor (Dict observations)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("features_extractor_class", CombinedExtractor)
        super().__init__(*args, **kwargs)


MlpELSTMPolicy = RTRLActorCriticPolicy
CnnELSTMPolicy = RTRLActorCriticCnnPolicy
MultiInputELSTMPolicy = RTRLMultiInputActorCriticPolicy

# On the safe-load allowlist, also under the module path that files saved before the move name.
for _policy in (RTRLActorCriticPolicy, RTRLActorCriticCnnPolicy, RTRLMultiInputActorCriticPolicy):
    register_safe_class(_policy, aliases=(f"sb3_rtrl.policies:{_policy.__qualname__}",))
