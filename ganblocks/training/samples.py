"""Sample sheets written during training: the stage's fixed captions and noise, one row per scale.

    sheet = write_samples(stage, run_dir / "samples" / "stage1_0000004.png")   # also returned (PIL image)

The sheet is drawn by the EMA generator when the stage keeps one, in eval mode, under a forked RNG seeded
0, so sampling never moves the training RNG (an interrupted and resumed run stays bit-exact).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from ganblocks.io import atomic_write_bytes
from ganblocks.sheets import compose_sheet
from ganblocks.types import GeneratorOutput


@torch.no_grad()
def write_samples(s: Any, path: Path) -> Image.Image:
    """A sheet of `s.sample_text` / `s.sample_noise` (a `step.Stage`), captions above the columns; written
    to `path` atomically and returned."""
    model = s.ema if s.ema is not None else s.G
    was_training = model.training
    model.eval()
    with torch.random.fork_rng(devices=[s.sample_text.device] if s.sample_text.is_cuda else []):
        torch.manual_seed(0)
        out = model(s.sample_text, s.sample_noise)
    model.train(was_training)
    sheet = sample_sheet(out, s.sample_captions)
    buffer = io.BytesIO()
    sheet.save(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())
    return sheet


def sample_sheet(out: GeneratorOutput, captions: list[str]) -> Image.Image:
    """Rows: the Stage-I image (a Stage-II generator), each branch's image (a tree), the output image; every
    row scaled (nearest) to the output size."""
    size = out.image.shape[-1]
    as_uint8 = lambda x: ((nn.functional.interpolate(x.float(), size=size, mode="nearest").clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()  # noqa: E731
    rows = [(("Stage-I",), as_uint8(out.stage1_image))] if out.stage1_image is not None else []
    lower = out.images[:-1] if out.images is not None else ()
    rows += [((f"{x.shape[-1]}px",), as_uint8(x)) for x in lower]
    rows.append(((f"{size}px",), as_uint8(out.image)))
    return compose_sheet(rows, captions)
