"""
RTRLA2C in rl-zoo3 (extra ``zoo``): ``python -m sb3_rtrl.zoo train --algo rtrl_a2c --env CartPoleNoVel-v1``.

The zoo takes third-party algorithms through its ``ALGOS`` registry; this module adds ``rtrl_a2c`` there,
points ``--conf-file`` at the hyperparameters shipped here unless one is given, and runs the zoo's own
``train`` or ``enjoy``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ALGO_NAME = "rtrl_a2c"
HYPERPARAMS = Path(__file__).resolve().parent / "hyperparams" / "rtrl_a2c.yml"


def register() -> None:
    """Add RTRLA2C to rl-zoo3's algorithms (and sb3-rtrl's environments to gymnasium)."""
    try:
        from rl_zoo3 import ALGOS
    except ImportError as err:
        raise ImportError("the zoo integration needs rl-zoo3: pip install 'sb3-rtrl[zoo]'") from err
    import sb3_rtrl  # noqa: F401  (registers the built-in environments)
    from sb3_rtrl.a2c import RTRLA2C

    ALGOS[ALGO_NAME] = RTRLA2C


def main(argv: list[str] | None = None) -> None:
    """``python -m sb3_rtrl.zoo {train,enjoy} [rl-zoo3 arguments]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("train", "enjoy"):
        sys.exit("usage: python -m sb3_rtrl.zoo {train,enjoy} --algo rtrl_a2c --env ENV_ID [rl-zoo3 options]")
    command, rest = argv[0], argv[1:]
    register()
    if command == "train" and "--conf-file" not in rest and "-conf" not in rest and _algo(rest) == ALGO_NAME:
        rest += ["--conf-file", str(HYPERPARAMS)]
    if command == "train":
        from rl_zoo3.train import train as run
    else:
        from rl_zoo3.enjoy import enjoy as run
    sys.argv = [f"rl_zoo3 {command}", *rest]
    run()


def _algo(args: list[str]) -> str | None:
    for flag in ("--algo",):
        if flag in args and args.index(flag) + 1 < len(args):
            return args[args.index(flag) + 1]
    return None
