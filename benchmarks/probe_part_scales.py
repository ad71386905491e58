"""
How large each part of a mixed layer's output is, and what scaling a part's output before the heads does to learning.

``measure``: RTRLPPO at RecurrentPPO's defaults (hidden 256, one cell that actor and critic share) acts with its
untrained policy for 400 steps of 8 environments of each task; prints, per part (eLSTM, RTU, gated units), the mean
absolute output and the mean over units of its standard deviation over time and environments.

``compare``: runs ``sb3-rtrl compare`` (its own arguments follow) in this process with every policy's cell output
multiplied, part by part, by ``--scales`` (eLSTM, RTU, gated) before the heads read it. A probe of the design (it
patches the policy's private ``_heads``). The package's own keyword scales the eLSTM part:
``policy_kwargs=dict(cell_kwargs=dict(elstm_output_scale=4.0))`` is bit-identical to ``--scales 4 1 1``. Needs
``--jobs 1`` (runs in other processes would not be patched). ``--freeze-gated`` keeps the gated units' parameters at
their init (their gradients are zeroed before each optimizer step); ``--zero-gate-weights`` starts their gate input
weights ``G`` at zero, so that their decays do not depend on the input at init; ``--squash-gated`` makes the heads
read ``tanh`` of the gated outputs (after the scales). With a critic cell (two groups of units), ``--group 0`` or
``--group 1`` applies the scales to the actor's or the critic's units only. Two other reads of the eLSTM part:
``--straight-through`` makes the heads read the cell's own read (``read_out``: ``"mixed_gated_v3"``'s normalized eLSTM
outputs) while the loss's gradient reaches the outputs as if they were read as they are; ``--read-both G`` widens the
heads' first layer so that they read the outputs as they are and, beside them, the eLSTM part normalized over its units
times ``G`` (one group of units only). ``--split-heads`` gives each part its own MLP (``net_arch``, reading that part and,
with the skip connection, the cell's input) and sums their latents before the action and value layers, so that no
part's variation reaches another part's first layer (one group of units only); ``--split-heads 0/12`` reads the eLSTM
part with one MLP and the RTU and gated parts together with another (parts 0, 1, 2 as in ``--scales``);
``--split-mean`` averages the latents instead of summing them.
``--learned-gains K`` multiplies each part's outputs (after ``--scales``) by a learned gain ``exp(K p)``, one ``p`` a part
starting at 0 and trained with the policy (the optimizer moves ``p`` by about its learning rate a step, so ``K`` sets
how fast a gain can move); ``--learned-shares K`` by ``3 softmax(K p)`` instead, gains that start at 1 and always sum
to 3; one group of units only. ``--latent-scales PI VF`` multiplies the latents (after ``--split-heads``' sum or mean)
by ``PI`` before the action layer and by ``VF`` before the value layer, after the policy's own ``action_latent_gain``
(2 in RTRLPPO's default network: name ``action_latent_gain=1.0`` to scale SB3's head).

    OMP_NUM_THREADS=1 python benchmarks/probe_part_scales.py measure --cell mixed_gated popgym-CountRecallEasy-v0
        [--cell-kwargs "{'elstm_output_scale': 4.0}"]
    OMP_NUM_THREADS=1 python benchmarks/probe_part_scales.py compare --scales 1 0.25 0.25 [--group G]
        [--freeze-gated] [--zero-gate-weights] [--squash-gated] [--straight-through] [--read-both G]
        [--split-heads [SETS] [--split-mean]] [--learned-gains K | --learned-shares K] [--latent-scales PI VF] -- --env
        popgym-CountRecallEasy-v0 --learners rtrl_ppo --steps 100000 --seeds 2 --jobs 1 --out DIR
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
from functools import partial

import numpy as np
import torch as th
from stable_baselines3.common.torch_layers import MlpExtractor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import setup_threads  # noqa: E402

from sb3_rtrl import RTRLPPO  # noqa: E402
from sb3_rtrl.cells.mixed import MixedCell  # noqa: E402
from sb3_rtrl.common.recurrent import policies  # noqa: E402
from sb3_rtrl.envs.factory import make_env  # noqa: E402

PARTS = ("eLSTM", "RTU", "gated")


def untrained_outputs(task: str, cell: str, cell_kwargs: dict, steps: int) -> tuple[th.Tensor, RTRLPPO]:
    """The cell's outputs ``(steps * 8, N)`` while the untrained policy acts on 8 environments of ``task``."""
    env = make_env(task, n_envs=8, seed=0)
    model = RTRLPPO("MlpLstmPolicy", env, seed=0, device="cpu", policy_kwargs=dict(cell=cell, cell_kwargs=cell_kwargs))
    outputs: list[th.Tensor] = []
    forward = model.policy.cell.forward

    def recorded(*args, **kwargs):
        h, c = forward(*args, **kwargs)
        outputs.append(h.detach())
        return h, c

    model.policy.cell.forward = recorded  # type: ignore[method-assign]
    obs, state, starts = env.reset(), None, np.ones(env.num_envs, dtype=bool)
    for _ in range(steps):
        actions, state = model.predict(obs, state, starts)
        obs, _, starts, _ = env.step(actions)
    env.close()
    return th.cat(outputs).reshape(-1, model.policy.cell.state_size), model


