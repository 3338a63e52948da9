"""Sampling speed (images/s): the `official` generators in eval mode without gradients, Stage-I and Stage-II.

Stage-II samples run its frozen Stage-I too (caption -> 64 px -> Stage-II size), as `experiments.sample`
does. Untrained weights: speed does not depend on them. Widths and backend settings as in
test_train_speed.py (`small` on CPU with one thread, `paper` on CUDA with TF32 and cuDNN autotune);
float32 everywhere, and bf16 autocast with channels_last on CUDA.

    pytest benchmarks/test_sampling_speed.py --benchmark-only --benchmark-group-by=group
"""

from __future__ import annotations

from contextlib import nullcontext

import pytest
import torch

from benchmarks.conftest import run_benchmark
from benchmarks.test_train_speed import STAGES, backend_flags, bench_config, fresh_stage_cfg, skip_unless_runs
from ganblocks.training import assemble

TEXT_DIM = 1024  # the `bow` encoder's embedding size
BATCH = {"small": 32, "paper": 64}


@pytest.mark.parametrize("precision", ["float32", "bf16"])
@pytest.mark.parametrize("stage", list(STAGES))
@pytest.mark.parametrize("width", ["small", "paper"])
def test_sampling(benchmark, device, width, stage, precision):
    """G(text, noise) for a batch of captions; images/s = batch / median."""
    benchmark.group = f"sampling-{stage}"
    skip_unless_runs(device, width)
    if device == "cpu" and precision == "bf16":
        pytest.skip("bf16 autocast is the CUDA fast path")
    cfg = bench_config(device, width)
    G, _ = assemble.build_stage_models(cfg, fresh_stage_cfg(cfg, stage), TEXT_DIM)
    G = G.to(device).eval().requires_grad_(False)
    autocast = nullcontext()
    if precision == "bf16":
        G = G.to(memory_format=torch.channels_last)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16)
    n = BATCH[width]
    generator = torch.Generator().manual_seed(0)
    text = torch.randn(n, TEXT_DIM, generator=generator).to(device)
    noise = torch.randn(n, G.noise_dim, generator=generator).to(device)

    def sample():
        with torch.no_grad(), autocast:
            return G(text, noise).image

    cuda = device == "cuda"
    with backend_flags(cfg, torch.device(device), "fast"):  # the trainer's threads / TF32 / autotune settings
        run_benchmark(benchmark, sample, device, rounds=20 if cuda else 5, warmup_rounds=3 if cuda else 1, items=n)
    benchmark.extra_info.update({"width": width, "precision": precision, "image_size": int(G.out_size)})
