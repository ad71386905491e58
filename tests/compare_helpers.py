"""Algorithms for the compare tests, importable by the runs' spawned processes (they share sys.path)."""

import os


class DiesAtConstruction:
    """Ends its process at once, as a crash in native code would."""

    def __init__(self, *args, **kwargs):
        os._exit(3)


class RaisesAtConstruction:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("this learner always fails")


class SleepsAtConstruction:
    """Writes its process id to the file named by COMPARE_SLEEPER_PID, then waits: a run still going when interrupted."""

    def __init__(self, *args, **kwargs):
        import time

        with open(os.environ["COMPARE_SLEEPER_PID"], "w") as f:
            f.write(str(os.getpid()))
        time.sleep(600)
