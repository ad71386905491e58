"""``sb3-rtrl check``: show that segment RTRL is exact and what it costs, in a few seconds."""

from __future__ import annotations

import time

import numpy as np
import torch as th

from sb3_rtrl.cells import ELSTMCell
from sb3_rtrl.rtrl import initial_state, rtrl_segment
from sb3_rtrl.rtrl.segment import Gradient, Method


def _grad(p: th.Tensor) -> th.Tensor:
    assert p.grad is not None, "a parameter the loss reaches"
    return p.grad


def gradient_agreement(steps: int = 400, batch: int = 3, seed: int = 0) -> dict[str, float]:
    """
    Relative error of summed segment-RTRL gradients against autograd over the whole uncut sequence (fp64).

    :param steps: sequence length
    :param batch: number of sequences
    :param seed: random seed
    :return: parameter name -> relative error, for method "segment" and "step"
    """
    th.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cell = ELSTMCell(6, 8, forget_bias=1.0, dtype=th.float64)
    x = th.randn(steps, batch, 6, dtype=th.float64)
    starts = th.rand(steps, batch) < 0.02
    readout = th.randn(steps, batch, 8, dtype=th.float64)
    h, _ = cell.reference_scan(x, th.zeros(batch, 8, dtype=th.float64), starts)
    (h * readout).sum().backward()
    ref = {name: _grad(p).clone() for name, p in cell.named_parameters()}
    cuts = [0, *sorted(rng.choice(np.arange(1, steps), size=steps // 10, replace=False).tolist()), steps]
    errors = {}
    methods: tuple[Method, ...] = ("segment", "step")
    for method in methods:
        cell.zero_grad()
        state = initial_state(cell, batch)
        for a, b in zip(cuts[:-1], cuts[1:]):
            h, state = rtrl_segment(cell, x[a:b], starts[a:b], state, method=method)
            (h * readout[a:b]).sum().backward()
        for name, p in cell.named_parameters():
            errors[f"{method}:{name}"] = float((_grad(p) - ref[name]).norm() / ref[name].norm())
    return errors


def update_times(hidden: int = 256, inputs: int = 64, batch: int = 16, steps: int = 50, repeats: int = 5) -> dict[str, float]:
    """Median seconds of one update (forward, backward, advance) per method/gradient, float32."""
    th.manual_seed(0)
    cell = ELSTMCell(inputs, hidden)
    x = th.randn(steps, batch, inputs)
    starts = th.zeros(steps, batch, dtype=th.bool)
    state = initial_state(cell, batch)
    _, state = rtrl_segment(cell, x, starts, state)
    spare = initial_state(cell, batch)
    variants: dict[str, tuple[Method, Gradient]] = {
        "rtrl segment": ("segment", "rtrl"),
        "rtrl step": ("step", "rtrl"),
        "tbptt": ("segment", "tbptt"),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats + 1):
        for key, (method, gradient) in variants.items():
            t0 = time.perf_counter()
            cell.zero_grad()
            h, _ = rtrl_segment(cell, x, starts, state, method=method, gradient=gradient, out=spare)
            h.sum().backward()
            times[key].append(time.perf_counter() - t0)
    return {k: float(np.median(v[1:])) for k, v in times.items()}


def main() -> None:
    print("Exactness: segment RTRL vs autograd BPTT over the whole sequence (float64, 400 steps, resets, 40 cuts)")
    for key, err in gradient_agreement().items():
        print(f"  {key:<26} relative error {err:.2e}")
    print("\nOne update, N=256 D=64 B=16 M=50, float32 on", "cuda" if th.cuda.is_available() else "cpu")
    times = update_times()
    for key, t in times.items():
        print(f"  {key:<14} {t * 1e3:7.1f} ms")
    step_ratio = times["rtrl step"] / times["rtrl segment"]
    print(f"  step/segment {step_ratio:.2f}x, rtrl/tbptt {times['rtrl segment'] / times['tbptt']:.2f}x")
