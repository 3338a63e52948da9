"""Forward + backward speed of every registered block, family by family, side by side.

Shapes are those the blocks see inside StackGAN at paper width (`paper`, e.g. Stage-II's first
up-sampling 512 -> 256 channels at 16x16) and at a width CPU profiles use (`small`). On CPU only the small
width runs unless GANBLOCKS_BENCH_PAPER_ON_CPU=1; CUDA runs both, in float32 and under bf16 autocast with
channels_last.

    pytest benchmarks/test_blocks_speed.py --benchmark-only --benchmark-group-by=group,param:width
"""

from __future__ import annotations

import os
from contextlib import nullcontext

import pytest
import torch

from benchmarks.conftest import run_benchmark
from ganblocks.registry import build, names

BATCH = {"small": 16, "paper": 64}
# (channels in, channels out, spatial size in) at each width, per family.
SHAPES = {
    "upsample": {"small": (64, 32, 16), "paper": (512, 256, 16)},
    "residual": {"small": (64, 64, 16), "paper": (512, 512, 16)},
    "downsample": {"small": (16, 32, 64), "paper": (128, 256, 64)},
    "d_head": {"small": (64, 32, 4), "paper": (512, 128, 4)},  # (feature channels, condition dim, M_d)
    "conditioning": {"small": (256, 32, 0), "paper": (1024, 128, 0)},  # (text dim, condition dim, -)
}
PRECISIONS = ["float32", "bf16"]


def _skip_unless_runs(device: str, width: str, precision: str) -> None:
    if device == "cpu" and width == "paper" and not os.environ.get("GANBLOCKS_BENCH_PAPER_ON_CPU"):
        pytest.skip("paper width on CPU: set GANBLOCKS_BENCH_PAPER_ON_CPU=1")
    if device == "cpu" and precision == "bf16":
        pytest.skip("bf16 autocast is the CUDA fast path")


def _autocast(device: str, precision: str):
    return torch.autocast("cuda", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()


def _image_block_step(kind: str, name: str, width: str, device: str, precision: str, benchmark) -> None:
    c_in, c_out, size = SHAPES[kind][width]
    kwargs = {"channels": c_in} if kind == "residual" else {"in_channels": c_in, "out_channels": c_out}
    block = build(kind, name, **kwargs).to(device)
    x = torch.randn(BATCH[width], c_in, size, size, device=device, requires_grad=True)
    if precision == "bf16":  # the fast path also runs channels_last
        block = block.to(memory_format=torch.channels_last)
        x = x.detach().to(memory_format=torch.channels_last).requires_grad_()

    def step():
        with _autocast(device, precision):
            y = block(x)
        y.float().square().mean().backward()

    run_benchmark(benchmark, step, device, items=BATCH[width])


IMAGE_BLOCKS = [(kind, name) for kind in ("upsample", "residual", "downsample") for name in names(kind)]


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("width", ["small", "paper"])
@pytest.mark.parametrize("kind,name", IMAGE_BLOCKS, ids=[f"{k}-{n}" for k, n in IMAGE_BLOCKS])
def test_image_block(benchmark, device, kind, name, width, precision):
    """Up-sampling, residual and down-sampling blocks; one benchmark group per family."""
    benchmark.group = kind
    _skip_unless_runs(device, width, precision)
    _image_block_step(kind, name, width, device, precision, benchmark)


@pytest.mark.parametrize("width", ["small", "paper"])
@pytest.mark.parametrize("name", names("conditioning"))
def test_conditioning(benchmark, device, name, width):
    benchmark.group = "conditioning"
    _skip_unless_runs(device, width, "float32")
    text_dim, condition_dim, _ = SHAPES["conditioning"][width]
    block = build("conditioning", name, text_dim=text_dim, condition_dim=condition_dim).to(device)
    text = torch.randn(BATCH[width], text_dim, device=device)

    def step():
        out = block(text)
        (out.code.square().mean() + out.regulariser).backward()

    run_benchmark(benchmark, step, device, items=BATCH[width])


@pytest.mark.parametrize("width", ["small", "paper"])
@pytest.mark.parametrize("name", names("d_head"))
def test_d_head(benchmark, device, name, width):
    benchmark.group = "d_head"
    _skip_unless_runs(device, width, "float32")
    channels, condition_dim, spatial = SHAPES["d_head"][width]
    head = build("d_head", name, feature_channels=channels, condition_dim=condition_dim, spatial_size=spatial)
    head = head.to(device)
    features = torch.randn(BATCH[width], channels, spatial, spatial, device=device, requires_grad=True)
    condition = torch.randn(BATCH[width], condition_dim, device=device)

    def step():
        out = head(features, condition)
        logits = [t for t in (out.cond_logits, out.uncond_logits) if t is not None]
        sum(t.square().mean() for t in logits).backward()

    run_benchmark(benchmark, step, device, items=BATCH[width])
