"""
The command-line tools: ``sb3-rtrl train``, ``compare``, ``experiment``, ``copy``, ``plot``, ``check``, and the
rl-zoo3 integration (``python -m sb3_rtrl.cli.zoo``). They import the library; the library never imports them.
"""

from sb3_rtrl.cli.commands import main

__all__ = ["main"]
