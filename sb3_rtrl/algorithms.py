"""
The package's algorithms: the one table that the package root, safe loading, the zoo and ``compare`` read.

Looked up by name and imported on first use, so reading the table imports no algorithm (and no Stable-Baselines3).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class AlgorithmEntry:
    """
    One algorithm of the package.

    :param name: the class's name, as a saved file names it (``"RTRLPPO"``)
    :param module: the module that defines it
    :param short: the SB3 algorithm it extends, lower case (``"ppo"``): rl-zoo3 knows it as ``rtrl_<short>`` and
        ``compare`` as ``rtrl_<short>`` and ``tbptt_<short>``
    """

    name: str
    module: str
    short: str

    @property
    def path(self) -> str:
        """``"module:Class"``."""
        return f"{self.module}:{self.name}"

    @property
    def zoo_name(self) -> str:
        """The name rl-zoo3 and ``compare`` give it (``rtrl_ppo``); its hyperparameters are ``<zoo_name>.yml``."""
        return f"rtrl_{self.short}"

    def load(self) -> type:
        """The algorithm class (imports its module)."""
        return getattr(importlib.import_module(self.module), self.name)


ALGORITHMS: dict[str, AlgorithmEntry] = {
    entry.name: entry
    for entry in (AlgorithmEntry("RTRLA2C", "sb3_rtrl.a2c", "a2c"), AlgorithmEntry("RTRLPPO", "sb3_rtrl.ppo", "ppo"))
}
