"""
The registered cells side by side: time of one RTRL training update and of its TBPTT counterpart, and the size
of the carried sensitivities, at the paper's Atari shape (hidden 256, 257 inputs, 32 sequences, M = 50).

Each cell is timed at the same ``hidden`` (the width of its state and output; the RTU's ``hidden // 2`` complex
units), with the same inputs, interleaved in one run.

    OMP_NUM_THREADS=1 python benchmarks/bench_cells.py [--repeats 7] [--device cpu|cuda] [--cpu-paths] [--cells elstm rtu]

``--cpu-paths`` also times each cell's RTRL update with the loops of small operations a CPU takes where a GPU takes
fewer, larger ones (the Jacobians' reverse products, the RTU and gated units' recurrences, the complex injection, the
eLSTM's recurrence as CUDA kernels), interleaved with the device's own choice.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch as th

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import interleaved_medians, setup_threads  # noqa: E402

from sb3_rtrl.cells import CELLS  # noqa: E402
from sb3_rtrl.cells import kernels as cell_kernels  # noqa: E402
from sb3_rtrl.rtrl import initial_state, rtrl_segment  # noqa: E402


def with_cpu_paths(fn):
    """``fn`` run the CPU's ways: the device test answering "not launch-bound", and no cell kernels."""

    def run() -> None:
        saved = cell_kernels.launch_bound, cell_kernels.usable_for
        cell_kernels.launch_bound = cell_kernels.usable_for = lambda tensor: False
        try:
            fn()
        finally:
            cell_kernels.launch_bound, cell_kernels.usable_for = saved

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--input", type=int, default=257)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cpu-paths", action="store_true", help="also time the RTRL update with the CPU's paths")
    parser.add_argument("--cells", nargs="+", default=sorted(CELLS), choices=sorted(CELLS), help="registered cells to time")
    args = parser.parse_args()
    setup_threads()
    dev = th.device(args.device)
    sync = th.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    n, d, b, m = args.hidden, args.input, args.batch, args.steps
    print(f"device={dev} threads={th.get_num_threads()} hidden={n} D={d} B={b} M={m} float32")
    th.manual_seed(0)
    x = th.randn(m, b, d, device=dev)
    starts = th.rand(m, b, device=dev) < 0.01
    readout = th.randn(m, b, n, device=dev)
    fns, info = {}, {}
    for name in args.cells:
        entry = CELLS[name]
        cell = entry.cls(d, n, device=dev, **entry.policy_defaults)  # as the policies build it
        state = initial_state(cell, b)
        _, state = rtrl_segment(cell, x, starts, state)  # non-zero sensitivities, as in a running training
        spare = initial_state(cell, b)
        params = sum(p.numel() for p in cell.parameters())
        mib = sum(s.numel() * s.element_size() for s in state.sensitivities) / b / 2**20
        info[name] = (params, mib)

        def update(gradient: str, cell=cell, state=state, spare=spare) -> None:
            cell.zero_grad(set_to_none=True)
            h, _ = rtrl_segment(cell, x, starts, state, gradient=gradient, out=spare)
            (h * readout).sum().backward()
            sync()

        fns[f"{name} rtrl"] = lambda update=update: update("rtrl")
        fns[f"{name} tbptt"] = lambda update=update: update("tbptt")
        if args.cpu_paths:
            fns[f"{name} rtrl-cpu-paths"] = with_cpu_paths(lambda update=update: update("rtrl"))
    med = interleaved_medians(fns, repeats=args.repeats)
    width = max(map(len, ["cell", *info]))
    print(f"\n{'cell':<{width}} {'parameters':>11} {'S MiB/seq':>10} {'rtrl ms':>9} {'tbptt ms':>9} {'rtrl/tbptt':>11}")
    for name, (params, mib) in info.items():
        r, t = med[f"{name} rtrl"], med[f"{name} tbptt"]
        line = f"{name:<{width}} {params:>11,} {mib:>10.2f} {r * 1e3:>9.1f} {t * 1e3:>9.1f} {r / t:>11.2f}"
        if args.cpu_paths:
            c = med[f"{name} rtrl-cpu-paths"]
            line += f"   rtrl with the CPU's paths {c * 1e3:.1f} ms ({c / r:.2f}x)"
        print(line)


if __name__ == "__main__":
    main()