def measure(tasks: list[str], cell: str, cell_kwargs: dict, steps: int = 400) -> None:
    for task in tasks:
        h, model = untrained_outputs(task, cell, cell_kwargs, steps)
        print(f"{task}, {cell}: {model.policy.cell.extra_repr()}")
        for name, part in zip(PARTS, model.policy.cell.split_parts(h)):
            size, mean, std = part.shape[-1], float(part.abs().mean()), float(part.std(0).mean())
            print(f"  {name:5s} {size:4d} reals: mean |h| {mean:.3f}, std over time {std:.3f}")


def patch_heads(scales: list[float], group: int | None = None, squash_gated: bool = False) -> None:
    original = policies.RTRLActorCriticPolicy._heads

    factors: dict[tuple[int, int, th.dtype], th.Tensor] = {}

    def scaled_heads(self, h: th.Tensor, x: th.Tensor):
        # Built once per policy and dtype, not at every acting step.
        key = (id(self), h.shape[-1], h.dtype)
        if key not in factors:
            parts = self.cell.split_parts(th.ones(1, h.shape[-1], dtype=h.dtype, device=h.device))
            factor = self.cell.join_parts([part * scale for part, scale in zip(parts, scales)])[0]
            if group is not None:
                if self.cell.groups != 2:
                    raise ValueError("--group needs a critic cell (policy_kwargs=dict(enable_critic_lstm=True))")
                # The other group's units are read unscaled.
                factor = factor.unflatten(-1, (2, -1)).clone()
                factor[1 - group] = 1.0
                factor = factor.flatten()
            factors[key] = factor
        h = h * factors[key]
        if squash_gated:
            parts = list(self.cell.split_parts(h))
            parts[2] = th.tanh(parts[2])
            h = self.cell.join_parts(parts)
        return original(self, h, x)

    policies.RTRLActorCriticPolicy._heads = scaled_heads  # type: ignore[method-assign]


def patch_gated(freeze: bool, zero_gate_weights: bool) -> None:
    original = policies.RTRLActorCriticPolicy.__init__

    def patched(self, *args, **kwargs):
        original(self, *args, **kwargs)
        gated = getattr(self.cell, "gated", None)
        if gated is None:
            raise ValueError("--freeze-gated and --zero-gate-weights need a cell with gated units")
        if zero_gate_weights:
            with th.no_grad():
                gated.weight_ih[gated.state_size :].zero_()
        if freeze:
            frozen = list(gated.parameters())

            def zero_grads(optimizer, args, kwargs):
                for p in frozen:
                    if p.grad is not None:
                        p.grad.zero_()

            # Adam from zero moments with zero gradients moves nothing.
            self.optimizer.register_step_pre_hook(zero_grads)

    policies.RTRLActorCriticPolicy.__init__ = patched  # type: ignore[method-assign]


def patch_straight_through() -> None:
    original = MixedCell.read_out

    def straight_through(self, h: th.Tensor) -> th.Tensor:
        read = original(self, h)
        # Forward: the cell's read; backward: the identity, as for outputs read as they are.
        return h if read is h else h + (read - h).detach()

    MixedCell.read_out = straight_through  # type: ignore[method-assign]


def check_one_group(policy: policies.RTRLActorCriticPolicy, option: str) -> None:
    if policy.cell.groups != 1:
        raise ValueError(f"{option}: one group of units only (no critic cell)")


def remake_optimizer(policy: policies.RTRLActorCriticPolicy) -> None:
    # The optimizer was made over the old modules: make it again, as the policy does after making its cell.
    params = [p for p in policy.parameters() if p.requires_grad]
    policy.optimizer = policy.optimizer_class(params, lr=policy.optimizer.param_groups[0]["lr"], **policy.optimizer_kwargs)


