"""Suite-wide settings: tests never read or write the user's ganblocks cache, run on one torch thread, and
run on the CPU even where a GPU is present.

The suite's numbers and budgets are the CPU's: with a GPU visible, `device=auto` picks CUDA, `profile=auto`
becomes the `small` profile, and the built-in evaluator trains on the GPU. So GPUs are hidden from the suite
(and the processes it starts) unless GANBLOCKS_TEST_CUDA=1, which the CUDA tests need:

    GANBLOCKS_TEST_CUDA=1 scripts/run-tests tests/training/test_cuda.py tests/data/test_batching.py
"""

import os
import tempfile

# Set at import time, before any test module builds a dataset or an evaluator, or CUDA initialises.
if not os.environ.get("GANBLOCKS_CACHE"):
    os.environ["GANBLOCKS_CACHE"] = tempfile.mkdtemp(prefix="ganblocks-test-cache-")
if os.environ.get("GANBLOCKS_TEST_CUDA") != "1":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="session")
def tiny_synthbirds():
    """Root folder of the tiny SynthBirds build (20 classes x 8 images, 128 px), built once per session.

    Load it with `build_dataset("synthbirds", split, imsize, encoder, root=tiny_synthbirds)`, or just
    `size="tiny"` (same cached build).
    """
    from ganblocks.data import synthbirds

    return synthbirds.ensure_built(size="tiny", seed=0)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread per test: the suite's models are tiny, and on a busy 2-core machine OpenMP
    threads spin-waiting on each other made small ops tens of times slower (27 s -> 0.8 s for one test)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
