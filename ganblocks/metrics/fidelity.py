"""IS, FID and KID, computed by torch-fidelity on the evaluator's layers (or a local Inception-v3)."""

from __future__ import annotations

from ganblocks.metrics.base import EvalSamples
from ganblocks.registry import register


@register("metric", "is")
class InceptionScore:
    """Inception score exp(E KL(p(y|x) || p(y))) of the generated images under the class head; higher is better.

    Uses `splits` splits (10, as the papers), fewer when there are under `min_per_split` images per split; the
    number used is recorded.
    """

    def __init__(self, splits: int = 10, min_per_split: int = 10) -> None:
        if splits < 1 or min_per_split < 1:
            raise ValueError(f"is: splits={splits} and min_per_split={min_per_split} must be >= 1")
        self.splits, self.min_per_split = splits, min_per_split

    def __call__(self, samples: EvalSamples) -> dict[str, dict]:
        from ganblocks.evaluation.fidelity import fidelity_metrics

        n = len(samples.fake)
        splits = max(1, min(self.splits, n // self.min_per_split))
        out = fidelity_metrics(samples.fake, extractor=samples.fidelity_extractor(), isc=True, isc_splits=splits,
                               seed=samples.seed)
        return {"is": samples.record(out["inception_score_mean"], out["inception_score_std"], n, splits,
                                     accuracy="class")}


@register("metric", "fid")
class FrechetDistance:
    """Frechet distance between Gaussians fitted to generated and real penultimate features; lower is better."""

    def __call__(self, samples: EvalSamples) -> dict[str, dict]:
        from ganblocks.evaluation.fidelity import fidelity_metrics

        if samples.real is None:
            raise ValueError("fid needs real images (EvalSamples.real is None)")
        extractor = samples.fidelity_extractor()
        out = fidelity_metrics(samples.fake, samples.real, extractor=extractor, fid=True, seed=samples.seed,
                               real_cache_name=samples.fidelity_real_cache_name(extractor))
        return {"fid": samples.record(out["frechet_inception_distance"], 0.0, len(samples.fake), 1,
                                      accuracy="class", n_real=len(samples.real))}


@register("metric", "kid")
class KernelDistance:
    """Kernel (polynomial MMD^2) distance between generated and real features over random subsets; lower is better.

    Subsets hold min(`subset_size`, N_fake, N_real) images; the size used is recorded.
    """

    def __init__(self, subsets: int = 100, subset_size: int = 1000) -> None:
        if subsets < 1 or subset_size < 2:
            raise ValueError(f"kid: subsets={subsets} must be >= 1 and subset_size={subset_size} >= 2")
        self.subsets, self.subset_size = subsets, subset_size

    def __call__(self, samples: EvalSamples) -> dict[str, dict]:
        from ganblocks.evaluation.fidelity import fidelity_metrics

        if samples.real is None:
            raise ValueError("kid needs real images (EvalSamples.real is None)")
        size = min(self.subset_size, len(samples.fake), len(samples.real))
        extractor = samples.fidelity_extractor()
        out = fidelity_metrics(samples.fake, samples.real, extractor=extractor, kid=True, kid_subsets=self.subsets,
                               kid_subset_size=size, seed=samples.seed,
                               real_cache_name=samples.fidelity_real_cache_name(extractor))
        return {"kid": samples.record(out["kernel_inception_distance_mean"], out["kernel_inception_distance_std"],
                                      len(samples.fake), self.subsets, accuracy="class", subset_size=size,
                                      n_real=len(samples.real))}