def patch_read_both(gain: float) -> None:
    init, heads = policies.RTRLActorCriticPolicy.__init__, policies.RTRLActorCriticPolicy._heads

    def widened(self, *args, **kwargs):
        init(self, *args, **kwargs)
        check_one_group(self, "--read-both")
        if getattr(self.cell, "elstm_read_norm", None):
            raise ValueError(
                "--read-both reads the outputs as they are beside the normalized part: not with a normalized read"
            )
        extra = self.cell.split_parts(th.zeros(1, self.cell.state_size))[0].shape[-1]
        # The width the policy gives its MLP (the cell's output, and its input beside it with the skip), plus the extra.
        width = self.hidden_size + (self.read_size if self.skip_connection else 0) + extra
        self.mlp_extractor = MlpExtractor(width, self.net_arch, self.activation_fn, device=self.device)
        if self.ortho_init:
            self.mlp_extractor.apply(partial(self.init_weights, gain=np.sqrt(2)))
        remake_optimizer(self)

    def both(self, h: th.Tensor, x: th.Tensor):
        elstm = self.cell.split_parts(h)[0]
        return heads(self, th.cat([h, th.nn.functional.layer_norm(elstm, (elstm.shape[-1],)) * gain], dim=-1), x)

    policies.RTRLActorCriticPolicy.__init__ = widened  # type: ignore[method-assign]
    policies.RTRLActorCriticPolicy._heads = both  # type: ignore[method-assign]


def patch_split_heads(spec: str, mean: bool = False) -> None:
    try:
        sets = [[int(part) for part in chunk] for chunk in spec.split("/")]
    except ValueError as err:
        raise SystemExit(f"--split-heads {spec!r}: sets of the parts 0, 1, 2 apart by '/', such as 0/12") from err
    if sorted(sum(sets, [])) != [0, 1, 2] or not all(sets):
        raise SystemExit(f"--split-heads {spec!r}: each of the parts 0, 1, 2 in one set, such as 0/12")
    init = policies.RTRLActorCriticPolicy.__init__

    def split(self, *args, **kwargs):
        init(self, *args, **kwargs)
        check_one_group(self, "--split-heads")
        extra = self.read_size if self.skip_connection else 0
        parts = [part.shape[-1] for part in self.cell.split_parts(th.zeros(1, self.cell.state_size))]
        widths = [sum(parts[i] for i in chunk) for chunk in sets]
        self.mlp_extractor = th.nn.ModuleList(
            [MlpExtractor(width + extra, self.net_arch, self.activation_fn, device=self.device) for width in widths]
        )
        if self.ortho_init:
            self.mlp_extractor.apply(partial(self.init_weights, gain=np.sqrt(2)))
        remake_optimizer(self)

    def heads(self, h: th.Tensor, x: th.Tensor):
        latent_pi, latent_vf = 0.0, 0.0
        parts = self.cell.split_parts(self.cell.read_out(h))
        for extractor, chunk in zip(self.mlp_extractor, sets):
            part = th.cat([parts[i] for i in chunk], dim=-1)
            pi, vf = extractor(th.cat([part, x], dim=-1) if self.skip_connection else part)
            latent_pi, latent_vf = latent_pi + pi, latent_vf + vf
        if mean:
            latent_pi, latent_vf = latent_pi / len(sets), latent_vf / len(sets)
        return self._get_action_dist_from_latent(latent_pi), self.value_net(latent_vf)

    policies.RTRLActorCriticPolicy.__init__ = split  # type: ignore[method-assign]
    policies.RTRLActorCriticPolicy._heads = heads  # type: ignore[method-assign]


def patch_learned_gains(speed: float, shares: bool) -> None:
    init, heads = policies.RTRLActorCriticPolicy.__init__, policies.RTRLActorCriticPolicy._heads

    def with_gains(self, *args, **kwargs):
        init(self, *args, **kwargs)
        check_one_group(self, "--learned-gains and --learned-shares")
        self.part_log_gains = th.nn.Parameter(th.zeros(3, device=self.device))
        remake_optimizer(self)
        steps = [0]

        def report(optimizer, args, kwargs):
            steps[0] += 1
            if steps[0] % 2000 == 0:
                gains = part_gains(self.part_log_gains.detach()).tolist()
                print(f"learned gains after {steps[0]} steps: " + ", ".join(f"{g:.3f}" for g in gains), file=sys.stderr)

        self.optimizer.register_step_post_hook(report)

    def part_gains(p: th.Tensor) -> th.Tensor:
        return 3 * th.softmax(speed * p, dim=0) if shares else th.exp(speed * p)

    def gained(self, h: th.Tensor, x: th.Tensor):
        gains = part_gains(self.part_log_gains).to(h.dtype)
        h = self.cell.join_parts([part * gain for part, gain in zip(self.cell.split_parts(h), gains)])
        return heads(self, h, x)

    policies.RTRLActorCriticPolicy.__init__ = with_gains  # type: ignore[method-assign]
    policies.RTRLActorCriticPolicy._heads = gained  # type: ignore[method-assign]


