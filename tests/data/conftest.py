"""One torch thread for this test folder: on a shared 2-core machine OpenMP spin-waits make small ops
tens of times slower when several processes each use every core (measured 27 s -> 0.8 s for a test)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
