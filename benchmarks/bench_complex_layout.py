"""
Why the engine keeps a complex cell's sensitivities as complex tensors: the RTU's segment advance of its matrix
sensitivity written three ways, timed side by side at the paper's Atari shape (128 complex units from hidden
256, 257 inputs, 32 sequences, M = 50):

- ``complex``: what the engine does, ``S(M) = P * S(0) + bmm(Q a, v)`` on complex tensors (v cast to complex);
- ``planar``: the real and imaginary planes as real tensors ``(B, 2, R, D)``, one real product for both planes
  and the 2x2 rotation-scaling of the carry written out (four real multiply-adds);
- ``real-product``: complex tensors, but the product of the complex ``Q a`` with the real inputs ``v`` as one
  real product (half a complex one's work) whose result is copied into the complex layout.

    OMP_NUM_THREADS=1 python benchmarks/bench_complex_layout.py [--repeats 9] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import sys

import torch as th

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import interleaved_medians, setup_threads  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--input", type=int, default=257)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    setup_threads()
    dev = th.device(args.device)
    sync = th.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    r, d, b, m = args.units, args.input, args.batch, args.steps
    th.manual_seed(0)
    s0 = th.randn(b, r, d, dtype=th.complex64, device=dev)
    p = th.randn(b, r, dtype=th.complex64, device=dev)
    qa = th.randn(m, b, r, dtype=th.complex64, device=dev)
    v = th.randn(m, b, d, device=dev)
    out = th.empty_like(s0)
    planar0 = th.stack([s0.real, s0.imag], 1).contiguous()  # (B, 2, R, D)
    planar_out = th.empty_like(planar0)
    qa_planar = th.cat([qa.real, qa.imag], 2).permute(1, 2, 0).contiguous()  # (B, 2R, M)
    prod = th.empty(b, r, 2, d, device=dev)

    def complex_advance() -> None:
        th.bmm(qa.permute(1, 2, 0), v.to(qa.dtype).permute(1, 0, 2), out=out)
        out.addcmul_(s0, p.unsqueeze(-1))
        sync()

    def planar_advance() -> None:
        th.bmm(qa_planar, v.permute(1, 0, 2), out=planar_out.view(b, 2 * r, d))
        re0, im0 = planar0[:, 0], planar0[:, 1]
        pr, pi = p.real.unsqueeze(-1), p.imag.unsqueeze(-1)
        planar_out[:, 0].addcmul_(re0, pr).addcmul_(im0, -pi)
        planar_out[:, 1].addcmul_(im0, pr).addcmul_(re0, pi)
        sync()

    def real_product_advance() -> None:
        qa_pairs = th.view_as_real(qa).permute(1, 2, 3, 0).reshape(b, 2 * r, m)  # rows (unit, plane)
        th.bmm(qa_pairs, v.permute(1, 0, 2), out=prod.view(b, 2 * r, d))
        th.view_as_real(out).copy_(prod.transpose(2, 3))
        out.addcmul_(s0, p.unsqueeze(-1))
        sync()

    # The three compute the same S(M).
    complex_advance()
    expected = out.clone()
    planar_advance()
    assert th.allclose(planar_out, th.stack([expected.real, expected.imag], 1), rtol=1e-4, atol=1e-3)
    real_product_advance()
    assert th.allclose(out, expected, rtol=1e-4, atol=1e-3)
    med = interleaved_medians(
        {"complex": complex_advance, "planar": planar_advance, "real-product": real_product_advance}, repeats=args.repeats
    )
    mib = s0.numel() * 8 / 2**20
    print(f"device={dev} threads={th.get_num_threads()} units={r} D={d} B={b} M={m}, S = {mib:.1f} MiB complex64")
    for name, sec in med.items():
        print(f"  {name:<8} {sec * 1e3:8.2f} ms   ({sec / med['complex']:.2f}x complex)")


if __name__ == "__main__":
    main()
