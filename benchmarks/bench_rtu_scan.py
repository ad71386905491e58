"""
The RTU's linear recurrence over a training sequence, as a step-by-step loop and as a log-depth scan, at the widths
(batch * units complex states per step) and lengths that training meets; the RTU takes the scan up to
``sb3_rtrl.cells.rtu.SCAN_MAX_STATES`` states. Prints the median time of each (interleaved rounds, one thread).

    OMP_NUM_THREADS=1 python benchmarks/bench_rtu_scan.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import sys

import torch as th

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import interleaved_medians, setup_threads  # noqa: E402

from sb3_rtrl.cells.rtu import SCAN_MAX_STATES, _linear_loop, _linear_scan  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    setup_threads()
    th.manual_seed(0)
    print(f"complex64, threads=1, median of {args.repeats} interleaved rounds; the RTU scans up to {SCAN_MAX_STATES} states")
    for steps in (16, 128):
        for states in (32, 128, 256, 512, 1024, 4096):
            a = th.polar(0.5 + 0.5 * th.rand(steps, 1, states), 6.3 * th.rand(steps, 1, states)).to(th.complex64)
            b = th.randn(steps, 1, states, dtype=th.complex64)
            th.testing.assert_close(_linear_scan(a, b), _linear_loop(a, b), rtol=1e-4, atol=1e-5)
            fns = {"loop": lambda a=a, b=b: _linear_loop(a, b), "scan": lambda a=a, b=b: _linear_scan(a, b)}
            med = interleaved_medians(fns, args.repeats)
            print(
                f"  T={steps:4d} states={states:5d}: loop {med['loop'] * 1e3:7.3f} ms, scan {med['scan'] * 1e3:7.3f} ms "
                f"(scan {med['loop'] / med['scan']:.2f}x the loop's speed)"
            )


if __name__ == "__main__":
    main()
