"""
``sb3-rtrl compare``: learners side by side on the same tasks and env steps, several seeds, in parallel
processes; a table, learning curves against env steps and wall seconds, and a CSV of every point.
"""

from sb3_rtrl.cli.compare.learners import LEARNERS, Learner, register_learner
from sb3_rtrl.cli.compare.runner import compare
from sb3_rtrl.cli.compare.worker import RunResult, RunSpec

__all__ = ["LEARNERS", "Learner", "RunResult", "RunSpec", "compare", "register_learner"]
