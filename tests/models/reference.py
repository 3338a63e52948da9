"""Reads the official StackGAN-Pytorch state-dict reference (names and shapes) committed beside the tests."""

from __future__ import annotations

import re
from pathlib import Path

import torch

REFERENCE = Path(__file__).resolve().parent / "data" / "stackgan_pytorch_state_dicts.txt"


def read_reference(path: Path = REFERENCE) -> dict[str, dict]:
    """{model: {"params": int, "entries": {key: shape}}} for STAGE1_G, STAGE1_D, STAGE2_G, STAGE2_D."""
    models: dict[str, dict] = {}
    current = None
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            name, params = re.match(r"## (\w+): (\d+) parameters", line).groups()
            current = models.setdefault(name, {"params": int(params), "entries": {}})
        elif line and not line.startswith("#"):
            key, shape = line.split("\t")
            current["entries"][key] = tuple(int(n) for n in re.findall(r"\d+", shape))
    return models


def random_state_dict(entries: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors with the reference names and shapes, scaled so activations stay in a useful range."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in entries.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) * 0.5 + 0.75
        elif key.endswith("running_mean") or key.endswith("bias"):
            state[key] = torch.randn(shape, generator=gen) * 0.1
        elif len(shape) == 1:  # BatchNorm weight
            state[key] = 1 + 0.1 * torch.randn(shape, generator=gen)
        else:
            fan_in = int(torch.tensor(shape[1:]).prod())
            state[key] = torch.randn(shape, generator=gen) / fan_in**0.5
    return state
