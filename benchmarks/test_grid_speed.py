"""Wall time of a whole grid, runs one after another (`sequential`) against packed (`jobs=auto`), by the CLI.

Timed: `python -m ablations.run grid=ca_variants profile=P seeds=N out_dir=<fresh> [jobs=auto]` as a
subprocess (training, evaluation, tables; plots off), one round each, with the dataset and the evaluator
already in the cache (a one-variant, two-step grid builds them first, untimed): the issue's target is
"<= 90 s for profile=small seeds=3 on one GPU, data and evaluator cached".

CUDA: profile=small, seeds from GANBLOCKS_BENCH_GRID_SEEDS (default 3: the target's 9 runs; the GPU
script uses 1 for the sequential side to fit its budget). CPU: skipped unless GANBLOCKS_BENCH_GRID_ON_CPU=1
(then profile=smoke cut to a few steps, 2 variants, jobs=auto = one run per core).

    pytest benchmarks/test_grid_speed.py --benchmark-only
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from benchmarks.conftest import machine_name

ROOT = Path(__file__).resolve().parents[1]
CPU_CUT = ["only=none,gaussian", "train.max_steps=4", "metrics.n_samples=64", "metrics.figures=false",
           "metrics.rank_captions=8", "train.progress=false", "metrics.progress=false"]


def grid_args(device: str) -> list[str]:
    if device == "cuda":
        return ["grid=ca_variants", "profile=small", f"seeds={os.environ.get('GANBLOCKS_BENCH_GRID_SEEDS', '3')}",
                "train.progress=false", "metrics.progress=false"]
    return ["grid=ca_variants", "profile=smoke", "seeds=1", *CPU_CUT]


def run_cli(args: list[str], env: dict | None = None) -> None:
    proc = subprocess.run([sys.executable, "-m", "ablations.run", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ablations.run {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")


@pytest.fixture(scope="module")
def warm_cache():
    """Build the dataset and the evaluator once (a one-variant grid of two steps), untimed."""
    done = set()

    def warm(device: str) -> None:
        if device not in done:
            out = tempfile.mkdtemp(prefix="bench-grid-warm-")
            base = [a for a in grid_args(device) if not a.startswith(("seeds=", "only="))]
            run_cli([*base, "seeds=1", "only=none", "train.max_steps=2", f"out_dir={out}"])
            done.add(device)

    return warm


@pytest.mark.parametrize("mode", ["sequential", "packed"])
def test_grid_wall_time(benchmark, device, mode, warm_cache):
    """One whole grid; items/s = runs per second."""
    benchmark.group = "grid"
    if device == "cpu" and not os.environ.get("GANBLOCKS_BENCH_GRID_ON_CPU"):
        pytest.skip("a whole grid on CPU takes minutes: set GANBLOCKS_BENCH_GRID_ON_CPU=1")
    warm_cache(device)
    args = grid_args(device) + (["jobs=auto"] if mode == "packed" else [])
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""} if device == "cpu" else None  # the CPU row stays on the CPU

    def once():
        run_cli([*args, f"out_dir={tempfile.mkdtemp(prefix=f'bench-grid-{mode}-')}"], env)

    t0 = time.perf_counter()
    benchmark.pedantic(once, rounds=1, iterations=1, warmup_rounds=0)
    seeds = int(next(a for a in args if a.startswith("seeds=")).split("=")[1])
    variants = 2 if device == "cpu" else 3
    benchmark.extra_info.update({"device": machine_name(device), "mode": mode, "runs": seeds * variants,
                                 "items_per_call": seeds * variants, "args": args,
                                 "wall_s": round(time.perf_counter() - t0, 2),
                                 "cuda": torch.cuda.is_available() and device == "cuda"})
