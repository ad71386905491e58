"""
sb3-rtrl's algorithms in rl-zoo3 (extra ``zoo``): ``python -m sb3_rtrl.cli.zoo train --algo rtrl_ppo --env CartPoleNoVel-v1``.

The zoo takes third-party algorithms through its ``ALGOS`` registry; this module adds ``rtrl_a2c`` and
``rtrl_ppo`` there, points ``--conf-file`` at the algorithm's hyperparameters shipped here unless one is
given, and runs the zoo's own ``train`` or ``enjoy``.
"""

from __future__ import annotations

import sys

from sb3_rtrl.algorithms import ALGORITHMS as _ALGORITHMS
from sb3_rtrl.cli.compare.hyperparams import hyperparams_file

# The zoo's name of each algorithm, and where its class is.
ALGORITHMS = {entry.zoo_name: entry.path for entry in _ALGORITHMS.values()}


def register() -> None:
    """Add sb3-rtrl's algorithms to rl-zoo3's (and sb3-rtrl's environments to gymnasium)."""
    try:
        from rl_zoo3 import ALGOS
    except ImportError as err:
        raise ImportError("the zoo integration needs rl-zoo3: pip install 'sb3-rtrl[zoo]'") from err
    import sb3_rtrl  # noqa: F401  (registers the built-in environments)
    from sb3_rtrl.cli.compare.learners import import_algorithm

    for name, path in ALGORITHMS.items():
        ALGOS[name] = import_algorithm(path)


def main(argv: list[str] | None = None) -> None:
    """``python -m sb3_rtrl.cli.zoo {train,enjoy} [rl-zoo3 arguments]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("train", "enjoy"):
        algos = ",".join(ALGORITHMS)
        sys.exit(f"usage: python -m sb3_rtrl.cli.zoo {{train,enjoy}} --algo {{{algos}}} --env ENV_ID [rl-zoo3 options]")
    command, rest = argv[0], argv[1:]
    register()
    algo = _algo(rest)
    if command == "train" and "--conf-file" not in rest and "-conf" not in rest and algo in ALGORITHMS:
        rest += ["--conf-file", str(hyperparams_file(f"{__name__}:{algo}.yml"))]
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
