"""The paper's figures for one run: Stage-I vs Stage-II images for the same captions, one caption under
several noise vectors, interpolation between two captions with noise fixed, and the nearest training images
of generated ones by discriminator features (the memorisation check)."""

from __future__ import annotations

import contextlib
import textwrap
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ganblocks.evaluation.evaluator import center_crop, to_uint8


def save_figure(rows: Sequence[Tensor], path: str | Path, row_labels: Sequence[str] = (),
                col_titles: Sequence[str] = (), title: str = "") -> Path:
    """A grid figure: one row per uint8 (n, 3, S, S) tensor (resized to the largest S), labelled, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ganblocks.io import atomic_open

    size = max(r.shape[-1] for r in rows)
    n_cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(1.6 * n_cols + 1.0, 1.6 * len(rows) + 0.8), squeeze=False)
    for i, row in enumerate(rows):
        row = F.interpolate(row.float(), size=(size, size), mode="nearest") if row.shape[-1] != size else row
        for j in range(n_cols):
            ax = axes[i][j]
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(row):
                ax.imshow(row[j].permute(1, 2, 0).to(torch.uint8).numpy())
            if j == 0 and i < len(row_labels):
                ax.set_ylabel(row_labels[i], fontsize=8)
            if i == 0 and j < len(col_titles):
                ax.set_title(textwrap.fill(col_titles[j], 22), fontsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return path


@contextlib.contextmanager
def conditioning_means(generator: nn.Module) -> Iterator[None]:
    """Switch every conditioning block to `use_mean` (code = mean) for deterministic interpolation."""
    blocks = [m for m in generator.modules() if hasattr(m, "use_mean")]
    saved = [m.use_mean for m in blocks]
    try:
        for m in blocks:
            m.use_mean = True
        yield
    finally:
        for m, s in zip(blocks, saved):
            m.use_mean = s


@torch.no_grad()
def _run(generator: nn.Module, embeddings: Tensor, noise: Tensor, seed: int):
    device = next(generator.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        return generator(embeddings.to(device), noise.to(device))


def stage_figure(generator: nn.Module, embeddings: Tensor, texts: Sequence[str], path: Path, seed: int = 0) -> Path:
    """Stage-I (64x64) and Stage-II images of the same captions and noise; (K, D) embeddings."""
    noise = torch.randn(len(embeddings), generator.noise_dim, generator=torch.Generator().manual_seed(seed))
    out = _run(generator, embeddings, noise, seed)
    rows, labels = [to_uint8(out.image).cpu()], [f"{out.image.shape[-1]}x{out.image.shape[-1]}"]
    if out.stage1_image is not None:
        rows.insert(0, to_uint8(out.stage1_image).cpu())
        labels.insert(0, "Stage-I")
        labels[1] = "Stage-II"
    return save_figure(rows, path, labels, texts, "Stage-I and Stage-II images for the same captions and noise")


def noise_figure(generator: nn.Module, embedding: Tensor, text: str, path: Path, n: int = 8, seed: int = 0) -> Path:
    """One caption under `n` noise vectors (what conditioning augmentation is for)."""
    noise = torch.randn(n, generator.noise_dim, generator=torch.Generator().manual_seed(seed))
    out = _run(generator, embedding[None].expand(n, -1), noise, seed)
    return save_figure([to_uint8(out.image).cpu()], path, [f"{n} noise draws"], title=textwrap.fill(text, 90))


def interpolation_figure(generator: nn.Module, start: Tensor, end: Tensor, texts: Sequence[str], path: Path,
                         steps: int = 8, seed: int = 0) -> Path:
    """Images along the line between two caption embeddings, noise fixed and conditioning at its mean."""
    t = torch.linspace(0, 1, steps)[:, None]
    embeddings = (1 - t) * start[None] + t * end[None]
    noise = torch.randn(1, generator.noise_dim, generator=torch.Generator().manual_seed(seed)).expand(steps, -1)
    with conditioning_means(generator):
        out = _run(generator, embeddings, noise, seed)
    title = f"from: {texts[0]}\nto: {texts[1]}"
    return save_figure([to_uint8(out.image).cpu()], path, ["interpolation"], title=textwrap.fill(title, 100))


@torch.no_grad()
def nearest_neighbour_figure(fake: Tensor, train: Tensor, feature_fn: Callable[[Tensor], Tensor], path: Path,
                             k: int = 4, feature_name: str = "discriminator") -> Path:
    """Each generated image (first column) with its `k` nearest training images by `feature_fn` features.

    fake (n, 3, S, S) and train (M, 3, S, S) uint8; feature_fn: uint8 images -> (B, ...) features.
    """
    def feats(images: Tensor) -> Tensor:
        return torch.cat([feature_fn(images[s : s + 128]).flatten(1).double().cpu() for s in range(0, len(images), 128)])

    f_fake, f_train = F.normalize(feats(fake), dim=1), F.normalize(feats(train), dim=1)
    nearest = torch.cdist(f_fake, f_train).topk(min(k, len(train)), dim=1, largest=False).indices
    rows = [torch.cat([fake[i : i + 1], train[nearest[i]]]) for i in range(len(fake))]
    return save_figure(rows, path, [f"sample {i}" for i in range(len(fake))],
                       ["generated"] + [f"nearest {j + 1}" for j in range(nearest.shape[1])],
                       f"Nearest training images by {feature_name} features (memorisation check)")


def discriminator_features(ctx: Any) -> Callable[[Tensor], Tensor] | None:
    """`encode` of the run's last-stage discriminator (images uint8 -> features), or None if unavailable."""
    try:
        from ganblocks.training import assemble
        from ganblocks.training.checkpoint import load_checkpoint

        stages = {st.name: st for st in ctx.run_cfg.pipeline.stages}
        stage = ctx.run_cfg.pipeline.stages[-1]
        state = load_checkpoint(ctx.run_dir / "checkpoints" / stage.name / "final.pt", map_location="cpu")
        fixed = None
        if stage.get("fixed") is not None:
            fixed = assemble.build_stage_models(ctx.run_cfg, stages[stage.fixed], state["text_dim"], None)[0]
        D = assemble.build_stage_models(ctx.run_cfg, stage, state["text_dim"], fixed)[1]
        D.load_state_dict(state["discriminator"])
        D = assemble.discriminators(D)[-1].eval()  # a tree's: the D of the output scale
    except Exception:  # noqa: BLE001 - the figure falls back to evaluator features and says so
        return None
    return lambda images: D.encode(images.float() / 127.5 - 1.0)


