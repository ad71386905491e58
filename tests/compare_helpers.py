"""Algorithms for the compare tests, importable by the runs' spawned processes (they share sys.path)."""

import os


class DiesAtConstruction:
    """Ends its process at once, as a crash in native code would."""

    def __init__(self, *args, **kwargs):
        os._exit(3)


class RaisesAtConstruction:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("this learner always fails")
