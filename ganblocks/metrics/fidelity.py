"""IS, FID and KID, computed by torch-fidelity on the evaluator's layers (or a local Inception-v3).

Too few images for a metric is a `MetricRefused` whose message names the setting to raise, raised before
torch-fidelity is called, so `evaluate_run` still writes every other metric.
"""

from __future__ import annotations

from math import comb

import numpy as np

from ganblocks.metrics.base import EvalSamples, MetricRefused
from ganblocks.registry import register

FEW_FAKE = "generated images = captions x metrics.n_per_caption; raise metrics.n_samples (and metrics.n_per_caption)"
FEW_REAL = "real images come from metrics.real_split, at most metrics.n_real of them"


def require_images(metric: str, samples: EvalSamples, at_least: int) -> None:
    """Refuse (MetricRefused) unless there are `at_least` generated and real images, naming the settings."""
    if samples.real is None:
        raise ValueError(f"{metric} needs real images (EvalSamples.real is None)")
    n_fake, n_real = len(samples.fake), len(samples.real)
    if n_fake < at_least:
        raise MetricRefused(f"{metric} needs at least {at_least} generated images to estimate a distribution, got "
                            f"{n_fake} ({FEW_FAKE})")
    if n_real < at_least:
        raise MetricRefused(f"{metric} needs at least {at_least} real images, got {n_real} ({FEW_REAL})")


def distinct_kid_subsets(n_fake: int, n_real: int, size: int, subsets: int, seed: int) -> int:
    """How many of torch-fidelity's `subsets` (fake subset, real subset) draws differ from each other.

    Replays torch-fidelity 0.4's draws (numpy RandomState(seed); per subset `choice(n_fake, size)` then
    `choice(n_real, size)`, without replacement), so the recorded split count is the true one.
    """
    if comb(n_fake, size) * comb(n_real, size) <= 1:
        return 1
    rng = np.random.RandomState(seed)
    drawn = set()
    for _ in range(subsets):
        fake = tuple(sorted(rng.choice(n_fake, size, replace=False).tolist()))
        real = tuple(sorted(rng.choice(n_real, size, replace=False).tolist()))
        drawn.add((fake, real))
    return len(drawn)


@register("metric", "is")
class InceptionScore:
    """Inception score exp(E KL(p(y|x) || p(y))) of the generated images under the class head (or the
    classifier of `metrics.is_classifier`); higher is better.

    Uses `splits` splits (10, as the papers), fewer when there are under `min_per_split` images per split; the
    number used is recorded. A user classifier sees the images resized to `classifier_size` (299 for
    Inception-v3). One image repeated, or a classifier that gives every image the same logits, scores exactly 1.
    """

    def __init__(self, splits: int = 10, min_per_split: int = 10, classifier_size: int = 299) -> None:
        if splits < 1 or min_per_split < 1 or classifier_size < 1:
            raise ValueError(f"is: splits={splits}, min_per_split={min_per_split} and classifier_size="
                             f"{classifier_size} must be >= 1")
        self.splits, self.min_per_split, self.classifier_size = splits, min_per_split, classifier_size

    def __call__(self, samples: EvalSamples) -> dict[str, dict]:
        from ganblocks.evaluation.fidelity import fidelity_metrics

        n = len(samples.fake)
        splits = max(1, min(self.splits, n // self.min_per_split))
        if samples.is_classifier:
            from ganblocks.evaluation.classifier import register_is_classifier

            extractor, label = register_is_classifier(samples.is_classifier, self.classifier_size)
            extra = {"classifier": label}
        else:
            extractor, extra = samples.fidelity_extractor(), {}
        out = fidelity_metrics(samples.fake, extractor=extractor, isc=True, isc_splits=splits, seed=samples.seed)
        return {"is": samples.record(out["inception_score_mean"], out["inception_score_std"], n, splits,
                                     accuracy=None if samples.is_classifier else "class", std_over="splits",
                                     **extra)}


@register("metric", "fid")
class FrechetDistance:
    """Frechet distance between Gaussians fitted to generated and real penultimate features; lower is better.

    Identical sets give ~0. Refused (MetricRefused) with fewer than 2 generated or real images.
    """

    def __call__(self, samples: EvalSamples) -> dict[str, dict]:
        from ganblocks.evaluation.fidelity import fidelity_metrics

        require_images("fid", samples, 2)
        extractor = samples.fidelity_extractor()
        out = fidelity_metrics(samples.fake, samples.real, extractor=extractor, fid=True, seed=samples.seed,
                               real_cache_name=samples.fidelity_real_cache_name(extractor))
        return {"fid": samples.record(out["frechet_inception_distance"], 0.0, len(samples.fake), 1,
                                      accuracy="class", n_real=len(samples.real))}


@register("metric", "kid")
class KernelDistance:
    """Kernel (polynomial MMD^2) distance between generated and real features over random subsets; lower is better.

    Subsets hold min(`subset_size`, min(N_fake, N_real) - 1) images, strictly fewer than the smaller set, so
    they differ from each other; the size used, the subsets drawn and how many of them are distinct (`splits`)
    are recorded. Refused (MetricRefused) with fewer than 3 generated or real images (a subset needs 2).
    """

    def __init__(self, subsets: int = 100, subset_size: int = 1000) -> None:
        if subsets < 1 or subset_size < 2:
            raise ValueError(f"kid: subsets={subsets} must be >= 1 and subset_size={subset_size} >= 2")
        self.subsets, self.subset_size = subsets, subset_size

    def __call__(self, samples: EvalSamples) -> dict[str, dict]:
        from ganblocks.evaluation.fidelity import fidelity_metrics

        require_images("kid", samples, 3)
        n_fake, n_real = len(samples.fake), len(samples.real)
        size = min(self.subset_size, min(n_fake, n_real) - 1)
        extractor = samples.fidelity_extractor()
        out = fidelity_metrics(samples.fake, samples.real, extractor=extractor, kid=True, kid_subsets=self.subsets,
                               kid_subset_size=size, seed=samples.seed,
                               real_cache_name=samples.fidelity_real_cache_name(extractor))
        distinct = distinct_kid_subsets(n_fake, n_real, size, self.subsets, samples.seed)
        return {"kid": samples.record(out["kernel_inception_distance_mean"], out["kernel_inception_distance_std"],
                                      n_fake, distinct, accuracy="class", std_over="subsets", subset_size=size,
                                      subsets_drawn=self.subsets, n_real=n_real)}
