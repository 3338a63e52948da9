"""Training-step speed (images/s) of Stage-I and Stage-II: plain float32 eager versus the fast path.

The timed call is the trainer's own step (`ganblocks.training.step.train_step`, one D step then one G step)
on a stage from `build_stage`, `official` preset. Batches are drawn beforehand from the real BatchLoader
over the tiny built-in dataset (crop and flip done) and cycled, so loading is excluded from the timing
(it has its own benchmark in test_data_speed.py). Paths:

- `plain`: float32 eager, contiguous memory, for-loop (non-fused, non-foreach) Adam, PyTorch's default
  backend flags (no TF32 matmuls, no cuDNN autotune): the official code's way of training.
- `fast`: the trainer's defaults (`train.amp=auto`, `train.channels_last=auto`, `train.cuda_graph=auto`;
  ganblocks/training/precision.py): on CUDA the whole step captured in one CUDA graph, Stage-I in bf16
  contiguous, Stage-II in bf16 channels_last, fused capturable Adam, TF32 and cuDNN autotune.
  On CPU the trainer runs float32 eager with the for-loop Adam, so there `fast` and `plain` run the same
  code: the comparison checks for overhead.
- `fast_eager`: `fast` without the graph (`train.cuda_graph=false`: Stage-I then takes fp32/TF32 by the
  rule); CUDA only (on CPU it is `fast`).
- `fast_compile`: torch.compile of G and D (train.compile=true, which runs eager: no hand-made graph).
  Skipped on CPU unless GANBLOCKS_BENCH_COMPILE_ON_CPU=1 (compilation takes minutes on a small CPU).

Widths: `small` on CPU (gf_dim 16, df_dim 16, batch 16, Stage-I 64 px, Stage-II 64 -> 128 px); `paper` on
CUDA (gf_dim 128, df_dim 64, batch 64, 64 and 256 px), and on CPU with GANBLOCKS_BENCH_PAPER_ON_CPU=1.
On CPU the `smoke` profile's train.cpu_threads=1 applies (one intra-op thread: the profile CPU runs train
with, and stable on a shared machine).
extra_info holds model FLOPs per step (FlopCounterMode), achieved TFLOP/s and, on a GPU in the peak
table, the model FLOPs utilisation.

    pytest benchmarks/test_train_speed.py --benchmark-only --benchmark-group-by=group
"""

from __future__ import annotations

import itertools
import os
import tempfile
from contextlib import contextmanager

import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from benchmarks.conftest import run_benchmark
from experiments.config import compose
from ganblocks.training.flops import mfu, peak_flops, train_step_flops
from ganblocks.training.build import build_stage, configure_backends
from ganblocks.training.step import Stage, train_step

WIDTHS = {
    "small": {"gf_dim": 16, "df_dim": 16, "batch_size": 16, "stage1_size": 64, "stage2_size": 128},
    "paper": {"gf_dim": 128, "df_dim": 64, "batch_size": 64, "stage1_size": 64, "stage2_size": 256},
}
PATHS = {
    "plain": ["train.amp=fp32", "train.channels_last=false", "train.compile=false", "train.cuda_graph=false"],
    "fast": ["train.amp=auto", "train.channels_last=auto", "train.compile=false", "train.cuda_graph=auto"],
    "fast_eager": ["train.amp=auto", "train.channels_last=auto", "train.compile=false", "train.cuda_graph=false"],
    "fast_compile": ["train.amp=auto", "train.channels_last=auto", "train.compile=true", "train.cuda_graph=auto"],
}
STAGES = {"stage1": 0, "stage2": 1}
N_BATCHES = 4  # pre-drawn batches cycled through the timed steps


def skip_unless_runs(device: str, width: str, path: str | None = None) -> None:
    """Small widths on CPU, paper widths on CUDA (and on CPU when asked); compile on CPU only when asked."""
    if device == "cpu" and width == "paper" and not os.environ.get("GANBLOCKS_BENCH_PAPER_ON_CPU"):
        pytest.skip("paper width on CPU: set GANBLOCKS_BENCH_PAPER_ON_CPU=1")
    if device == "cuda" and width == "small":
        pytest.skip("CUDA benchmarks run the paper width")
    if device == "cpu" and path == "fast_compile" and not os.environ.get("GANBLOCKS_BENCH_COMPILE_ON_CPU"):
        pytest.skip("torch.compile on CPU: set GANBLOCKS_BENCH_COMPILE_ON_CPU=1")
    if device == "cpu" and path == "fast_eager":
        pytest.skip("fast_eager differs from fast only on CUDA (no CUDA graph on CPU)")