def patch_latent_scales(pi: float, vf: float) -> None:
    init, dist = policies.RTRLActorCriticPolicy.__init__, policies.RTRLActorCriticPolicy._get_action_dist_from_latent

    def with_scales(self, *args, **kwargs):
        init(self, *args, **kwargs)
        # value_net reads only the latent, so a pre-hook scales what every caller gives it.
        self.value_net.register_forward_pre_hook(lambda module, inputs: (inputs[0] * vf,))

    def scaled(self, latent_pi: th.Tensor):
        return dist(self, latent_pi * pi)

    policies.RTRLActorCriticPolicy.__init__ = with_scales  # type: ignore[method-assign]
    policies.RTRLActorCriticPolicy._get_action_dist_from_latent = scaled  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    measure_parser = sub.add_parser("measure")
    measure_parser.add_argument("tasks", nargs="+")
    measure_parser.add_argument("--cell", default="mixed_gated")
    measure_parser.add_argument("--cell-kwargs", default="{}", help="the cell's keywords as a Python dict literal")
    compare_parser = sub.add_parser("compare")
    compare_parser.add_argument("--scales", type=float, nargs=3, required=True, metavar=("ELSTM", "RTU", "GATED"))
    compare_parser.add_argument("--group", type=int, choices=(0, 1), help="scale only the actor's (0) or critic's (1) units")
    compare_parser.add_argument("--freeze-gated", action="store_true")
    compare_parser.add_argument("--zero-gate-weights", action="store_true")
    compare_parser.add_argument("--squash-gated", action="store_true", help="the heads read tanh of the gated outputs")
    compare_parser.add_argument(
        "--straight-through", action="store_true", help="the cell's read forward, the outputs' own gradient backward"
    )
    compare_parser.add_argument(
        "--read-both", type=float, metavar="G", help="the raw outputs and the eLSTM part normalized x G"
    )
    compare_parser.add_argument(
        "--split-heads",
        nargs="?",
        const="0/1/2",
        metavar="SETS",
        help="each set of parts read by its own MLP, their latents summed (default: each part alone, 0/1/2)",
    )
    compare_parser.add_argument("--split-mean", action="store_true", help="with --split-heads: average the latents")
    gains = compare_parser.add_mutually_exclusive_group()
    gains.add_argument("--learned-gains", type=float, metavar="K", help="each part read times a gain exp(K p), p from 0")
    gains.add_argument("--learned-shares", type=float, metavar="K", help="each part read times 3 softmax(K p), p from 0")
    compare_parser.add_argument(
        "--latent-scales", type=float, nargs=2, metavar=("PI", "VF"), help="the latents times PI and VF before the heads"
    )
    compare_parser.add_argument("compare_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    setup_threads()
    if args.mode == "measure":
        measure(args.tasks, args.cell, ast.literal_eval(args.cell_kwargs))
        return
    from sb3_rtrl.cli import main as cli_main

    speed = args.learned_gains if args.learned_gains is not None else args.learned_shares
    if args.read_both is not None and (args.split_heads is not None or speed is not None):
        raise SystemExit("--read-both widens the read that --split-heads and learned gains split into parts: not with them")
    if args.split_mean and args.split_heads is None:
        raise SystemExit("--split-mean averages the latents of --split-heads: give --split-heads too")
    if args.split_heads is not None:
        patch_split_heads(args.split_heads, args.split_mean)
    if speed is not None:
        # Before the scales' patch, which then scales the outputs before the gains.
        patch_learned_gains(speed, shares=args.learned_shares is not None)
    if args.read_both is not None:
        # Before the scales' patch, which then scales the outputs read as they are, not the wider read.
        patch_read_both(args.read_both)
    patch_heads(args.scales, args.group, args.squash_gated)
    if args.latent_scales is not None:
        patch_latent_scales(*args.latent_scales)
    if args.straight_through:
        patch_straight_through()
    if args.freeze_gated or args.zero_gate_weights:
        patch_gated(args.freeze_gated, args.zero_gate_weights)
    rest = [a for a in args.compare_args if a != "--"]
    sys.argv = ["sb3-rtrl", "compare", *rest]
    sys.exit(cli_main())


if __name__ == "__main__":
    main()
