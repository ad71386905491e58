"""
Two checkouts of sb3_rtrl side by side in one process: each registered cell's acting step (one step for 8 envs
without autograd), one PPO minibatch's replay (a 128-step sequence, forward and backward) and a 16-step RTRL segment
for 8 envs (forward, sensitivities and backward), from each checkout in turn. Says whether the two give bit-identical
outputs, gradients and sensitivities, then prints the median time of each and the median of the per-round ratios
old / new. Loading both in one process, interleaved, keeps the comparison paired on a noisy machine.

    OMP_NUM_THREADS=1 python benchmarks/bench_code_versions.py OLD_ROOT NEW_ROOT [--cells elstm mixed_gated]

OLD_ROOT and NEW_ROOT are directories that hold an ``sb3_rtrl`` package (``git worktree add /tmp/old <commit>``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import torch as th

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import setup_threads  # noqa: E402

INPUTS, ACT_ENVS, REPLAY_STEPS, SEGMENT_STEPS = 5, 8, 128, 16
CASES = {"act": 200, "replay": 10, "segment": 20}  # calls per timed round


def load(root: str) -> tuple[ModuleType, ModuleType, ModuleType]:
    """The registry, engine and state modules of the ``sb3_rtrl`` package under ``root`` (any loaded one is dropped)."""
    for name in [name for name in sys.modules if name == "sb3_rtrl" or name.startswith("sb3_rtrl.")]:
        del sys.modules[name]
    sys.path.insert(0, os.path.abspath(root))
    try:
        importlib.import_module("sb3_rtrl.cells")
        registry = importlib.import_module("sb3_rtrl.cells.registry")
        engine = importlib.import_module("sb3_rtrl.rtrl")
        state = importlib.import_module("sb3_rtrl.rtrl.state")
    finally:
        sys.path.pop(0)
    if not os.path.abspath(str(registry.__file__)).startswith(os.path.abspath(root)):
        raise SystemExit(f"{root}: sb3_rtrl was imported from {registry.__file__} instead")
    return registry, engine, state


def cases(modules: tuple[ModuleType, ModuleType, ModuleType], name: str, hidden: int) -> dict[str, Callable[[], Any]]:
    """The three timed calls for one cell (two groups of ``hidden``, the policies' layout), each returning its results."""
    registry, engine, state = modules
    th.manual_seed(0)
    entry = registry.cell_entry(name)
    cell = entry.cls(INPUTS, 2 * hidden, groups=2, **entry.policy_defaults)
    x_act, c_act = th.randn(1, ACT_ENVS, INPUTS), th.randn(ACT_ENVS, 2 * hidden)
    starts_act = th.zeros(1, ACT_ENVS, dtype=th.bool)
    x = th.randn(REPLAY_STEPS, 1, INPUTS)
    starts = th.zeros(REPLAY_STEPS, 1, dtype=th.bool)
    starts[REPLAY_STEPS // 3, 0] = True
    with th.no_grad():
        _, start = engine.rtrl_segment(cell, x, starts, state.initial_state(cell, 1))
    grad_h = th.randn(REPLAY_STEPS, 1, 2 * hidden)
    x_seg, starts_seg = th.randn(SEGMENT_STEPS, ACT_ENVS, INPUTS), th.zeros(SEGMENT_STEPS, ACT_ENVS, dtype=th.bool)
    zero = state.initial_state(cell, ACT_ENVS)

    def act() -> list[th.Tensor]:
        with th.no_grad():
            return [cell.scan(x_act, c_act, starts_act)[0]]

    def replay() -> list[th.Tensor]:
        cell.zero_grad(set_to_none=True)
        h = engine.rtrl_replay(cell, x, starts, start)
        h.backward(grad_h)
        return [h.detach()] + [p.grad for p in cell.parameters() if p.grad is not None]

    def segment() -> list[th.Tensor]:
        cell.zero_grad(set_to_none=True)
        h, end = engine.rtrl_segment(cell, x_seg, starts_seg, zero)
        h.sum().backward()
        return [h.detach(), end.c, *end.sensitivities] + [p.grad for p in cell.parameters() if p.grad is not None]

    return {"act": act, "replay": replay, "segment": segment}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old_root")
    parser.add_argument("new_root")
    parser.add_argument("--cells", nargs="+", default=["elstm", "mixed_gated"])
    parser.add_argument("--hidden", type=int, default=256, help="each group's (head's) width")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    setup_threads()
    # The old checkout's cells keep their modules alive after the new checkout replaces them in sys.modules.
    old_modules = load(args.old_root)
    calls = {("old", cell): cases(old_modules, cell, args.hidden) for cell in args.cells}
    new_modules = load(args.new_root)
    calls.update({("new", cell): cases(new_modules, cell, args.hidden) for cell in args.cells})

    for cell in args.cells:
        for case in CASES:
            old, new = calls[("old", cell)][case](), calls[("new", cell)][case]()
            same = len(old) == len(new) and all(th.equal(a, b) for a, b in zip(old, new))
            print(f"{cell} {case}: {'bit-identical' if same else 'DIFFERENT'}")

    times: dict[tuple[str, str, str], list[float]] = {}
    for round_ in range(args.rounds):
        order = ("old", "new") if round_ % 2 == 0 else ("new", "old")
        for cell in args.cells:
            for case, repeats in CASES.items():
                for version in order:
                    fn = calls[(version, cell)][case]
                    start = time.perf_counter()
                    for _ in range(repeats):
                        fn()
                    times.setdefault((version, cell, case), []).append((time.perf_counter() - start) / repeats * 1e6)
    print(f"hidden {args.hidden} per head, two heads; {args.rounds} interleaved rounds; microseconds per call")
    for cell in args.cells:
        for case in CASES:
            old, new = times[("old", cell, case)], times[("new", cell, case)]
            ratio = statistics.median(a / b for a, b in zip(old, new))
            print(
                f"  {cell:12s} {case:8s} old {statistics.median(old):9.1f}  new {statistics.median(new):9.1f}"
                f"  old/new {ratio:.3f}"
            )


if __name__ == "__main__":
    main()
