"""
Copy task: how many tokens each learner needs to reach each curriculum length (a learning-speed comparison).

Same data (``make_sequences``), curriculum (start at length 2, advance at 98% sequence accuracy on 500 fresh
sequences, checked every 500 tokens per stream; the last length counts when it reaches 100%), 256 streams, Adam
at 1e-2 falling as 1/length, gradient norm clipped to 1:

- ``rtrl``: the eLSTM trained fully online, one update per token, exact RTRL (``train_copy_task``)
- ``elstm-exact-online``: the same updates, but each token's gradient is recomputed by backprop from its sequence's
  start under the current weights; RTRL's sensitivities instead carry terms made with the weights of earlier updates
  (the staleness the paper names), so the gap between these two is what staleness costs
- ``elstm-bptt``: the same eLSTM, one update per batch of whole sequences, full backprop through time
- ``lstm-bptt``: a standard (fully recurrent) ``nn.LSTM`` of the same size, one update per batch of whole sequences

"Tokens" are sequence steps seen per stream, so the learners are compared on the same data, not the same
number of updates.

    OMP_NUM_THREADS=1 python benchmarks/copy_task_learners.py [--hidden-size 128] [--tokens 100000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch as th
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import setup_threads  # noqa: E402

from sb3_rtrl.cli.copy_task import INPUT_SIZE, CopyModel, CopyStreams, falling_rate, make_sequences, train_copy_task  # noqa: E402

THRESHOLD = 0.98
EVAL_EVERY = 500  # tokens per stream between evaluations, for every learner
BPTT_LEARNERS = ("elstm-exact-online", "elstm-bptt", "lstm-bptt")


def _sequence_model(kind: str, hidden: int) -> tuple[list[nn.Parameter], Callable[[th.Tensor, th.Tensor], th.Tensor]]:
    """The parameters and ``logits(x, starts)`` over a ``(T, B, INPUT_SIZE)`` batch of the eLSTM or a standard LSTM."""
    if kind == "lstm":
        lstm, readout = nn.LSTM(INPUT_SIZE, hidden), nn.Linear(hidden, 2)
        return [*lstm.parameters(), *readout.parameters()], lambda x, starts: readout(lstm(x)[0])  # whole sequences only
    elstm = CopyModel(hidden)

    def logits(x: th.Tensor, starts: th.Tensor) -> th.Tensor:
        h, _ = elstm.cell(x, th.zeros(x.shape[1], hidden), starts)
        return elstm.readout(h)

    return list(elstm.parameters()), logits


def curriculum_learner(kind: str, max_length: int, hidden: int, batch: int, tokens: int, seed: int) -> list[tuple[int, int]]:
    """
    Train with backprop through time and the curriculum of ``train_copy_task``, evaluated every ``EVAL_EVERY`` tokens
    per stream as that one is.

    :param kind: "elstm-bptt" or "lstm-bptt" (an update per batch of whole sequences) or "elstm-exact-online" (an
        update per token, like RTRL, but with the exact gradient under the current weights: each token's forward pass
        is recomputed from its sequence's start, so no sensitivity carries the traces of older weights)
    :return: (length, tokens per stream) each time a length was passed
    """
    th.manual_seed(seed)
    rng, eval_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    params, logits = _sequence_model(kind.split("-")[0], hidden)
    streams = CopyStreams(batch, max_length, rng) if kind == "elstm-exact-online" else None

    def one_hot(symbols: np.ndarray) -> th.Tensor:
        return F.one_hot(th.as_tensor(symbols), INPUT_SIZE).float()

    def whole(x: th.Tensor) -> th.Tensor:  # logits of whole sequences, each from a fresh state
        return logits(x, th.zeros(x.shape[:2], dtype=th.bool))

    def loss_and_tokens(length: int) -> tuple[th.Tensor | None, int]:  # the loss of one update and the tokens it saw
        if streams is not None:
            _, targets, _ = streams.next_token(length)
            symbols, starts = streams.history()
            y, x = th.as_tensor(targets), one_hot(symbols)
            mask = y >= 0
            out = logits(x, th.as_tensor(starts))[-1][mask] if mask.any() else None
            return (None if out is None else F.cross_entropy(out, y[mask], reduction="sum") / batch), batch
        inputs, targets, steps = make_sequences(rng, length, batch)
        x, y = one_hot(inputs.T), th.as_tensor(targets.T)
        mask = y >= 0
        loss = F.cross_entropy(whole(x)[mask], y[mask], reduction="sum") / batch
        return loss, int(steps.sum())

    rate = falling_rate(1e-2)
    length, seen, next_eval, reached = 2, 0, EVAL_EVERY, []
    optimizer = th.optim.Adam(params, lr=rate(length))
    while seen < tokens * batch:
        loss, steps = loss_and_tokens(length)
        if loss is not None:
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
        seen += steps
        if seen >= next_eval * batch:
            next_eval += EVAL_EVERY
            with th.no_grad():
                inputs, targets, _ = make_sequences(eval_rng, length, 500)
                x, y = one_hot(inputs.T), th.as_tensor(targets.T)
                accuracy = float(((whole(x).argmax(-1) == y) | (y < 0)).all(0).float().mean())
            if accuracy >= (1.0 if length == max_length else THRESHOLD):
                reached.append((length, seen // batch))
                if length == max_length:
                    break
                length += 1
                for group in optimizer.param_groups:
                    group["lr"] = rate(length)
    return reached


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-length", type=int, default=20)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--tokens", type=int, default=100_000, help="budget: sequence steps per stream, per learner")
    parser.add_argument("--learners", nargs="+", default=["rtrl", *BPTT_LEARNERS], choices=["rtrl", *BPTT_LEARNERS])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setup_threads()
    batch = 256
    runs: dict[str, Callable[[], list[tuple[int, int]]]] = {
        "rtrl": lambda: (
            train_copy_task(
                max_length=args.max_length,
                hidden_size=args.hidden_size,
                batch_size=batch,
                learning_rate=falling_rate(1e-2),
                max_tokens=args.tokens,
                eval_every=EVAL_EVERY,
                seed=args.seed,
                curriculum=True,
                curriculum_threshold=THRESHOLD,
                max_grad_norm=1.0,
                verbose=False,
            ).reached
        ),
        **{
            name: partial(curriculum_learner, name, args.max_length, args.hidden_size, batch, args.tokens, args.seed)
            for name in BPTT_LEARNERS
        },
    }
    results = {}
    for name in args.learners:
        start = time.perf_counter()
        results[name] = dict(runs[name]())
        print(f"{name}: {time.perf_counter() - start:.0f} s, reached {max(results[name], default='none')}", flush=True)
    print(f"\ntokens per stream to reach each length (hidden {args.hidden_size}, budget {args.tokens:,} per stream)")
    widths = [max(12, len(name)) + 2 for name in args.learners]
    print("length" + "".join(f"{name:>{w}}" for name, w in zip(args.learners, widths)))
    for length in range(2, args.max_length + 1):
        cells = [
            f"{results[name][length]:>{w},}" if length in results[name] else f"{'-':>{w}}"
            for name, w in zip(args.learners, widths)
        ]
        print(f"{length:>6}" + "".join(cells))


if __name__ == "__main__":
    main()
