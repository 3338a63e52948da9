"""The rank proxy puts real images ahead of a weak model and a weak model ahead of noise."""

import pytest
import torch
import torch.nn.functional as F

from ganblocks.evaluation.evaluator import center_crop
from ganblocks.evaluation.rank import average_ranks, rank_from_scores, rank_images
from ganblocks.metrics.base import caption_values
from tests.evaluation import toy
from tests.evaluation.fixtures import noise_images


def test_average_ranks_share_ties():
    ranks = average_ranks(torch.tensor([[3.0, 1.0, 2.0], [1.0, 1.0, 0.0]]))
    assert ranks.tolist() == [[1.0, 3.0, 2.0], [1.5, 1.5, 3.0]]


def test_rank_from_scores_needs_two_models():
    with pytest.raises(ValueError, match="two or more"):
        rank_from_scores({"a": torch.zeros(3)}, {"a": torch.zeros(3)})


def test_rank_proxy_orders_real_then_weak_then_noise(evaluator, real):
    n_per = 2
    class_ids = torch.arange(len(toy.CLASSES)).repeat_interleave(3)  # 24 captions, 3 per class
    _, _, _, caps = toy.dataset(per_class=3, seed=11)
    values = caption_values([c[0] for c in caps], len(toy.SPEC))
    per_image = class_ids.repeat_interleave(n_per)
    real_model = center_crop(toy.render(per_image, seed=99), 64).contiguous()
    small = F.interpolate(real_model.float(), size=8, mode="area")
    weak = F.interpolate(small, size=64, mode="bilinear").round().clamp(0, 255).to(torch.uint8)
    noise = noise_images(len(per_image), seed=5)
    ranks = rank_images({"real": real_model, "weak": weak, "noise": noise}, values, n_per, evaluator, real[0])
    assert ranks["real"]["value"] < ranks["weak"]["value"] < ranks["noise"]["value"]
    # noise is last on almost every caption (a judge that reads pixels reads a chance share of attributes in it)
    assert ranks["real"]["value"] < 1.5 and ranks["noise"]["value"] > 2.4
    assert all(r["sem"] >= 0 and r["n_captions"] == 24 and r["evaluator"] == evaluator.name for r in ranks.values())
    assert sum(r["value"] for r in ranks.values()) == pytest.approx(6.0)


def test_rank_images_checks_image_counts(evaluator, real):
    values = caption_values([{0: 1}, {1: 0}], len(toy.SPEC))
    with pytest.raises(ValueError, match="expected 2 captions x 2"):
        rank_images({"a": real[0][:4], "b": real[0][:3]}, values, 2, evaluator, real[0])


def test_text_agreement_reads_a_caption_only_on_attributes_judged_at_the_image_size(evaluator, real):
    # an attribute below its min_size is dropped from the caption: with stripes unseen the text score equals the
    # plain judge's on the caption without stripes; with nothing judged at this size every text score is 0
    from ganblocks.evaluation.evaluator import Evaluator
    from ganblocks.evaluation.rank import judge_scores

    images, _, caps = real
    size = int(evaluator.meta["image_size"])
    values = caption_values([c[0] for c in caps], len(toy.SPEC))
    stripes = [i.name for i in evaluator.attributes].index("stripes")
    real_features = evaluator.realism_features(images[:16])
    strict = Evaluator(evaluator.net, {**evaluator.meta, "min_size": {"stripes": 2 * size}})
    without = values.clone()
    without[:, stripes] = -1
    text_strict, _ = judge_scores(strict, images, values, real_features)
    text_plain, _ = judge_scores(evaluator, images, values, real_features)
    assert torch.equal(text_strict, judge_scores(evaluator, images, without, real_features)[0])
    assert not torch.equal(text_strict, text_plain)
    blind = Evaluator(evaluator.net, {**evaluator.meta, "min_size": {i.name: 2 * size for i in evaluator.attributes}})
    assert torch.equal(judge_scores(blind, images, values, real_features)[0], torch.zeros(len(images), dtype=torch.float64))


def test_the_same_images_drawn_at_two_sizes_rank_equal(evaluator, real):
    """Runs of different sizes (the stages grid: Stage-I's 64 px beside 128 px) are judged at one size, the
    largest: the same images given at 64 and at 128 px tie on every caption (each judged at its own size,
    the 64 px set would be read on fewer attributes and ranked apart)."""
    from ganblocks.evaluation.pixels import resize

    n_per = 2
    class_ids = torch.arange(len(toy.CLASSES)).repeat_interleave(3)
    _, _, _, caps = toy.dataset(per_class=3, seed=11)
    values = caption_values([c[0] for c in caps], len(toy.SPEC))
    small = center_crop(toy.render(class_ids.repeat_interleave(n_per), seed=99), 64).contiguous()
    ranks = rank_images({"small": small, "large": resize(small, 128)}, values, n_per, evaluator, real[0])
    assert ranks["small"]["value"] == ranks["large"]["value"] == 1.5
    assert ranks["small"]["image_size"] == ranks["large"]["image_size"] == 128
