"""Text agreement judged by the evaluator's attribute heads: R-precision and per-attribute accuracy.

The judge never shares weights with the generator's text encoder: it reads the attributes a caption names
(the dataset's `caption_attributes`), not its embedding, and scores an image against a caption by the mean
log-probability it gives the named values.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganblocks.metrics.base import EvalSamples, caption_scores, split_std
from ganblocks.registry import register


def draw_mismatched(class_ids: Tensor, pool_class_ids: Tensor, n: int, seed: int) -> Tensor:
    """For each item, `n` pool indices of captions of other classes (with replacement); (N,) -> (N, n)."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.empty(len(class_ids), n, dtype=torch.long)
    for c in class_ids.unique():
        rows = (class_ids == c).nonzero().flatten()
        others = (pool_class_ids != c).nonzero().flatten()
        if len(others) == 0:
            raise ValueError(f"r_precision: the caption pool has no caption outside class {int(c)}")
        out[rows] = others[torch.randint(len(others), (len(rows), n), generator=gen)]
    return out


def r_precision_hits(attribute_logprobs: list[Tensor], true_values: Tensor, pool_values: Tensor,
                     mismatched: Tensor, chunk: int = 512) -> Tensor:
    """Per image, 1 if the true caption outscores every mismatched one (ties share: 1 / (1 + n_tied)).

    Args:
        attribute_logprobs: per attribute (N, V_a) judge log-probabilities.
        true_values:        (N, A) attributes named by each image's own caption.
        pool_values:        (P, A) attributes named by the pool captions.
        mismatched:         (N, R) pool indices of the R mismatched candidates of each image.
    Returns:
        (N,) float hits.
    """
    hits = []
    for s in range(0, len(true_values), chunk):
        logp = [lp[s : s + chunk] for lp in attribute_logprobs]
        cands = torch.cat([true_values[s : s + chunk, None], pool_values[mismatched[s : s + chunk]]], dim=1)
        scores = caption_scores(logp, cands)  # (b, 1 + R)
        true, others = scores[:, :1], scores[:, 1:]
        beaten = (others > true).any(1)
        tied = (others == true).sum(1)
        hits.append(torch.where(beaten, 0.0, 1.0 / (1 + tied.double())))
    return torch.cat(hits)


@register("metric", "r_precision")
class RPrecision:
    """Fraction of images whose own caption the judge ranks first among 1 + `mismatched` captions of other
    classes (AttnGAN's R-precision with R = 1); chance is 1 / (1 + mismatched); higher is better."""

    def __init__(self, mismatched: int = 99, splits: int = 10) -> None:
        if mismatched < 1:
            raise ValueError(f"r_precision: mismatched={mismatched} must be >= 1")
        self.mismatched, self.splits = mismatched, splits

    def __call__(self, samples: EvalSamples) -> dict[str, dict]:
        samples.require_evaluator("r_precision")
        if samples.fake_values is None or samples.pool_values is None or samples.fake_class_ids is None:
            raise ValueError("r_precision needs fake_values, fake_class_ids, pool_values and pool_class_ids")
        logp = [l.double().log_softmax(1) for l in samples.fake_outputs().attribute_logits]
        mism = draw_mismatched(samples.fake_class_ids, samples.pool_class_ids, self.mismatched, samples.seed)
        hits = r_precision_hits(logp, samples.fake_values, samples.pool_values, mism)
        splits = max(1, min(self.splits, len(hits) // 10))
        return {"r_precision": samples.record(hits.mean(), split_std(hits, splits, samples.seed), len(hits),
                                              splits, accuracy="attributes_mean", candidates=1 + self.mismatched,
                                              chance=1 / (1 + self.mismatched))}


@register("metric", "attributes")
class AttributeAccuracy:
    """How often the judge sees in an image the attribute values its caption names, split into coarse
    (visible at 64x64) and fine (visible only at 128+) attributes; higher is better.

    Returns `attr_coarse`, `attr_fine` (when the dataset has fine attributes) and `attr_all`, each with the
    per-attribute accuracies.
    """

    def __init__(self, splits: int = 10) -> None:
        self.splits = splits

    def __call__(self, samples: EvalSamples) -> dict[str, dict]:
        evaluator = samples.require_evaluator("attributes")
        if samples.fake_values is None:
            raise ValueError("attributes needs fake_values (the attributes each image's caption names)")
        logits = samples.fake_outputs().attribute_logits
        infos = evaluator.attributes
        correct = torch.stack([l.argmax(1) for l in logits], 1) == samples.fake_values  # (N, A)
        named = samples.fake_values >= 0
        results = {}
        groups = {"attr_coarse": [a for a, i in enumerate(infos) if not i.fine],
                  "attr_fine": [a for a, i in enumerate(infos) if i.fine],
                  "attr_all": list(range(len(infos)))}
        for name, attrs in groups.items():
            attrs = [a for a in attrs if named[:, a].any()]
            if not attrs:
                continue
            per_attr = {infos[a].name: float(correct[named[:, a], a].float().mean()) for a in attrs}
            # per image: the share of its named attributes of this group that are right
            n_named = named[:, attrs].sum(1)
            rows = n_named > 0
            per_image = (correct[:, attrs] & named[:, attrs]).sum(1)[rows].double() / n_named[rows]
            splits = max(1, min(self.splits, int(rows.sum()) // 10))
            value = sum(per_attr.values()) / len(per_attr)
            key = {"attr_coarse": "coarse", "attr_fine": "fine", "attr_all": "attributes_mean"}[name]
            results[name] = samples.record(value, split_std(per_image, splits, samples.seed), int(rows.sum()),
                                           splits, accuracy=key, per_attribute=per_attr)
        return results
