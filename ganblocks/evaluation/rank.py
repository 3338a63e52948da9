"""Rank proxy for the paper's human rank: the judge ranks every compared model's images per caption.

For each evaluation caption, every model's images for it get two judge scores: text agreement (the share of
the attribute values the caption names that the judge reads in the image) and realism (closeness of the
image to the nearest real images in the evaluator's content and style features, `Evaluator.realism_features`).
Text agreement counts hits rather than averaging log-probabilities: a log-probability rewards an untrained
model's uncertain reading over a trained model's confident but partly wrong one, and a person comparing images
does not. Realism looks at style as well as content because a classifier's content features place a flat grey
image among the real ones. Models are ranked per caption on each score, the two ranks averaged and re-ranked,
and the per-caption ranks averaged over captions: mean rank +- standard error, lower is better (the paper's
Table 1 reports 1.37 for StackGAN against 1.99 and 2.81).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor

from ganblocks.evaluation.evaluator import Evaluator

# Names how the scores are made; cached ranks made under another protocol are recomputed (ablations.collect).
PROTOCOL = ("rank-proxy-v4 (text: share of named attributes judged at the images' size that the judge reads; "
            "realism: distance to the 3rd-nearest real image in content + style features)")

SampleFn = Callable[..., Tensor]  # (captions: EvalCaptions, n_per_caption: int, seed: int) -> uint8 (K*n, 3, S, S)


def average_ranks(scores: Tensor) -> Tensor:
    """Per row, the rank of each column (1 = highest score; ties share the average rank); (K, M) -> (K, M)."""
    greater = (scores[:, None, :] > scores[:, :, None]).sum(-1)  # [k, m] = #models scoring above m
    equal = (scores[:, None, :] == scores[:, :, None]).sum(-1) - 1
    return 1.0 + greater.double() + 0.5 * equal.double()


def judge_scores(evaluator: Evaluator, images: Tensor, values: Tensor, real_features: Tensor,
                 k: int = 3) -> tuple[Tensor, Tensor]:
    """Text agreement and realism of each image; (N, 3, S, S), (N, A), (M, F_r) -> ((N,), (N,)).

    `real_features` are `evaluator.realism_features` of the reference real images.

    Text agreement is the share of the named attributes (values >= 0) judged at the images' size whose most
    likely value under the judge is the named one (0 for a caption naming none of them). Realism is minus the
    distance of the image's realism features to its k-th nearest real image.
    """
    out = evaluator.outputs(images)
    values = evaluator.judged_values(values, int(images.shape[-1]))  # only what the judge reads at this size
    named = values >= 0
    hits = torch.stack([logits.argmax(1) == values[:, a] for a, logits in enumerate(out.attribute_logits)], 1)
    text = (hits & named).sum(1).double() / named.sum(1).clamp(min=1)
    dist = torch.cdist(evaluator.realism_features(images).double(), real_features.double())
    kth = dist.topk(min(k, len(real_features)), dim=1, largest=False).values[:, -1]
    return text, -kth


def rank_from_scores(text: Mapping[str, Tensor], realism: Mapping[str, Tensor]) -> dict[str, dict]:
    """Rank models per caption from per-caption mean scores; {name: (K,)} x 2 -> {name: {value, sem, ...}}."""
    names = list(text)
    if len(names) < 2:
        raise ValueError(f"the rank proxy compares two or more models; got {names}")
    t = torch.stack([text[n] for n in names], 1)  # (K, M)
    r = torch.stack([realism[n] for n in names], 1)
    combined = average_ranks(t) + average_ranks(r)
    ranks = average_ranks(-combined)  # lower combined rank is better
    k = len(ranks)
    mean = ranks.mean(0)
    sem = ranks.std(0, unbiased=True) / math.sqrt(k) if k > 1 else torch.zeros(len(names))
    return {n: {"value": float(mean[i]), "sem": float(sem[i]), "std": float(sem[i]), "n_captions": k,
                "n_models": len(names), "text_rank": float(average_ranks(t)[:, i].mean()),
                "realism_rank": float(average_ranks(r)[:, i].mean())}
            for i, n in enumerate(names)}


def rank_images(images: Mapping[str, Tensor], values: Tensor, n_per_caption: int, evaluator: Evaluator,
                real_images: Tensor, size: int | None = None) -> dict[str, dict]:
    """The rank proxy of fixed image sets: {name: uint8 (K * n, 3, S_m, S_m) caption-major} -> {name: record}.

    Every set is judged at one size, `size` or else the largest S_m (the others resized to it, bilinear,
    antialiased: `pixels.resize`), so models drawing different sizes (Stage-I only beside Stage-II) are read on
    the same attributes; the records carry it as `image_size`.

    Args:
        values:      (K, A) attributes each evaluation caption names.
        real_images: uint8 real images of the evaluated split (the realism reference).
    """
    from ganblocks.evaluation.pixels import resize

    common = int(size or max(int(imgs.shape[-1]) for imgs in images.values()))
    images = {name: resize(imgs, common) for name, imgs in images.items()}
    real_features = evaluator.realism_features(real_images)
    per_image_values = values.repeat_interleave(n_per_caption, 0)
    text, realism = {}, {}
    for name, imgs in images.items():
        if len(imgs) != len(per_image_values):
            raise ValueError(f"model {name!r} gave {len(imgs)} images; expected {len(values)} captions x "
                             f"{n_per_caption} = {len(per_image_values)}")
        t, r = judge_scores(evaluator, imgs, per_image_values, real_features)
        text[name] = t.view(len(values), n_per_caption).mean(1)
        realism[name] = r.view(len(values), n_per_caption).mean(1)
    results = rank_from_scores(text, realism)
    for rec in results.values():
        rec.update(evaluator=evaluator.name, n_per_caption=n_per_caption, n_samples=len(per_image_values),
                   protocol=PROTOCOL, image_size=common)
    return results


def rank_proxy(models: Mapping[str, Any] | Sequence[str | os.PathLike], cfg: Any = None, *,
               n_captions: int | None = None, n_per_caption: int | None = None, seed: int | None = None,
               progress: bool = False) -> dict[str, dict]:
    """The rank proxy across runs: {name: run_dir} (or a list of run dirs) -> {name: {value, sem, ...}}.

    All runs must use the same dataset; each is given the same evaluation captions (embedded by its own text
    encoder) and noise. `value` is the mean rank over captions (1 = best), `sem` its standard error.

    Args:
        models: run folders by name; a value may also be a `SampleFn` (stand-ins, e.g. in tests) when the
                first value is a run folder that sets the dataset.
        cfg:    a metrics config (or a run config holding `metrics`); default: the first run's.
    """
    from ganblocks.evaluation.evaluator import center_crop
    from ganblocks.evaluation.run import RunContext
    from ganblocks.evaluation.sampling import caption_subset, evaluation_captions, generate

    if not isinstance(models, Mapping):
        short = [Path(m).name for m in models]
        models = {(s if short.count(s) == 1 else str(m)): m for s, m in zip(short, models)}
    run_dirs = {n: Path(m) for n, m in models.items() if isinstance(m, (str, os.PathLike))}
    if not run_dirs:
        raise ValueError("rank_proxy needs at least one run folder (it sets the dataset and the evaluator)")
    first = next(iter(run_dirs.values()))
    ctx = RunContext(first, cfg)
    mcfg = ctx.mcfg
    runs = {name: RunContext(path, mcfg) for name, path in run_dirs.items()}
    for run in runs.values():  # every generator loads (or its file is refused) before any costly work
        run.generator()
    n_per = int(n_per_caption or mcfg.rank_per_caption)
    seed = int(mcfg.seed if seed is None else seed)
    evaluator = ctx.evaluator(progress=progress)
    size = evaluator.meta["image_size"]
    test = ctx.dataset(size)
    captions = evaluation_captions(test, int(n_captions or mcfg.rank_captions), seed)
    images = {}
    for name, model in models.items():
        if isinstance(model, (str, os.PathLike)):
            run = runs[name]
            if run.data_key() != ctx.data_key():
                raise ValueError(f"run {name!r} uses data {run.data_key()}, unlike {ctx.data_key()} of "
                                 f"{first}: the rank proxy compares runs on one dataset")
            embedded = caption_subset(run.dataset(size), captions.image_index, captions.caption_index)
            images[name] = generate(run.generator(), embedded.embeddings, n_per, seed)[0]
        elif callable(model):
            images[name] = model(captions, n_per, seed)
        else:
            raise TypeError(f"rank_proxy: model {name!r} is {type(model).__name__}; expected a run folder or a "
                            "callable (captions, n_per_caption, seed) -> uint8 images")
    return rank_images(images, captions.values, n_per, evaluator, center_crop(test.images, size),
                       size=mcfg.get("image_size"))  # null: the largest of the runs' sizes
