"""The ``sb3-rtrl`` command line."""

from __future__ import annotations

import argparse
import os


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sb3-rtrl", description="Exact RTRL for Stable-Baselines3")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="show RTRL-vs-BPTT gradient agreement and the update timing")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch as th

    th.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    if args.command == "check":
        from sb3_rtrl.check import main as check_main

        check_main()
