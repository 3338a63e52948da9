"""Evaluation captions and generated images: which captions a run is judged on, and its images for them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from ganblocks.blocks.conditioning import draw_all, fixed_draws
from ganblocks.evaluation.evaluator import to_uint8
from ganblocks.evaluation.samples import caption_values


@dataclass
class EvalCaptions:
    """K evaluation captions of a test split, each one (image, caption) pair of the dataset.

    image_index:   (K,) int64 dataset row.
    caption_index: (K,) int64 which of that row's captions.
    class_ids:     (K,) int64.
    embeddings:    (K, D) float32 caption embeddings (of the dataset's text encoder), or None.
    values:        (K, A) int64 attributes the caption names (-1 = not named), or None without attributes.
    texts:         K caption strings.
    """

    image_index: Tensor
    caption_index: Tensor
    class_ids: Tensor
    embeddings: Tensor | None
    values: Tensor | None
    texts: list[str]

    def __len__(self) -> int:
        return len(self.image_index)


def evaluation_captions(dataset: Any, n_captions: int | None, seed: int) -> EvalCaptions:
    """`n_captions` (image, caption) pairs of `dataset`, spread over its images (None = every caption once).

    The choice depends only on the dataset's size and `seed`, so runs with other text encoders get the same
    captions (re-embed them with `embed_captions`).
    """
    n_images, n_caps = len(dataset), len(dataset.captions[0])
    total = n_images * n_caps
    gen = torch.Generator().manual_seed(seed)
    if n_captions is None or n_captions >= total:
        flat = torch.arange(total)
    else:
        # every image once before any image twice: a random caption per image, then more
        per_image = torch.stack([torch.randperm(n_caps, generator=gen) for _ in range(n_images)])  # (N, C)
        order = torch.randperm(n_images, generator=gen)
        flat = (order[:, None] * n_caps + per_image[order]).T.reshape(-1)[:n_captions]
    image_index, caption_index = flat // n_caps, flat % n_caps
    return caption_subset(dataset, image_index, caption_index)


def caption_subset(dataset: Any, image_index: Tensor, caption_index: Tensor) -> EvalCaptions:
    """The `EvalCaptions` of given (image, caption) pairs of `dataset` (embedded with its text encoder)."""
    emb = dataset.embeddings
    embeddings = emb[image_index, caption_index].float() if emb is not None and emb.shape[-1] > 0 else None
    values = None
    if getattr(dataset, "caption_attributes", None) is not None:
        named = [dataset.caption_attributes[int(i)][int(j)] for i, j in zip(image_index, caption_index)]
        values = caption_values(named, len(dataset.attribute_spec))
    texts = [dataset.captions[int(i)][int(j)] for i, j in zip(image_index, caption_index)]
    return EvalCaptions(image_index, caption_index, dataset.class_ids[image_index], embeddings, values, texts)


def caption_pool(dataset: Any) -> tuple[Tensor, Tensor]:
    """Every caption of `dataset` as (values (P, A), image_ids (P,)): where R-precision draws mismatches.

    `image_ids` is the dataset row each caption describes (an image's own captions are never its rivals).
    """
    named = [d for per_image in dataset.caption_attributes for d in per_image]
    counts = torch.tensor([len(per_image) for per_image in dataset.caption_attributes])
    return caption_values(named, len(dataset.attribute_spec)), torch.arange(len(counts)).repeat_interleave(counts)


@torch.no_grad()
def generate(generator: nn.Module, embeddings: Tensor, n_per_caption: int, seed: int, batch_size: int = 64,
             keep_stage1: bool = False) -> tuple[Tensor, Tensor, Tensor | None]:
    """Images of `generator` for every caption with `n_per_caption` noise draws, caption-major.

    (K, D) embeddings -> (uint8 (K * n, 3, S, S), caption ids (K * n,), Stage-I uint8 (K * n, 3, 64, 64) or None).
    Every random input of every sample (noise z, each conditioning block's eps and mixture component) is
    drawn up front from one generator seeded by `seed`, so the images do not depend on `batch_size`. The
    global RNG is seeded too (for blocks that declare no draws) and restored afterwards.
    """
    device = next(generator.parameters()).device
    ids = torch.arange(len(embeddings)).repeat_interleave(n_per_caption)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(len(ids), generator.noise_dim, generator=gen)
    draws = draw_all(generator, len(ids), gen)
    images, stage1 = [], []
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for s in range(0, len(ids), batch_size):
            rows = slice(s, s + batch_size)
            with fixed_draws(generator, draws, rows, device):
                out = generator(embeddings[ids[rows]].to(device), noise[rows].to(device))
            images.append(to_uint8(out.image).cpu())
            if keep_stage1 and out.stage1_image is not None:
                stage1.append(to_uint8(out.stage1_image).cpu())
    return torch.cat(images), ids, torch.cat(stage1) if stage1 else None
