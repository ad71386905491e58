"""The copy-task labels of the paper's reference code (benchmarks/copy_task_reference_labels.py) score counting."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from copy_task_reference_labels import REFERENCE_CLASS, SPACE, make_batch, scores  # noqa: E402


def test_reference_generator_layout():
    inputs, targets = make_batch(np.random.default_rng(0), 6, 200)
    assert inputs.shape == targets.shape == (12, 200)
    for x, y in zip(inputs.T, targets.T):
        length = int((x != SPACE).sum())
        assert 1 <= length <= 6 and (x[length:] == SPACE).all()
        np.testing.assert_array_equal(y[length : 2 * length], x[:length])
        assert (y[:length] == SPACE).all() and (y[2 * length :] == SPACE).all()


def test_counting_scores_full_marks_on_the_reference_metric_only():
    """Class 1 for L steps after the bits, "print nothing" elsewhere: no bit remembered, 100% by the reference metric."""
    bits, n = 20, 2000
    inputs, targets = make_batch(np.random.default_rng(1), bits, n)
    lengths = (inputs != SPACE).sum(0)
    steps = np.arange(2 * bits)[:, None]
    counting = np.where((steps >= lengths) & (steps < 2 * lengths), 1, 0)
    reference, true = scores(counting, targets)
    assert reference == 1.0
    # Right only where every bit is 0: sum over L of 2^-L / bits, about 5% at 20 bits.
    assert abs(true - (1 - 0.5**bits) / bits) < 0.02
    # Copying scores full marks on both; the check of the true metric sees one wrong bit.
    copying = REFERENCE_CLASS[targets]
    assert scores(copying, targets) == (1.0, 1.0)
    copying[lengths[0], 0] = 3 - copying[lengths[0], 0]  # flip the first recalled bit of sequence 0
    assert scores(copying, targets)[1] == (n - 1) / n
