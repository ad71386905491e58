"""
Time of one RTRL training update (forward + backward + sensitivity advance) on this machine.

Prints, measured side by side in one run: method="step" over method="segment", and gradient="rtrl"
over gradient="tbptt", at the paper's DMLab shape (N=512, D=257, B=32) for M = 10, 50, 100, plus a
breakdown of where the time of a segment-RTRL update goes, for any registered cell (``--cell``).

    OMP_NUM_THREADS=1 python benchmarks/bench_rtrl_update.py [--repeats 5] [--device cpu] [--cell elstm]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch as th

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import interleaved_medians, setup_threads  # noqa: E402

from sb3_rtrl.cells import CELLS  # noqa: E402
from sb3_rtrl.rtrl import initial_state, rtrl_segment, torch_ops  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--input", type=int, default=257)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--cell", default="elstm", choices=sorted(CELLS))
    args = parser.parse_args()
    setup_threads()
    dev = th.device(args.device)
    sync = th.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    th.manual_seed(0)
    cell = CELLS[args.cell].cls(args.input, args.hidden, device=dev)
    n, d, b = args.hidden, args.input, args.batch
    print(f"cell={args.cell} device={dev} threads={th.get_num_threads()} N={n} D={d} B={b} float32 backend={args.backend}")
    rows = []
    for m in args.steps:
        x = th.randn(m, b, d, device=dev)
        starts = th.rand(m, b, device=dev) < 0.01
        readout = th.randn(m, b, n, device=dev)
        state = initial_state(cell, b)
        # Non-zero sensitivities, as in a running training.
        _, state = rtrl_segment(cell, x, starts, state)
        spare = initial_state(cell, b)  # the second buffer a training loop alternates with

        def update(method: str, gradient: str, x=x, starts=starts, state=state, spare=spare, readout=readout) -> None:
            cell.zero_grad(set_to_none=True)
            h, _ = rtrl_segment(cell, x, starts, state, method=method, gradient=gradient, backend=args.backend, out=spare)
            (h * readout).sum().backward()
            sync()

        fns = {
            "step": lambda: update("step", "rtrl"),
            "segment": lambda: update("segment", "rtrl"),
            "tbptt": lambda: update("segment", "tbptt"),
        }
        med = interleaved_medians(fns, repeats=args.repeats)
        rows.append((m, med))

    print()
    print(f"{'M':>5} {'step ms':>9} {'segment ms':>11} {'tbptt ms':>9} {'step/segment':>13} {'rtrl/tbptt':>11}")
    for m, med in rows:
        print(
            f"{m:>5} {med['step'] * 1e3:>9.1f} {med['segment'] * 1e3:>11.1f} {med['tbptt'] * 1e3:>9.1f} "
            f"{med['step'] / med['segment']:>13.1f} {med['segment'] / med['tbptt']:>11.2f}"
        )

    # Where a segment-RTRL update spends its time, at the largest M.
    m = max(args.steps)
    x = th.randn(m, b, d, device=dev)
    starts = th.zeros(m, b, dtype=th.bool, device=dev)
    state = initial_state(cell, b)
    _, state = rtrl_segment(cell, x, starts, state)
    kinds = tuple(s.kind for s in cell.rtrl_specs)
    # The gradient at c(0) as the engine sees it: per complex unit for a complex state.
    g = th.randn(b, n // 2, device=dev, dtype=th.complex64) if cell.complex_state else th.randn(b, n, device=dev)
    spare = initial_state(cell, b)
    parts: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        h, _, terms = cell.scan(x, state.c, starts, need_terms=True)
        sync()
        t1 = time.perf_counter()
        h.sum().backward()
        sync()
        t2 = time.perf_counter()
        with th.no_grad():
            torch_ops.segment_advance(kinds, state.sensitivities, terms, out=spare.sensitivities)
        sync()
        t3 = time.perf_counter()
        torch_ops.inject(kinds, state.sensitivities, g)
        sync()
        t4 = time.perf_counter()
        with th.no_grad():
            torch_ops.step_advance(kinds, state.sensitivities, terms, out=spare.sensitivities)
        sync()
        t5 = time.perf_counter()
        steps = (
            ("forward (with terms)", t1 - t0),
            ("backward", t2 - t1),
            ("advance (segment)", t3 - t2),
            ("inject", t4 - t3),
            ("advance (step)", t5 - t4),
        )
        for key, val in steps:
            parts.setdefault(key, []).append(val)
    print(f"\nbreakdown of one segment-RTRL update at M={m} (median ms):")
    meds = {key: sorted(vals)[len(vals) // 2] for key, vals in parts.items()}
    for key, val in meds.items():
        print(f"  {key:<22} {val * 1e3:8.1f}")
    print(f"  advance alone, step/segment: {meds['advance (step)'] / meds['advance (segment)']:.1f}x")


if __name__ == "__main__":
    main()
