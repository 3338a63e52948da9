"""What every metric receives (`EvalSamples`) and returns (protocol records), and the judge's caption score.

A metric is a registered class (`metric` kind) built with keyword arguments; calling it on an `EvalSamples`
returns `{result_name: record}`, where every record carries its protocol:
`{value, std, n_samples, splits, evaluator, evaluator_accuracy, real_split, seed, ...}`.

This contract lives in ganblocks.evaluation, which builds the samples (`evaluate_run`) and the evaluator they
carry; ganblocks.metrics reads it (through `ganblocks.metrics.base`), so imports go metrics -> evaluation only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import Tensor

if TYPE_CHECKING:  # annotations only
    from ganblocks.evaluation.evaluator import Evaluator, EvaluatorOutput


def caption_values(caption_attributes: Sequence[dict], num_attributes: int) -> Tensor:
    """Per caption {attribute index: value} -> dense (K, A) int64 with -1 where the caption names nothing."""
    out = torch.full((len(caption_attributes), num_attributes), -1, dtype=torch.long)
    for k, named in enumerate(caption_attributes):
        for a, v in dict(named).items():
            a = int(a)
            if not 0 <= a < num_attributes:
                raise ValueError(f"caption {k} names attribute index {a}; the judge knows {num_attributes}")
            out[k, a] = int(v)
    return out


def caption_scores(attribute_logprobs: Sequence[Tensor], values: Tensor) -> Tensor:
    """The judge's text-agreement score of images with captions: mean log p(named value | image).

    Args:
        attribute_logprobs: per attribute (N, V_a) log-probabilities from the judge.
        values:             (N, K, A) or (K, A) named attribute values, -1 where not named.
    Returns:
        (N, K) scores; a caption that names no attribute scores 0.
    """
    n = attribute_logprobs[0].shape[0]
    if values.dim() == 2:
        values = values.unsqueeze(0).expand(n, -1, -1)
    named = values >= 0
    total = torch.zeros(values.shape[:2], dtype=attribute_logprobs[0].dtype)
    for a, logp in enumerate(attribute_logprobs):
        idx = values[..., a].clamp(min=0).clamp(max=logp.shape[1] - 1)
        total += logp.gather(1, idx) * named[..., a]
    return total / named.sum(-1).clamp(min=1)


class MetricRefused(ValueError):
    """A metric cannot be computed from these samples (too few); the message names the setting to change.

    `evaluate_run` records the refusal and still writes every other metric.
    """


def caption_means(per_image: Tensor, caption_ids: Tensor | None) -> Tensor:
    """Per-image values averaged within each caption (the independent unit); (N,) -> (K,) in caption order.

    Images drawn for one caption with different noise share that caption's luck, so they are not independent
    samples. Without `caption_ids` every image is its own caption.
    """
    if caption_ids is None:
        return per_image.double()
    _, inverse = caption_ids.unique(return_inverse=True)
    sums = torch.zeros(int(inverse.max()) + 1 if len(inverse) else 0, dtype=torch.double)
    counts = torch.zeros_like(sums)
    sums.index_add_(0, inverse, per_image.double())
    counts.index_add_(0, inverse, torch.ones_like(per_image, dtype=torch.double))
    return sums / counts


def caption_se(per_image: Tensor, caption_ids: Tensor | None) -> tuple[float, int]:
    """Standard error of the mean over captions, and the number of captions: (N,) -> (s.e., K).

    s.e. = std(per-caption means, ddof=1) / sqrt(K); 0.0 when there is a single caption.
    """
    means = caption_means(per_image, caption_ids)
    if len(means) < 2:
        return 0.0, len(means)
    return float(means.std(unbiased=True) / len(means) ** 0.5), len(means)


@dataclass
class EvalSamples:
    """Everything a metric needs: generated images, their captions, real reference images, the evaluator.

    fake:               (N, 3, S, S) uint8 generated images.
    fake_caption_ids:   (N,) int64 the evaluation caption each image was drawn for (diversity groups).
    fake_class_ids:     (N,) int64 the class of that caption.
    fake_values:        (N, A) int64 attribute values the caption names (-1 = not named), for the judge.
    real:               (M, 3, S, S) uint8 real images of `real_split` at the same resolution, or None.
    real_class_ids:     (M,) int64, or None.
    fake_image_ids:     (N,) int64 the dataset image whose caption each generated image was drawn for.
    pool_values:        (P, A) caption pool that mismatched captions for R-precision are drawn from.
    pool_image_ids:     (P,) int64 the dataset image each pool caption describes (an image's own captions are
                        never its rivals).
    evaluator:          the built-in evaluator, or None for a dataset without one (then IS/FID/KID use
                        Inception from `inception_weights` and the judge metrics are skipped).
    inception_weights:  local Inception-v3 weights file, for datasets without an evaluator.
    real_split:         which split `real` comes from (recorded with every number).
    real_cache_key:     labels `real` (dataset hash, split, resolution) in torch-fidelity's cache; the cache
                        name also carries a fingerprint of `real`'s bytes and of the extractor's weights.
    resize:             how the images reached the metric's network (recorded in every metric's protocol).
    seed:               seed of every random choice a metric makes.
    is_classifier:      path of a user-supplied classifier for IS (`metrics.is_classifier`), or None.
    fake_texts:         (N) the caption text each generated image was drawn for (DAMSM R-precision), or None.
    dataset:            the evaluation split's `TextImageDataset` (its captions are the rival pool of DAMSM
                        R-precision; its name, root and hash say where DAMSM encoders come from), or None.
    """

    fake: Tensor
    fake_caption_ids: Tensor | None = None
    fake_class_ids: Tensor | None = None
    fake_values: Tensor | None = None
    fake_image_ids: Tensor | None = None
    real: Tensor | None = None
    real_class_ids: Tensor | None = None
    pool_values: Tensor | None = None
    pool_image_ids: Tensor | None = None
    evaluator: "Evaluator | None" = None
    inception_weights: str | None = None
    real_split: str | None = None
    real_cache_key: str | None = None
    resize: str | None = None
    seed: int = 0
    is_classifier: str | None = None
    fake_texts: list[str] | None = None
    dataset: Any = None
    _memo: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.fake.dtype != torch.uint8 or self.fake.dim() != 4 or self.fake.shape[1] != 3:
            raise ValueError(f"fake must be uint8 (N, 3, S, S), got {self.fake.dtype} {tuple(self.fake.shape)}")
        if self.real is not None and self.real.shape[1:] != self.fake.shape[1:]:
            raise ValueError(
                f"real images {tuple(self.real.shape[1:])} and fake images {tuple(self.fake.shape[1:])} differ; "
                "compare at the same resolution (crop / resize the real images first)"
            )

    # --- evaluator outputs, computed once per set ---------------------------------------------------------
    def require_evaluator(self, metric: str) -> "Evaluator":
        if self.evaluator is None:
            raise ValueError(f"metric {metric!r} needs the built-in evaluator (a dataset with attributes)")
        return self.evaluator

    def fake_outputs(self) -> "EvaluatorOutput":
        if "fake" not in self._memo:
            self._memo["fake"] = self.require_evaluator("judge").outputs(self.fake)
        return self._memo["fake"]

    def real_outputs(self) -> "EvaluatorOutput":
        if self.real is None:
            raise ValueError("this metric needs real images (EvalSamples.real is None)")
        if "real" not in self._memo:
            self._memo["real"] = self.require_evaluator("judge").outputs(self.real)
        return self._memo["real"]

    # --- torch-fidelity -----------------------------------------------------------------------------------
    def fidelity_extractor(self) -> dict:
        """torch-fidelity keywords naming the feature extractor: the evaluator, else local Inception weights."""
        from ganblocks.evaluation.fidelity import inception_kwargs, register_evaluator

        if self.evaluator is not None:
            return {"feature_extractor": register_evaluator(self.evaluator)}
        return inception_kwargs(self.inception_weights)

    def fidelity_real_cache_name(self, extractor: dict) -> str | None:
        from ganblocks.evaluation.fidelity import real_cache_name, tensor_fingerprint

        if self.real_cache_key is None or self.real is None:
            return None
        if "real_fingerprint" not in self._memo:  # the images' bytes, not where they came from
            self._memo["real_fingerprint"] = tensor_fingerprint(self.real)
        return real_cache_name(self.real_cache_key, self.real_split or "", self.fake.shape[-1], extractor,
                               len(self.real), self._memo["real_fingerprint"])

    # --- protocol -----------------------------------------------------------------------------------------
    def evaluator_label(self) -> str:
        if self.evaluator is not None:
            return self.evaluator.name
        return f"inception-v3 ({self.inception_weights})"

    def n_captions(self) -> int:
        """Distinct captions behind the generated images (each image its own caption when unknown)."""
        return len(self.fake) if self.fake_caption_ids is None else int(self.fake_caption_ids.unique().numel())

    def record(self, value: float, std: float, n_samples: int, splits: int, accuracy: str | None,
               **extra: Any) -> dict:
        """A result with its protocol; `accuracy` names the evaluator accuracy entry that backs it.

        Besides what the metric gives, every record carries the number of distinct captions, the image size
        and how images were resized (`resize`), so two numbers with different protocols never look alike.
        """
        acc = None
        if self.evaluator is not None and accuracy is not None:
            acc = self.evaluator.accuracy.get(accuracy)
        return {
            "value": float(value),
            "std": float(std),
            "n_samples": int(n_samples),
            "splits": int(splits),
            "evaluator": self.evaluator_label(),
            "evaluator_accuracy": acc,
            "real_split": self.real_split,
            "seed": int(self.seed),
            "n_captions": self.n_captions(),
            "image_size": int(self.fake.shape[-1]),
            "resize": self.resize,
            **extra,
        }
