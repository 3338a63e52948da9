"""Diversity: how different the images of one caption are under different noise (what CA is for)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ganblocks.metrics.base import EvalSamples, MetricRefused
from ganblocks.registry import register


def mean_pairwise_distance(features: Tensor, groups: Tensor) -> Tensor:
    """Per group of >= 2 rows, the mean pairwise L2 distance of unit-normalised features.

    (N, F) features, (N,) group ids -> (G,) one value per group with at least two members.
    """
    feats = F.normalize(features.double(), dim=1)
    out = []
    for g in groups.unique():
        f = feats[groups == g]
        if len(f) < 2:
            continue
        d = torch.cdist(f, f)
        out.append(d.sum() / (len(f) * (len(f) - 1)))
    if not out:
        raise MetricRefused("diversity needs at least one caption with two or more images (metrics.n_per_caption "
                            ">= 2: noise draws per caption)")
    return torch.stack(out)


@register("metric", "diversity")
class Diversity:
    """Mean pairwise distance between evaluator features of images drawn for the same caption with different
    noise (0 = mode collapse per caption); real images of one class give the reference (`real_reference`).

    Its std is the standard error over captions (each caption gives one value).
    """

    def __call__(self, samples: EvalSamples) -> dict[str, dict]:
        samples.require_evaluator("diversity")
        if samples.fake_caption_ids is None:
            raise ValueError("diversity needs fake_caption_ids (which caption each image was drawn for)")
        per_caption = mean_pairwise_distance(samples.fake_outputs().features, samples.fake_caption_ids)
        reference = None
        if samples.real is not None and samples.real_class_ids is not None:
            reference = float(mean_pairwise_distance(samples.real_outputs().features, samples.real_class_ids).mean())
        se = float(per_caption.std(unbiased=True) / len(per_caption) ** 0.5) if len(per_caption) > 1 else 0.0
        return {"diversity": samples.record(per_caption.mean(), se, len(samples.fake), len(per_caption),
                                            accuracy="class", std_over="captions", real_reference=reference)}
