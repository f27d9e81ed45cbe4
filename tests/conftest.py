"""Test-wide settings: one torch intra-op thread for every test (small ops run fastest on one thread, and on
the 2-core CI machine the daemon subprocesses need the other), a writable model cache, and the `gpu` skip."""

import os
import tempfile

import pytest

os.environ.setdefault("XSTREAMER_CACHE", os.path.join(tempfile.gettempdir(), "xstreamer-test-cache"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:   # the SDK tests run without torch
    torch = None


def pytest_collection_modifyitems(config, items):
    has_cuda = torch is not None and torch.cuda.is_available()
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip)
