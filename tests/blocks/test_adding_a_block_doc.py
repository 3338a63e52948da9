"""docs/adding_a_block.md: its example class registers, passes the upsample contract and builds a model."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ganblocks.models import build_generator
from ganblocks.registry import REGISTRIES, build

DOC = Path(__file__).resolve().parents[2] / "docs" / "adding_a_block.md"


def test_documented_example_block_works(monkeypatch):
    python_blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    registry = REGISTRIES["upsample"]
    # The example leaves no trace, and still registers where a user has already added it to
    # ganblocks/blocks/upsample.py by following the README (the suite must stay green after that).
    entries = {name: cls for name, cls in registry._entries.items() if name != "nearest_dwsep"}
    monkeypatch.setattr(registry, "_entries", entries)
    exec(compile(python_blocks[0], str(DOC), "exec"), {})
    block = build("upsample", "nearest_dwsep", in_channels=6, out_channels=4)
    assert block(torch.randn(2, 6, 5, 5)).shape == (2, 4, 10, 10)
    g = build_generator("stage1", "paper", upsample="nearest_dwsep", gf_dim=4, text_dim=32)
    assert type(g.upsample1).__name__ == "NearestDepthwiseSeparableUp"
    assert g(torch.randn(2, 32), torch.randn(2, 100)).image.shape == (2, 3, 64, 64)
