"""Shared settings for the speed benchmarks (run with `pytest benchmarks --benchmark-only`).

Every benchmark is parametrized by device (cpu, and cuda when available) and, where it matters, dtype.
The timed function synchronizes the GPU itself, so a timing is the work and not the launch; warm-up rounds
run first so cuDNN autotuning and torch.compile are not timed.
"""

from __future__ import annotations

import os
import platform
import tempfile
from typing import Callable

import pytest
import torch

if not os.environ.get("GANBLOCKS_CACHE"):
    os.environ["GANBLOCKS_CACHE"] = tempfile.mkdtemp(prefix="ganblocks-bench-cache-")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def synchronize(device: str | torch.device) -> None:
    """Wait for queued GPU work so the timer measures it; a no-op on CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def run_benchmark(benchmark, fn: Callable[[], object], device: str, *, rounds: int = 5,
                  warmup_rounds: int = 2, items: int | None = None) -> None:
    """Time `fn` with pytest-benchmark's pedantic mode, synchronizing the device inside the timed call.

    `items` (images, samples) per call is stored in extra_info so the Markdown table can show items/s.
    """

    def timed():
        out = fn()
        synchronize(device)
        return out

    for _ in range(warmup_rounds):
        timed()
    benchmark.extra_info["device"] = machine_name(device)
    if items is not None:
        benchmark.extra_info["items_per_call"] = items
    benchmark.pedantic(timed, rounds=rounds, iterations=1, warmup_rounds=0)


def machine_name(device: str) -> str:
    """What the numbers ran on: GPU name, or CPU model and thread count."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name()
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads"


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
