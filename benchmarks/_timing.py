"""Shared timing helpers for the benchmark scripts: interleaved repeats, medians, one torch thread."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import torch as th


def setup_threads() -> None:
    """One torch thread: on the project's 2-core machines it is as fast as two and far steadier."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    th.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def interleaved_medians(fns: dict[str, Callable[[], None]], repeats: int, warmup: int = 1) -> dict[str, float]:
    """
    Median wall time (s) of each function, timed in rounds so that machine noise hits all alike.

    :param fns: name -> function to time (synchronises itself if it uses a GPU)
    :param repeats: number of rounds
    :param warmup: untimed rounds first
    :return: name -> median seconds
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}
