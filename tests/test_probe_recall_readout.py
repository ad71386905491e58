"""``benchmarks/probe_recall_readout.py``: its reads of the layer's states, and a short run of the script."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


@pytest.fixture
def probe(monkeypatch):
    monkeypatch.syspath_prepend(BENCHMARKS)
    import probe_recall_readout

    return probe_recall_readout


def test_a_state_that_holds_the_cue_is_read_and_sized(probe):
    rng = np.random.default_rng(0)
    cues = rng.integers(3, size=300)
    noise = rng.normal(size=(300, 4))
    assert probe.probe_accuracy(np.c_[np.eye(3)[cues], noise], cues, 3) == 1.0
    assert probe.probe_accuracy(noise, cues, 3) < 0.5
    # The one-hot cue alone: the class means are the unit vectors, each sqrt(2/3) from their mean; nothing within.
    between, within = probe.between_within(np.eye(3)[cues], cues, 3)
    assert between == pytest.approx(np.sqrt(2 / 3)) and within == 0.0
    # A small cue beside four units of noise: within near 2 (sqrt of 4 unit variances), between far below.
    between, within = probe.between_within(np.c_[0.1 * np.eye(3)[cues], noise], cues, 3)
    assert between < 0.2 and within == pytest.approx(2.0, rel=0.1)


def test_the_best_unit_is_the_one_that_holds_the_cue_cleanly_however_small(probe):
    rng = np.random.default_rng(1)
    cues = rng.integers(3, size=600)
    clean = 0.01 * (cues == 0) + 0.001 * rng.normal(size=600)
    unit, ratio, between = probe.best_unit(
        np.c_[rng.normal(size=(600, 3)), clean, np.eye(3)[cues] + rng.normal(size=(600, 3))], cues, 3
    )
    # Class means 0.01, 0, 0 about their mean 0.01 / 3: an RMS distance of 0.01 sqrt(2) / 3.
    assert unit == 3 and ratio > 3 and between == pytest.approx(0.01 * np.sqrt(2) / 3, rel=0.1)


def test_the_script_reports_each_evaluation():
    command = [sys.executable, os.path.join(BENCHMARKS, "probe_recall_readout.py"), "--steps", "256", "--eval-every", "128"]
    command += ["--episodes", "30", "--delay", "5", "--eval-episodes", "2", "--n-envs", "2", "--n-steps", "4"]
    out = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    rows = [line for line in out.stdout.splitlines() if " return " in line]
    assert [int(row.split()[0]) for row in rows] == [128, 256]
    for row in rows:
        assert "probe eLSTM" in row and "gated" in row and "logits" in row and "best unit" in row
