"""
Copy task with the labels of the paper's public reference code: what its "100% accuracy" measures.

The reference code (IDSIA/rtrl-elstm, diagnostic/) writes each example as text: the input is L random bits,
then "2" tokens up to 2T steps; the target is L "2" tokens, the L bits, then "2" tokens. Its vocabulary
numbers the target tokens in the order they first appear, and every target line begins with "2", so "2"
(print nothing) is class 0, the first bit value seen is class 1 and the other bit value is class 2. The
code passes index 2 as the padding index: the loss ignores it and the accuracy counts it as correct. So one
bit value is never trained nor checked, and a model that outputs class 1 for exactly L steps after the
bits (and class 0 elsewhere) scores 100%: it must count L, not remember the bits.

This script trains the eLSTM as that code does (aligned batches of 2T-step sequences, state reset per
batch, an Adam update after every token, exact RTRL), with those labels, and prints after every batch:

- ``reference metric``: the reference code's sequence accuracy (class 2 targets count as correct)
- ``true copy``: the share of sequences whose every output is right, both bit values included

    OMP_NUM_THREADS=1 python benchmarks/copy_task_reference_labels.py [--bits 50] [--minutes 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch as th
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import setup_threads  # noqa: E402

from sb3_rtrl.cells import ELSTMCell  # noqa: E402
from sb3_rtrl.rtrl import initial_state, rtrl_segment  # noqa: E402

SPACE = 2  # the input and target token "2"
# Target class of the tokens "0", "1", "2" as the reference code's vocabulary numbers them: "2" first.
REFERENCE_CLASS = np.array([1, 2, 0])
IGNORED = 2  # the reference code's padding index: left out of the loss, counted correct by the accuracy


def make_batch(rng: np.random.Generator, bits: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` examples as the reference generator makes them: input and target tokens, both ``(2 * bits, n)``."""
    lengths = rng.integers(1, bits + 1, size=n)
    pattern = rng.integers(0, 2, size=(n, bits))
    inputs = np.full((n, 2 * bits), SPACE)
    targets = np.full((n, 2 * bits), SPACE)
    rows, cols = np.nonzero(np.arange(bits) < lengths[:, None])
    inputs[rows, cols] = pattern[rows, cols]
    targets[rows, lengths[rows] + cols] = pattern[rows, cols]
    return inputs.T, targets.T


class Model(nn.Module):
    """One eLSTM layer on one-hot tokens and a linear readout of the three target classes."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.cell = ELSTMCell(3, hidden_size)
        self.readout = nn.Linear(hidden_size, 3)


def scores(pred: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """
    The reference code's sequence accuracy and the true copy accuracy of predicted classes.

    :param pred: predicted classes, ``(2 * bits, n)``
    :param targets: target tokens, ``(2 * bits, n)``
    :return: the share of sequences right by the reference metric (class ``IGNORED`` counts as right) and by all
        outputs
    """
    labels = REFERENCE_CLASS[targets]
    return float(((pred == labels) | (labels == IGNORED)).all(0).mean()), float((pred == labels).all(0).mean())


@th.no_grad()
def accuracies(model: Model, bits: int, n: int, rng: np.random.Generator) -> tuple[float, float]:
    """:func:`scores` of the model on ``n`` fresh examples."""
    inputs, targets = make_batch(rng, bits, n)
    x = F.one_hot(th.as_tensor(inputs), 3).float()
    h, _ = model.cell(x, th.zeros(n, model.cell.state_size), th.zeros(x.shape[:2], dtype=th.bool))
    return scores(model.readout(h).argmax(-1).numpy(), targets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bits", type=int, default=50, help="longest pattern (the reference code's 'level': 50 or 500)")
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--minutes", type=float, default=10.0, help="stop after this long, or at 100% reference metric")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.bits < 1 or args.hidden_size < 1 or args.batch_size < 1:
        parser.error("--bits, --hidden-size and --batch-size must be >= 1")
    setup_threads()
    th.manual_seed(args.seed)
    rng, eval_rng = np.random.default_rng(args.seed), np.random.default_rng(args.seed + 1)
    model = Model(args.hidden_size)
    optimizer = th.optim.Adam(model.parameters(), lr=args.learning_rate)
    batch = args.batch_size
    starts = th.zeros(1, batch, dtype=th.bool)  # a fresh zero state per batch: no resets inside it
    print(f"bits {args.bits} hidden {args.hidden_size} batch {batch} lr {args.learning_rate} threads {th.get_num_threads()}")
    start, tokens = time.perf_counter(), 0
    while time.perf_counter() - start < args.minutes * 60:
        inputs, targets = make_batch(rng, args.bits, batch)
        x = F.one_hot(th.as_tensor(inputs), 3).float()
        y = th.as_tensor(REFERENCE_CLASS[targets])
        state, spare = initial_state(model.cell, batch), initial_state(model.cell, batch)
        for t in range(x.shape[0]):
            h, new_state = rtrl_segment(model.cell, x[t : t + 1], starts, state, out=spare)
            if (y[t] != IGNORED).any():
                loss = F.cross_entropy(model.readout(h[0]), y[t], ignore_index=IGNORED)
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
            spare, state = state, new_state
            tokens += 1
        reference, true = accuracies(model, args.bits, 500, eval_rng)
        print(
            f"{time.perf_counter() - start:7.0f} s  tokens {tokens:>8}  reference metric {reference:6.1%}  "
            f"true copy {true:6.1%}",
            flush=True,
        )
        if reference == 1.0:
            break


if __name__ == "__main__":
    main()
