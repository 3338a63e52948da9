"""Side-by-side samples of a grid: the same captions and the same noise through every variant's generator.

samples/seed<k>.png: a block of rows per variant (its Stage-I 64x64 row, then its final row when the
generator has two stages; Stage-I images are shown up-sampled to the final size), one column per caption,
each column's caption written above it and each row labelled with its variant and stage
(`ganblocks.sheets`). samples/captions.txt lists the captions, left to right.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd
import torch
import torch.nn.functional as F

from ganblocks.io import atomic_write_text
from ganblocks.sheets import compose_sheet

N_CAPTIONS = 8
NOISE_SEED = 1234  # the same noise for every variant and every grid


def evaluation_captions(cfg, n: int = N_CAPTIONS) -> tuple[list[str], torch.Tensor]:
    """The first caption of `n` evenly spaced test images of the run's dataset, and their embeddings (n, D)."""
    from ganblocks.training.assemble import build_training_dataset

    dataset = build_training_dataset(cfg, int(cfg.model.stage1_size), split="test")
    total = len(dataset.captions)
    idx = torch.linspace(0, total - 1, steps=min(n, total)).round().long().tolist()
    captions = [dataset.captions[i][0] for i in idx]
    embeddings = torch.as_tensor(dataset.embeddings[idx, 0]).float()
    return captions, embeddings


def to_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 3, h, w) in [-1, 1] -> (B, 3, size, size) uint8 (nearest up-sampling keeps pixels honest)."""
    if images.shape[-1] != size:
        images = F.interpolate(images.float(), size=(size, size), mode="nearest")
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


@torch.no_grad()
def variant_rows(run_dir: Path, embeddings: torch.Tensor, size: int | None = None) -> list[tuple[str, torch.Tensor]]:
    """[(row name, (n, 3, S, S) uint8)]: Stage-I row (if any) and final row for one run's generator."""
    from ganblocks.training import load_generator

    g = load_generator(run_dir, device="cpu")
    noise = torch.randn(embeddings.shape[0], int(g.noise_dim), generator=torch.Generator().manual_seed(NOISE_SEED))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(NOISE_SEED)  # the conditioning's draws too: the same for every variant and every rerun
        out = g(embeddings, noise)
    size = size or int(out.image.shape[-1])
    rows = []
    if out.stage1_image is not None:
        rows.append(("Stage-I", to_uint8(out.stage1_image, size)))
    rows.append((f"{out.image.shape[-1]}px", to_uint8(out.image, size)))
    return rows


def sample_grids(frame: pd.DataFrame, out_dir: Path, order: Sequence[str] | None = None) -> dict[str, Path]:
    """samples/seed<k>.png for each seed with finished runs, and samples/captions.txt."""
    from omegaconf import OmegaConf

    out_dir = Path(out_dir)
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return {}
    labels = [v for v in (order or []) if v in set(ok["variant"])] + [v for v in ok["variant"].drop_duplicates() if v not in (order or [])]
    first = ok.iloc[0]
    cfg = OmegaConf.load(out_dir / str(first.run_dir) / "config.yaml")
    captions, embeddings = evaluation_captions(cfg)
    size = int(cfg.model.stage2_size)
    paths = {}
    embedded = {OmegaConf.to_yaml(cfg.get("data") or {}): embeddings}  # the captions in each run's own text encoder

    def own_embeddings(run_dir: Path) -> torch.Tensor:
        run_cfg = OmegaConf.load(run_dir / "config.yaml")
        key = OmegaConf.to_yaml(run_cfg.get("data") or {})
        if key not in embedded:  # e.g. AttnGAN's packed DAMSM captions beside another family's sentence vectors
            embedded[key] = evaluation_captions(run_cfg)[1]
        return embedded[key]

    for seed, sub in ok.groupby("seed"):
        by_variant = {r.variant: out_dir / str(r.run_dir) for r in sub.itertuples()}
        rows = [((v, name), images) for v in labels if v in by_variant
                for name, images in variant_rows(by_variant[v], own_embeddings(by_variant[v]), size)]
        path = out_dir / "samples" / f"seed{int(seed)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp.png")
        compose_sheet(rows, captions).save(tmp)
        tmp.replace(path)
        paths[f"samples/seed{int(seed)}.png"] = path
    atomic_write_text(out_dir / "samples" / "captions.txt", "\n".join(f"{i + 1}. {c}" for i, c in enumerate(captions)) + "\n")
    paths["samples/captions.txt"] = out_dir / "samples" / "captions.txt"
    return paths
