"""
The copy task (the paper's supervised diagnostic), trained fully online with RTRL.

Each sequence: L random bits (L uniform in 1..max_length), shown one per step; a delimiter step; then L
recall steps on which the model must output the bits in order. Inputs are one-hot over
(bit 0, bit 1, delimiter, recall). B streams run sequences back to back; the cell's state and
sensitivities reset when a stream starts a new sequence; the weights are updated after every token
(M = 1) with the exact RTRL gradient of that token's loss.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch as th
import torch.nn.functional as F
from torch import nn

from sb3_rtrl.cells import ELSTMCell
from sb3_rtrl.rtrl import initial_state, rtrl_segment
from sb3_rtrl.rtrl.backend import Backend

INPUT_SIZE = 4  # bit 0, bit 1, delimiter, recall


def make_sequences(rng: np.random.Generator, max_length: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    ``n`` sequences, padded to ``2 * max_length + 1`` steps.

    :return: input symbols and targets, both ``(n, 2 * max_length + 1)`` (targets -1 where nothing is to be
        output, inputs the recall symbol in the padding), and each sequence's number of steps ``2L + 1``
    """
    lengths = rng.integers(1, max_length + 1, size=n)
    bits = rng.integers(0, 2, size=(n, max_length))
    inputs = np.full((n, 2 * max_length + 1), 3)
    targets = np.full((n, 2 * max_length + 1), -1)
    rows, cols = np.nonzero(np.arange(max_length) < lengths[:, None])
    inputs[rows, cols] = bits[rows, cols]
    inputs[np.arange(n), lengths] = 2
    targets[rows, lengths[rows] + 1 + cols] = bits[rows, cols]
    return inputs, targets, 2 * lengths + 1