def write_run_figures(ctx: Any, captions: Any) -> list[str]:
    """Write the four figures of a run into `run_dir/figures/`; returns their paths relative to the run."""
    m, G = ctx.mcfg, ctx.generator()
    folder = ctx.run_dir / "figures"
    k = min(int(m.figure_captions), len(captions))
    emb, texts, seed = captions.embeddings[:k], captions.texts[:k], int(m.seed)
    paths = [stage_figure(G, emb, texts, folder / "stages.png", seed),
             noise_figure(G, emb[0], texts[0], folder / "noise.png", seed=seed)]
    if k >= 2:
        paths.append(interpolation_figure(G, emb[0], emb[1], texts[:2], folder / "interpolation.png", seed=seed))
    size = int(G.out_size)
    noise = torch.randn(k, G.noise_dim, generator=torch.Generator().manual_seed(seed))
    fake = to_uint8(_run(G, emb, noise, seed).image).cpu()
    train = center_crop(ctx.dataset(size, split="train").images, size).contiguous()
    feature_fn, name = discriminator_features(ctx), "discriminator"
    if feature_fn is None:
        evaluator = ctx.evaluator()
        feature_fn, name = (lambda images: evaluator.outputs(images).features), evaluator.name
    paths.append(nearest_neighbour_figure(fake, train, feature_fn, folder / "nearest_train.png", feature_name=name))
    return [str(p.relative_to(ctx.run_dir)) for p in paths]
