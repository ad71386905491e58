"""Learning curves from SB3 Monitor logs (``monitor.csv``), drawn with matplotlib."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from stable_baselines3.common.monitor import get_monitor_files
from stable_baselines3.common.results_plotter import load_results

PROGRESS_KEYS = {"r": "rollout/ep_rew_mean", "is_success": "rollout/success_rate"}


def load_curve(folder: str, key: str = "r") -> tuple[np.ndarray, np.ndarray]:
    """
    A learning curve from a run folder: its Monitor logs (``*.monitor.csv``, one value per episode) or,
    failing those, SB3's ``progress.csv`` (one value per log interval).

    :param folder: the run's folder
    :param key: ``"r"`` (episode reward) or ``"is_success"``; another Monitor column or progress key
    :return: timesteps and values
    """
    if not os.path.isdir(folder):
        raise ValueError(f"no folder {folder}")
    if not get_monitor_files(folder):
        progress = os.path.join(folder, "progress.csv")
        if not os.path.isfile(progress):
            raise ValueError(f"no Monitor log (*.monitor.csv) and no progress.csv in {folder}")
        frame = pd.read_csv(progress)
        column = PROGRESS_KEYS.get(key, key)
        if column not in frame.columns or "time/total_timesteps" not in frame.columns:
            raise ValueError(f"{progress} has no column {column!r}")
        frame = frame.dropna(subset=[column])
        return frame["time/total_timesteps"].to_numpy(), frame[column].to_numpy(dtype=float)
    frame = load_results(folder)
    if key not in frame.columns:
        raise ValueError(f"the Monitor logs in {folder} have no column {key!r} (columns: {list(frame.columns)})")
    return np.cumsum(frame["l"].to_numpy()), frame[key].to_numpy(dtype=float)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` episodes (shorter at the start)."""
    if len(values) == 0:
        return values
    cumsum = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (cumsum[idx] - cumsum[lo]) / (idx - lo)


def plot_curves(runs: dict[str, str], path: str, key: str = "r", window: int = 100, title: str | None = None) -> str:
    """
    Draw one smoothed learning curve per run into a PNG.

    :param runs: label -> Monitor log folder
    :param path: output ``.png`` path
    :param key: monitor column (``"r"`` for the episode reward, ``"is_success"`` for the success rate)
    :param window: moving-average window in episodes
    :param title: figure title
    :return: the path written
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, folder in runs.items():
        x, y = load_curve(folder, key)
        ax.plot(x, smooth(y, window), label=label)
    ax.set_xlabel("environment steps")
    ax.set_ylabel({"r": "episode reward", "is_success": "success rate"}.get(key, key) + f" (mean of {window} episodes)")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