def bench_config(device: str, width: str, extra: list[str] = ()) -> DictConfig:
    """The `official` preset, two-stage pipeline, tiny built-in data, at one of WIDTHS."""
    w = WIDTHS[width]
    return compose([
        "profile=smoke", "preset=official", "pipeline=two_stage", f"device={device}",
        f"model.gf_dim={w['gf_dim']}", f"model.df_dim={w['df_dim']}", "model.condition_dim=null",
        "model.noise_dim=null", f"model.stage1_size={w['stage1_size']}", f"model.stage2_size={w['stage2_size']}",
        "data.size=tiny", f"train.batch_size={w['batch_size']}", "train.max_steps=100000",
        "train.lr_halve_every=null", "train.progress=false", *extra,
    ])


def fresh_stage_cfg(cfg: DictConfig, stage: str) -> DictConfig:
    """The pipeline entry of `stage` with no trained stage to load (Stage-II holds a fresh Stage-I)."""
    stage_cfg = OmegaConf.create(OmegaConf.to_container(cfg.pipeline.stages[STAGES[stage]], resolve=True))
    stage_cfg.fixed = None
    return stage_cfg


@contextmanager
def backend_flags(cfg: DictConfig, device: torch.device, path: str):
    """The trainer's backend settings (CPU threads; TF32 and cuDNN autotune on CUDA), except that `plain`
    keeps PyTorch's CUDA defaults (no TF32 matmuls, no autotune); everything restored afterwards."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    threads = torch.get_num_threads()
    configure_backends(device, cfg.train.cpu_threads)
    if path == "plain":
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = False, True
        torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = saved
        torch.set_num_threads(threads)


def plain_optimizers(cfg: DictConfig, stage: Stage) -> None:
    """Replace the trainer's Adam by the for-loop implementation (same lr, betas and constant schedule)."""
    betas = tuple(float(b) for b in cfg.train.betas)
    for name, model in (("g", stage.G), ("d", stage.D)):
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=float(cfg.train.lr), betas=betas, foreach=False, fused=False)
        setattr(stage, f"opt_{name}", opt)
        setattr(stage, f"sched_{name}", torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0))


def epochs(loader):
    """Batches epoch after epoch (the tiny data holds one batch of 64 a training epoch)."""
    if len(loader) == 0:
        raise ValueError(f"the loader has no full batch of {loader.batch_size}")
    while True:
        yield from loader


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("stage", list(STAGES))
@pytest.mark.parametrize("width", ["small", "paper"])
def test_train_step(benchmark, device, width, stage, path):
    """One D step then one G step of the `official` preset (images/s = batch / median)."""
    benchmark.group = f"train-step-{stage}"
    skip_unless_runs(device, width, path)
    cfg = bench_config(device, width, PATHS[path])
    dev = torch.device(device)
    with backend_flags(cfg, dev, path):
        st = build_stage(cfg, fresh_stage_cfg(cfg, stage), STAGES[stage], tempfile.mkdtemp(prefix="bench-train-"), dev)
        if path == "plain":
            plain_optimizers(cfg, st)
        batches = list(itertools.islice(epochs(st.loader), N_BATCHES))
        flops = train_step_flops(st, batches[0])  # one eager step; counted FLOPs do not depend on dtype
        cycle = itertools.cycle(batches)
        cuda = dev.type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats(dev)
        run_benchmark(benchmark, lambda: train_step(st, next(cycle)), device,
                      rounds=20 if cuda else 5, warmup_rounds=5 if cuda else 1, items=len(batches[0]))

    seconds = benchmark.stats.stats.median
    precision = "bf16" if st.plan.amp == "bf16" else "tf32"  # cuDNN convolutions run TF32 by default
    peak = peak_flops(dev, precision)
    benchmark.extra_info.update({
        "width": width, "path": path, "plan": st.plan.to_json(), "amp": st.plan.amp,
        "cuda_graph": st.graph is not None and st.graph.graph is not None,
        "flops_per_step": flops, "tflop_per_s": round(flops / seconds / 1e12, 4),
    })
    if cuda:
        benchmark.extra_info["peak_memory_bytes"] = torch.cuda.max_memory_allocated(dev)
    if peak is not None:
        benchmark.extra_info.update({"peak_precision": precision, "mfu": round(mfu(flops, seconds, peak), 4)})
    assert bool(st.nonfinite) is False, f"{stage} {path}: non-finite loss during the benchmark"