def make_sequence(rng: np.random.Generator, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """One sequence: input symbols (2L + 1,) and targets (2L + 1,), -1 where nothing is to be output."""
    inputs, targets, steps = make_sequences(rng, max_length, 1)
    return inputs[0, : steps[0]], targets[0, : steps[0]]


class CopyStreams:
    """
    ``batch_size`` streams of copy-task sequences, run back to back: a stream that finishes a sequence starts a new one.

    :param batch_size: number of streams
    :param max_length: the longest sequence that will be asked for
    :param rng: random generator of the sequences
    """

    def __init__(self, batch_size: int, max_length: int, rng: np.random.Generator) -> None:
        self.rng = rng
        self.max_length = max_length
        self.inputs = np.zeros((batch_size, 2 * max_length + 1), dtype=np.int64)
        self.targets = np.zeros_like(self.inputs)
        self.steps = np.zeros(batch_size, dtype=np.int64)  # of each stream's current sequence
        self.pos = np.zeros(batch_size, dtype=np.int64)  # tokens of it returned so far
        self.sequences = 0  # sequences started
        self._rows = np.arange(batch_size)

    def next_token(self, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """
        Every stream's next token; streams that finished a sequence first start one of length up to ``length``.

        :return: input symbols, targets (-1 where nothing is to be output) and sequence-start flags, each ``(batch_size,)``
        """
        if not 1 <= length <= self.max_length:
            raise ValueError(f"length must be in 1..{self.max_length} (these streams' max_length), got {length}")
        done = self.pos == self.steps
        if done.any():
            n = int(done.sum())
            inputs, targets, self.steps[done] = make_sequences(self.rng, length, n)
            self.inputs[done, : inputs.shape[1]], self.targets[done, : inputs.shape[1]] = inputs, targets
            self.pos[done] = 0
            self.sequences += n
        token = self.inputs[self._rows, self.pos], self.targets[self._rows, self.pos], self.pos == 0
        self.pos += 1
        return token

    def history(self) -> tuple[np.ndarray, np.ndarray]:
        """
        The tokens returned so far of every stream's current sequence, right-aligned: the last row is the latest token.

        :return: input symbols and sequence-start flags, both ``(T, batch_size)`` with T the longest history; rows before
            a sequence's start hold the recall symbol and are cut off by its start flag
        """
        longest = int(self.pos.max())
        index = self.pos[:, None] - longest + np.arange(longest)
        symbols = np.where(index >= 0, self.inputs[self._rows[:, None], np.clip(index, 0, None)], 3)
        return symbols.T, (index == 0).T


class CopyModel(nn.Module):
    """One eLSTM layer and a linear readout of two logits."""

    def __init__(self, hidden_size: int, forget_bias: float = 0.0) -> None:
        super().__init__()
        self.cell = ELSTMCell(INPUT_SIZE, hidden_size, forget_bias=forget_bias)
        self.readout = nn.Linear(hidden_size, 2)


def falling_rate(initial: float) -> Callable[[int], float]:
    """A learning rate for ``train_copy_task`` that is ``initial`` at length 2 and falls as ``1 / length``."""
    if initial <= 0:
        raise ValueError(f"the learning rate must be positive, got {initial}")
    return lambda length: initial * 2 / max(length, 2)


@dataclass
class CopyResult:
    tokens: int
    sequences: int
    seconds: float
    accuracy: float  # sequence accuracy of the final evaluation
    # (length, tokens per stream) whenever the evaluation at that length met the curriculum's threshold (or, at
    # max_length, the target): how many updates each length took
    reached: list[tuple[int, int]] = field(default_factory=list)
    model: CopyModel | None = field(default=None, repr=False)  # the trained model (see ``recall_errors``)


@th.no_grad()
def _recall(model: CopyModel, max_length: int, n_sequences: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """The model's outputs on fresh sequences: predictions, targets (both ``(n, 2 * max_length + 1)``) and steps."""
    inputs, targets, steps = make_sequences(rng, max_length, n_sequences)
    device = model.readout.weight.device
    x = F.one_hot(th.as_tensor(inputs.T, device=device), INPUT_SIZE).float()
    starts = th.zeros(x.shape[:2], dtype=th.bool, device=device)
    h, _ = model.cell(x, th.zeros(n_sequences, model.cell.state_size, device=device), starts)
    return model.readout(h).argmax(-1).cpu().numpy().T, targets, steps


def evaluate(model: CopyModel, max_length: int, n_sequences: int, rng: np.random.Generator) -> float:
    """Sequence accuracy (all bits recalled) on fresh sequences of lengths 1..max_length, weights fixed."""
    pred, targets, _ = _recall(model, max_length, n_sequences, rng)
    return float(((pred == targets) | (targets < 0)).all(axis=1).mean())


def recall_errors(model: CopyModel, max_length: int, n_sequences: int, rng: np.random.Generator) -> np.ndarray:
    """
    Where recall fails: the error rate of each recalled bit by sequence length and position, weights fixed.

    :param model: the model to evaluate (e.g. ``CopyResult.model``)
    :param max_length: longest sequence; lengths are uniform in 1..max_length
    :param n_sequences: fresh sequences to draw (spread over the lengths)
    :param rng: random generator of the sequences
    :return: ``(max_length, max_length)`` array whose ``[L - 1, k]`` entry is the share of sequences of length L
        whose bit k (from 0) was recalled wrong; NaN where ``k >= L`` or no sequence of length L was drawn
    """
    pred, targets, steps = _recall(model, max_length, n_sequences, rng)
    lengths = (steps - 1) // 2
    errors = np.full((max_length, max_length), np.nan)
    for length in np.unique(lengths):
        rows = lengths == length
        recall = slice(length + 1, 2 * length + 1)
        errors[length - 1, :length] = (pred[rows, recall] != targets[rows, recall]).mean(axis=0)
    return errors


def train_copy_task(
    max_length: int = 20,
    hidden_size: int = 128,
    batch_size: int = 32,
    learning_rate: float | Callable[[int], float] = 3e-3,
    max_tokens: int = 2_000_000,
    target_accuracy: float = 1.0,
    eval_every: int = 500,
    eval_sequences: int = 500,
    seed: int = 0,
    device: str = "cpu",
    backend: Backend = "auto",
    curriculum: bool = False,
    curriculum_threshold: float = 0.98,
    forget_bias: float = 0.0,
    max_grad_norm: float | None = None,
    verbose: bool = True,
) -> CopyResult:
    """
    Train fully online (an update after every token) until the evaluation reaches ``target_accuracy``.

    :param max_length: longest sequence (T); lengths are uniform in 1..T
    :param hidden_size: eLSTM size (the paper used 2048, for up to 500 bits and 500 recall steps)
    :param batch_size: parallel streams
    :param learning_rate: Adam learning rate, or a function of the current (curriculum) length returning it, such
        as ``falling_rate(1e-2)``, which learned faster here than any constant rate (not because of stale
        sensitivities: per-token updates with exactly recomputed gradients learned no faster)
    :param max_tokens: stop after this many steps per stream
    :param target_accuracy: stop once the sequence accuracy reaches it
    :param eval_every: steps between evaluations
    :param eval_sequences: sequences per evaluation
    :param seed: random seed
    :param device: "cpu" or "cuda"
    :param backend: sensitivity backend ("auto", "torch", "cupy")
    :param curriculum: start with sequences of length up to 2 and add one whenever the evaluation at the
        current length reaches ``curriculum_threshold``; training stops only when the evaluation at
        ``max_length`` reaches ``target_accuracy``
    :param curriculum_threshold: accuracy at which the curriculum moves to the next length
    :param forget_bias: added to the forget gate's bias at initialisation. 0 (the paper's code for this task)
        learns much faster here than a long initial memory: +3 and a spread of time scales were slower
    :param max_grad_norm: clip the global gradient norm to this (None: no clipping)
    :param verbose: print progress
    """
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    if not callable(learning_rate) and learning_rate <= 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate}")
    if max_grad_norm is not None and max_grad_norm <= 0:
        raise ValueError(f"max_grad_norm must be positive (or None for no clipping), got {max_grad_norm}")
    th.manual_seed(seed)
    rng = np.random.default_rng(seed)
    eval_rng = np.random.default_rng(seed + 1)
    model = CopyModel(hidden_size, forget_bias).to(device)
    lr_at = learning_rate if callable(learning_rate) else lambda _: learning_rate
    state = initial_state(model.cell, batch_size)
    spare = initial_state(model.cell, batch_size)
    length = min(2, max_length) if curriculum else max_length
    optimizer = th.optim.Adam(model.parameters(), lr=lr_at(length))
    streams = CopyStreams(batch_size, max_length, rng)
    start = time.perf_counter()
    accuracy, step = 0.0, 0
    reached: list[tuple[int, int]] = []
    for step in range(1, max_tokens + 1):
        symbols, labels, first = streams.next_token(length)
        x = F.one_hot(th.as_tensor(symbols, device=device), INPUT_SIZE).float().unsqueeze(0)
        y = th.as_tensor(labels, device=device)
        starts = th.as_tensor(first, device=device).unsqueeze(0)
        h, new_state = rtrl_segment(model.cell, x, starts, state, backend=backend, out=spare)
        mask = y >= 0
        if mask.any():
            loss = F.cross_entropy(model.readout(h[0][mask]), y[mask], reduction="sum") / batch_size
            optimizer.zero_grad()
            loss.backward()
            if max_grad_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
        spare, state = state, new_state
        if step % eval_every == 0:
            accuracy = evaluate(model, length, eval_sequences, eval_rng)
            if verbose:
                rate = step * batch_size / (time.perf_counter() - start)
                print(
                    f"tokens/stream {step:>8}  sequences {streams.sequences:>8}  length <= {length:<5} "
                    f"accuracy {accuracy:6.1%}  ({rate:,.0f} tokens/s)",
                    flush=True,
                )
            if length == max_length and accuracy >= target_accuracy:
                reached.append((length, step))
                break
            if length < max_length and accuracy >= curriculum_threshold:
                reached.append((length, step))
                length += 1
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(length)
    return CopyResult(step * batch_size, streams.sequences, time.perf_counter() - start, accuracy, reached, model)
