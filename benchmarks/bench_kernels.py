"""
CUDA kernels against the torch path and against the memory-bandwidth ceiling (needs a GPU and CuPy).

Prints, measured in one run with CUDA events (medians):
- effective bandwidth of the segment-advance kernel (bytes of S read and written / time) over a
  device-to-device copy of the same bytes;
- its speedup over the torch path, eager and torch.compile'd, for S_Z and S_F together;
- the train-step ratio gradient="rtrl" / "tbptt" with the kernels;
at the paper's DMLab shape (N=512, D=257, B=32, M=100) and Atari shape (N=256, D=257, B=32, M=50).

    python benchmarks/bench_kernels.py [--repeats 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch as th

from sb3_rtrl.cells import ELSTMCell
from sb3_rtrl.rtrl import initial_state, kernels, rtrl_segment, torch_ops

SHAPES = {"DMLab": (512, 257, 32, 100), "Atari": (256, 257, 32, 50)}


def cuda_time(fn, repeats: int, warmup: int = 5) -> float:
    """Median milliseconds of ``fn`` timed with CUDA events."""
    for _ in range(warmup):
        fn()
    th.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = th.cuda.Event(enable_timing=True), th.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile'd torch path")
    args = parser.parse_args()
    if not th.cuda.is_available() or kernels.unavailable_reason() is not None:
        sys.exit(f"bench_kernels needs a CUDA GPU and CuPy: {kernels.unavailable_reason() or 'no CUDA device'}")
    print(f"device: {th.cuda.get_device_name()}, torch {th.__version__}, float32, {args.repeats} repeats (medians)")

    compiled = None if args.no_compile else th.compile(torch_functional)
    for label, shape in SHAPES.items():
        bench_advance(label, *shape, repeats=args.repeats, compiled=compiled)
        bench_train_step(*shape, repeats=max(args.repeats // 5, 5))


def torch_functional(s0: th.Tensor, p: th.Tensor, qa: th.Tensor, v: th.Tensor) -> th.Tensor:
    """The torch path's segment advance without ``out=`` (for torch.compile)."""
    b, r, _ = s0.shape
    n = p.shape[1]
    out = th.bmm(qa.permute(1, 2, 0), v.permute(1, 0, 2))
    return out + (s0.view(b, r // n, n, -1) * p.view(b, 1, n, 1)).view(b, r, -1)


def bench_advance(label: str, n: int, d: int, b: int, m: int, repeats: int, compiled) -> None:
    from sb3_rtrl.rtrl.kernels import cupy_ops

    r = 2 * n
    # Rotate among input sets so that repeated runs do not just measure the L2 cache.
    sets = [
        (
            th.randn(b, r, d, device="cuda"),
            th.rand(b, n, device="cuda"),
            th.randn(m, b, r, device="cuda"),
            th.randn(m, b, d, device="cuda"),
            th.empty(b, r, d, device="cuda"),
        )
        for _ in range(3)
    ]
    turn = [0]

    def rotate():
        turn[0] = (turn[0] + 1) % len(sets)
        return sets[turn[0]]

    def kernel_run():
        cupy_ops.outer_segment(*rotate())

    def torch_run():
        torch_ops.TORCH_OUTER.segment(*rotate())

    def compiled_run():
        compiled(*rotate()[:4])

    def copy_run():
        s0, *_, out = rotate()
        out.copy_(s0)

    t_kernel = cuda_time(kernel_run, repeats)
    t_torch = cuda_time(torch_run, repeats)
    t_compiled = cuda_time(compiled_run, repeats) if compiled is not None else float("nan")
    t_copy = cuda_time(copy_run, repeats)
    s_bytes = 2 * b * r * d * 4  # S(0) read once, S(M) written once
    bw_kernel, bw_copy = s_bytes / t_kernel / 1e6, s_bytes / t_copy / 1e6
    print(f"\n{label}: N={n} D={d} B={b} M={m}, S_Z and S_F = {b * r * d * 4 / 2**20:.0f} MiB")
    print(f"  segment advance kernel {t_kernel:8.3f} ms  {bw_kernel:7.0f} GB/s effective")
    print(f"  device-to-device copy  {t_copy:8.3f} ms  {bw_copy:7.0f} GB/s")
    print(f"  kernel / copy bandwidth {bw_kernel / bw_copy:.2f}")
    print(f"  torch eager            {t_torch:8.3f} ms  -> kernel speedup {t_torch / t_kernel:.2f}x")
    print(f"  torch.compile          {t_compiled:8.3f} ms  -> kernel speedup {t_compiled / t_kernel:.2f}x")

    # The other two operations, kernel against torch: the step advance (all M steps) and the injection.
    kernel_ops = torch_ops.OuterOps(segment=cupy_ops.outer_segment, step=cupy_ops.outer_step, inject=cupy_ops.outer_inject)
    jacs = [th.rand(m, b, n, device="cuda") for _ in sets]

    def step_run(ops):
        s0, _, qa, v, out = rotate()
        ops.step(s0, jacs[turn[0]], qa, v, out)

    def inject_run(ops):
        s0, p, *_ = rotate()
        ops.inject(s0, p)

    for name, fn in (("step advance", step_run), ("injection", inject_run)):
        t_k = cuda_time(lambda fn=fn: fn(kernel_ops), repeats)
        t_t = cuda_time(lambda fn=fn: fn(torch_ops.TORCH_OUTER), repeats)
        print(f"  {name:<14} kernel {t_k:8.3f} ms, torch {t_t:8.3f} ms -> kernel speedup {t_t / t_k:.2f}x")


def bench_train_step(n: int, d: int, b: int, m: int, repeats: int) -> None:
    th.manual_seed(0)
    cell = ELSTMCell(d, n, device="cuda")
    x = th.randn(m, b, d, device="cuda")
    starts = th.zeros(m, b, dtype=th.bool, device="cuda")
    readout = th.randn(m, b, n, device="cuda")
    _, carried = rtrl_segment(cell, x, starts, initial_state(cell, b), backend="cupy")
    spare = initial_state(cell, b)

    def step(gradient: str, backend: str) -> None:
        cell.zero_grad(set_to_none=True)
        h, _ = rtrl_segment(cell, x, starts, carried, gradient=gradient, backend=backend, out=spare)
        (h * readout).sum().backward()

    t_cupy = cuda_time(lambda: step("rtrl", "cupy"), repeats)
    t_torch = cuda_time(lambda: step("rtrl", "torch"), repeats)
    t_tbptt = cuda_time(lambda: step("tbptt", "torch"), repeats)
    print(f"  train step: rtrl (kernels) {t_cupy:.2f} ms, rtrl (torch) {t_torch:.2f} ms, tbptt {t_tbptt:.2f} ms")
    print(f"  rtrl/tbptt with the kernels {t_cupy / t_tbptt:.2f}x")


if __name__ == "__main__":
    main()
