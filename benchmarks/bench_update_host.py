"""
Where one RTRL update's time goes on a GPU: the host's time to enqueue it, the time to its end, the GPU's busy time
(torch's profiler) and the kernel launches it makes, per cell, at the paper's Atari shape (hidden 256, 257 inputs, 32
sequences, M = 50, float32). An update whose enqueue time is close to its total is bound by the host (Python and
launch overhead), not by the GPU's work.

    python benchmarks/bench_update_host.py [--cells elstm rtu gated mixed_gated_v2] [--repeats 20]
"""

from __future__ import annotations

import argparse
import time

import torch as th

from sb3_rtrl.cells import CELLS
from sb3_rtrl.rtrl import initial_state, rtrl_segment

LAUNCHES = ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernelEx")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", nargs="+", default=["elstm", "rtu", "gated", "mixed_gated_v2"], choices=sorted(CELLS))
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    if not th.cuda.is_available():
        raise SystemExit("bench_update_host.py needs a CUDA device")
    th.manual_seed(0)
    dev = th.device("cuda")
    m, b, d, n = 50, 32, 257, 256
    x = th.randn(m, b, d, device=dev)
    starts = th.rand(m, b, device=dev) < 0.01
    readout = th.randn(m, b, n, device=dev)
    print(f"device={th.cuda.get_device_name()} hidden={n} D={d} B={b} M={m} float32, medians of {args.repeats}")
    for name in args.cells:
        entry = CELLS[name]
        cell = entry.cls(d, n, device=dev, **entry.policy_defaults)
        state = initial_state(cell, b)
        _, state = rtrl_segment(cell, x, starts, state)  # non-zero sensitivities, as in a running training
        spare = initial_state(cell, b)
        for gradient in ("rtrl", "tbptt"):

            def update(gradient: str = gradient, cell=cell, state=state, spare=spare) -> None:
                cell.zero_grad(set_to_none=True)
                h, _ = rtrl_segment(cell, x, starts, state, gradient=gradient, out=spare)
                (h * readout).sum().backward()

            for _ in range(5):
                update()
            th.cuda.synchronize()
            enqueue, total = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                update()
                enqueued = time.perf_counter()
                th.cuda.synchronize()
                enqueue.append(enqueued - start)
                total.append(time.perf_counter() - start)
            with th.profiler.profile(activities=[th.profiler.ProfilerActivity.CPU, th.profiler.ProfilerActivity.CUDA]) as prof:
                update()
                th.cuda.synchronize()
            events = prof.key_averages()
            busy = sum(event.self_device_time_total for event in events) / 1e3
            launches = sum(event.count for event in events if event.key in LAUNCHES)
            enqueue.sort()
            total.sort()
            print(
                f"{name:16s} {gradient:5s} enqueue {enqueue[len(enqueue) // 2] * 1e3:6.2f} ms  "
                f"total {total[len(total) // 2] * 1e3:6.2f} ms  GPU busy {busy:6.2f} ms  launches {launches}"
            )


if __name__ == "__main__":
    main()
