import os

import pytest
import torch as th

# On the 2-core machines of this project, one torch thread is as fast and far steadier.
os.environ.setdefault("OMP_NUM_THREADS", "1")
th.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Skip ``gpu`` tests cleanly when no CUDA device is present."""
    if th.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
