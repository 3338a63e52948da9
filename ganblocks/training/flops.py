"""Model FLOPs of a training step, device peaks, and model FLOPs utilisation (MFU).

    flops = train_step_flops(stage, batch)                  # D step + G step, forward + backward
    peak = peak_flops("cuda", torch.bfloat16)               # None on CPU or an unknown GPU
    utilisation = mfu(flops, seconds_per_step, peak)        # achieved FLOP/s over the peak

FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode`: matrix products and convolutions (2 per
multiply-add), forward and backward; normalisation, activations and the optimizer are not counted (they
are memory-bound), which is the usual definition of "model FLOPs". The count does not depend on dtype.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from ganblocks.types import Batch

# Dense (no sparsity) peak FLOP/s from the vendors' data sheets, per precision. "fp32" is the CUDA-core
# peak; "tf32" the tensor-core float32 peak (the trainer enables TF32 on CUDA). Entries are matched
# against torch.cuda.get_device_name() in order: the first whose every word is a word of the name
# (case-insensitive; words split at spaces and hyphens, so "L4" does not match "L40S").
_T = 1e12
PEAK_FLOPS: list[tuple[tuple[str, ...], dict[str, float]]] = [
    (("H100", "NVL"), {"bf16": 835.5 * _T, "fp16": 835.5 * _T, "tf32": 417.5 * _T, "fp32": 60.0 * _T}),
    (("H100", "PCIe"), {"bf16": 756.5 * _T, "fp16": 756.5 * _T, "tf32": 378.0 * _T, "fp32": 51.2 * _T}),
    (("H100", "HBM3"), {"bf16": 989.4 * _T, "fp16": 989.4 * _T, "tf32": 494.7 * _T, "fp32": 66.9 * _T}),  # SXM5
    (("H100", "SXM5"), {"bf16": 989.4 * _T, "fp16": 989.4 * _T, "tf32": 494.7 * _T, "fp32": 66.9 * _T}),
    (("H200", "NVL"), {"bf16": 835.5 * _T, "fp16": 835.5 * _T, "tf32": 417.5 * _T, "fp32": 60.0 * _T}),
    (("H200",), {"bf16": 989.4 * _T, "fp16": 989.4 * _T, "tf32": 494.7 * _T, "fp32": 66.9 * _T}),  # SXM
    (("A100",), {"bf16": 312.0 * _T, "fp16": 312.0 * _T, "tf32": 156.0 * _T, "fp32": 19.5 * _T}),
    (("L40S",), {"bf16": 362.05 * _T, "fp16": 362.05 * _T, "tf32": 183.0 * _T, "fp32": 91.6 * _T}),
    (("L4",), {"bf16": 121.0 * _T, "fp16": 121.0 * _T, "tf32": 60.0 * _T, "fp32": 30.3 * _T}),
    (("RTX", "4090"), {"bf16": 165.2 * _T, "fp16": 165.2 * _T, "tf32": 82.6 * _T, "fp32": 82.6 * _T}),
]
_PRECISIONS = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32",
               "bf16": "bf16", "fp16": "fp16", "tf32": "tf32", "fp32": "fp32"}


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of everything `fn()` runs (forward and any backward it calls), as FlopCounterMode counts them."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def train_step_flops(stage: Any, batch: Batch) -> int:
    """Model FLOPs of one training step (D forward + backward, then G forward + backward through D).

    Runs one real `train_step` on the stage's eager modules (compiled / DDP wrappers are bypassed, the
    count is the same), so the stage's weights, optimizers and schedules advance by one step, as any step.

    Args:
        stage: a `ganblocks.training.step.Stage` from `build.build_stage`.
        batch: one batch at the stage's size (its batch size sets the count), on the stage's device.

    Returns:
        FLOPs per step (2 per multiply-add).
    """
    from ganblocks.training.step import DiscriminatorScorer, train_step

    plan = getattr(stage, "plan", None)  # eager even where the stage replays a CUDA graph
    plan = dataclasses.replace(plan, cuda_graph=False) if plan is not None else None
    pairs = [dataclasses.replace(pair, D_step=DiscriminatorScorer(pair.D)) for pair in stage.pairs]
    eager = dataclasses.replace(stage, G_step=stage.G, pairs=pairs, sums={}, nonfinite=None, plan=plan, graph=None)
    return count_flops(lambda: train_step(eager, batch))


def peak_flops_for_name(name: str, precision: torch.dtype | str) -> float | None:
    """The data-sheet dense peak FLOP/s of the GPU called `name` at `precision`; None when not in the table.

    Args:
        name: a device name as torch.cuda.get_device_name() gives it, e.g. "NVIDIA H100 80GB HBM3".
        precision: torch.bfloat16 / torch.float16 / torch.float32, or "bf16" | "fp16" | "tf32" | "fp32".

    Raises:
        ValueError: `precision` is none of those.
    """
    if precision not in _PRECISIONS:
        raise ValueError(f"precision={precision!r}; expected one of torch.bfloat16, torch.float16, torch.float32, "
                         f"'bf16', 'fp16', 'tf32', 'fp32'")
    words = set(re.split(r"[\s\-_/]+", name.upper()))
    if "MIG" in words:  # a slice of a GPU: its share of the peak is not in the data sheet
        return None
    for pattern, peaks in PEAK_FLOPS:
        if all(word.upper() in words for word in pattern):
            return peaks[_PRECISIONS[precision]]
    return None


def peak_flops(device: torch.device | str, dtype: torch.dtype | str) -> float | None:
    """Peak FLOP/s of `device` at `dtype` from the table of known GPUs; None on CPU or an unknown GPU.

    Never guesses: a GPU missing from `PEAK_FLOPS` gives None, and MFU is then not reported.
    """
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    return peak_flops_for_name(torch.cuda.get_device_name(device), dtype)


def mfu(flops_per_step: float, seconds_per_step: float, peak: float) -> float:
    """Model FLOPs utilisation: (flops_per_step / seconds_per_step) / peak, a fraction in [0, 1] when sane."""
    if seconds_per_step <= 0:
        raise ValueError(f"seconds_per_step={seconds_per_step}; expected a positive duration")
    if peak <= 0:
        raise ValueError(f"peak={peak}; expected a positive peak FLOP/s (see peak_flops)")
    return flops_per_step / seconds_per_step / peak
