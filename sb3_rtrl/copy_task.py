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
from dataclasses import dataclass

import numpy as np
import torch as th
import torch.nn.functional as F
from torch import nn

from sb3_rtrl.cells import ELSTMCell
from sb3_rtrl.rtrl import initial_state, rtrl_segment

INPUT_SIZE = 4  # bit 0, bit 1, delimiter, recall


def make_sequence(rng: np.random.Generator, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """One sequence: input symbols (2L + 1,) and targets (2L + 1,), -1 where nothing is to be output."""
    length = int(rng.integers(1, max_length + 1))
    bits = rng.integers(0, 2, size=length)
    inputs = np.concatenate([bits, [2], np.full(length, 3)])
    targets = np.concatenate([np.full(length + 1, -1), bits])
    return inputs, targets


class CopyModel(nn.Module):
    """One eLSTM layer and a linear readout of two logits."""

    def __init__(self, hidden_size: int, forget_bias: float = 3.0) -> None:
        super().__init__()
        self.cell = ELSTMCell(INPUT_SIZE, hidden_size, forget_bias=forget_bias)
        self.readout = nn.Linear(hidden_size, 2)


@dataclass
class CopyResult:
    tokens: int
    sequences: int
    seconds: float
    accuracy: float  # sequence accuracy of the final evaluation


@th.no_grad()
def evaluate(model: CopyModel, max_length: int, n_sequences: int, rng: np.random.Generator) -> float:
    """Sequence accuracy (all bits recalled) on fresh sequences of lengths 1..max_length, weights fixed."""
    seqs = [make_sequence(rng, max_length) for _ in range(n_sequences)]
    steps = 2 * max_length + 1
    inputs = np.full((steps, n_sequences), 3)
    targets = np.full((steps, n_sequences), -1)
    for b, (x, y) in enumerate(seqs):
        inputs[: len(x), b], targets[: len(y), b] = x, y
    device = model.readout.weight.device
    x = F.one_hot(th.as_tensor(inputs, device=device), INPUT_SIZE).float()
    starts = th.zeros(steps, n_sequences, dtype=th.bool, device=device)
    h, _ = model.cell(x, th.zeros(n_sequences, model.cell.hidden_size, device=device), starts)
    pred = model.readout(h).argmax(-1).cpu().numpy()
    mask = targets >= 0
    correct = ((pred == targets) | ~mask).all(axis=0)
    return float(correct.mean())


def train_copy_task(
    max_length: int = 20,
    hidden_size: int = 128,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    max_tokens: int = 2_000_000,
    target_accuracy: float = 1.0,
    eval_every: int = 2000,
    eval_sequences: int = 500,
    seed: int = 0,
    device: str = "cpu",
    backend: str = "auto",
    curriculum: bool = False,
    curriculum_threshold: float = 0.98,
    verbose: bool = True,
) -> CopyResult:
    """
    Train fully online (an update after every token) until the evaluation reaches ``target_accuracy``.

    :param max_length: longest sequence (T); lengths are uniform in 1..T
    :param hidden_size: eLSTM size (the paper used 2048 for T up to 1000)
    :param batch_size: parallel streams
    :param learning_rate: Adam learning rate
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
    :param verbose: print progress
    """
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    th.manual_seed(seed)
    rng = np.random.default_rng(seed)
    eval_rng = np.random.default_rng(seed + 1)
    model = CopyModel(hidden_size).to(device)
    optimizer = th.optim.Adam(model.parameters(), lr=learning_rate)
    state = initial_state(model.cell, batch_size)
    spare = initial_state(model.cell, batch_size)
    length = min(2, max_length) if curriculum else max_length
    streams = [make_sequence(rng, length) for _ in range(batch_size)]
    pos = np.zeros(batch_size, dtype=int)
    start = time.perf_counter()
    sequences, accuracy, step = 0, 0.0, 0
    for step in range(1, max_tokens + 1):
        symbols = np.array([s[0][p] for s, p in zip(streams, pos)])
        targets = th.as_tensor(np.array([s[1][p] for s, p in zip(streams, pos)]), device=device)
        starts = th.as_tensor(pos == 0, device=device).unsqueeze(0)
        x = F.one_hot(th.as_tensor(symbols, device=device), INPUT_SIZE).float().unsqueeze(0)
        h, new_state = rtrl_segment(model.cell, x, starts, state, backend=backend, out=spare)
        mask = targets >= 0
        if mask.any():
            loss = F.cross_entropy(model.readout(h[0][mask]), targets[mask], reduction="sum") / batch_size
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        spare, state = state, new_state
        pos += 1
        for b in range(batch_size):
            if pos[b] == len(streams[b][0]):
                streams[b], pos[b] = make_sequence(rng, length), 0
                sequences += 1
        if step % eval_every == 0:
            accuracy = evaluate(model, length, eval_sequences, eval_rng)
            if verbose:
                rate = step * batch_size / (time.perf_counter() - start)
                print(f"tokens/stream {step:>8}  sequences {sequences:>8}  length <= {length:<5} accuracy {accuracy:6.1%}  "
                      f"({rate:,.0f} tokens/s)")  # fmt: skip
            if length == max_length and accuracy >= target_accuracy:
                break
            if length < max_length and accuracy >= curriculum_threshold:
                length += 1
    return CopyResult(step * batch_size, sequences, time.perf_counter() - start, accuracy)
