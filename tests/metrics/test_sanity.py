"""Sanity checks that can fail: each metric separates real images from noise, wrong classes or wrong text."""

import pytest
import torch
import torch.nn.functional as F

from ganblocks.metrics.base import EvalSamples, caption_values
from ganblocks.registry import build
from tests.evaluation import toy
from tests.evaluation.fixtures import noise_images


def samples_of(fake, evaluator, real=None, **kw):
    return EvalSamples(fake=fake, real=real, evaluator=evaluator, real_split="test", **kw)


def judge_samples(images, class_ids, caps, evaluator, pick=0):
    """Each image paired with its caption number `pick`; the pool is every caption of every image."""
    values = caption_values([c[pick] for c in caps], len(toy.SPEC))
    pool = caption_values([d for c in caps for d in c], len(toy.SPEC))
    pool_images = torch.arange(len(caps)).repeat_interleave(len(caps[0]))
    return samples_of(images, evaluator, fake_values=values, fake_class_ids=class_ids, pool_values=pool,
                      pool_image_ids=pool_images, fake_image_ids=torch.arange(len(images)),
                      fake_caption_ids=torch.arange(len(images)))


def test_is_of_real_far_above_noise_which_is_near_one(evaluator, real):
    images, _, _ = real
    is_real = build("metric", "is")(samples_of(images, evaluator))["is"]
    is_noise = build("metric", "is")(samples_of(noise_images(len(images)), evaluator))["is"]
    assert is_noise["value"] < 1.5
    assert is_real["value"] > 3.0 * is_noise["value"]
    assert is_real["splits"] == 10 and is_real["n_samples"] == len(images)
    assert is_real["evaluator"] == evaluator.name and is_real["evaluator_accuracy"] == evaluator.accuracy["class"]


def test_is_uses_fewer_splits_for_few_samples_and_records_it(evaluator, real):
    out = build("metric", "is")(samples_of(real[0][:30], evaluator))["is"]
    assert out["splits"] == 3 and out["n_samples"] == 30


def test_fid_of_disjoint_real_halves_far_below_noise_and_other_classes(evaluator, real):
    images, class_ids, _ = real
    half_a, half_b = images[0::2], images[1::2]
    fid = build("metric", "fid")
    same = fid(samples_of(half_a, evaluator, real=half_b))["fid"]["value"]
    noise = fid(samples_of(noise_images(len(half_a)), evaluator, real=half_b))["fid"]["value"]
    first, second = images[class_ids < 4], images[class_ids >= 4]
    other_classes = fid(samples_of(first, evaluator, real=second))["fid"]["value"]
    assert same * 5 < other_classes < noise * 10
    assert same * 5 < noise


def test_kid_orders_like_fid(evaluator, real):
    images, _, _ = real
    kid = build("metric", "kid", subsets=20, subset_size=50)
    same = kid(samples_of(images[0::2], evaluator, real=images[1::2]))["kid"]
    noise = kid(samples_of(noise_images(96), evaluator, real=images[1::2]))["kid"]
    assert same["subset_size"] == 50 and same["splits"] == 20
    assert abs(same["value"]) * 5 < noise["value"]


def test_r_precision_high_with_own_captions_and_below_chance_when_shuffled(evaluator, real):
    # captions that name all four attributes, so no caption of another class also fits the image; rivals come
    # from every class, so the ~12 of 99 rivals of the image's own class name the same four values and tie
    # with the true caption: the ceiling is about 1 / 13, far above chance 0.01
    images, class_ids, _, caps = toy.dataset(per_class=24, seed=7, named=4)
    images = real[0]
    own = build("metric", "r_precision")(judge_samples(images, class_ids, caps, evaluator))["r_precision"]
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    # shuffled: every image gets the caption of another image of a different class
    shifted = (class_ids[perm] != class_ids)
    idx = perm[shifted]
    shuffled = judge_samples(images[shifted], class_ids[idx], [caps[int(i)] for i in idx], evaluator)
    shuffled.fake_image_ids = idx  # the caption's own image: its captions are not its rivals
    wrong = build("metric", "r_precision")(shuffled)["r_precision"]
    assert own["value"] > 0.05
    assert wrong["value"] < 0.01  # rivals of the image's own class fit it better than the true caption
    assert own["chance"] == pytest.approx(0.01) and own["candidates"] == 100


def test_attribute_accuracy_high_on_matching_real_images_and_split_coarse_fine(evaluator, real):
    images, class_ids, caps = real
    out = build("metric", "attributes")(judge_samples(images, class_ids, caps, evaluator))
    assert set(out) == {"attr_coarse", "attr_fine", "attr_all"}
    assert out["attr_coarse"]["value"] > 0.8
    assert set(out["attr_fine"]["per_attribute"]) == {"stripes"}
    # images blurred beyond recognising thin stripes lose the fine attribute but keep the coarse ones
    blurred = F.interpolate(F.interpolate(images.float(), size=8, mode="area"), size=64, mode="bilinear")
    blurred = blurred.round().clamp(0, 255).to(torch.uint8)
    out_b = build("metric", "attributes")(judge_samples(blurred, class_ids, caps, evaluator))
    assert out_b["attr_fine"]["value"] < out["attr_fine"]["value"] - 0.1


def test_fine_attributes_are_not_judged_below_the_evaluators_input_size(evaluator, real):
    images, class_ids, caps = real
    size = int(evaluator.meta["image_size"])
    small = F.interpolate(images.float(), size=size // 2, mode="area").round().to(torch.uint8)
    out = build("metric", "attributes")(judge_samples(small, class_ids, caps, evaluator))
    assert set(out) == {"attr_coarse", "attr_all"}  # no fine column for images too small to show fine detail
    assert out["attr_all"]["per_attribute"] == out["attr_coarse"]["per_attribute"]
    assert out["attr_coarse"]["image_size"] == size // 2


def test_diversity_zero_for_repeated_images_and_positive_for_varied(evaluator, real):
    images, class_ids, _ = real
    repeated = images[:1].expand(6, -1, -1, -1).contiguous()
    div = build("metric", "diversity")
    same = div(samples_of(repeated, evaluator, fake_caption_ids=torch.zeros(6, dtype=torch.long)))["diversity"]
    varied = div(samples_of(images, evaluator, fake_caption_ids=class_ids, real=images,
                            real_class_ids=class_ids))["diversity"]
    assert same["value"] == pytest.approx(0.0, abs=1e-6)
    assert varied["value"] > 0.05 and varied["real_reference"] == pytest.approx(varied["value"])


def test_pixelation_flags_nearest_upsampling_against_real(real):
    images, _, _ = real
    small = F.interpolate(images.float(), size=16, mode="area")
    nearest = F.interpolate(small, size=64, mode="nearest").round().to(torch.uint8)
    bilinear = F.interpolate(small, size=64, mode="bilinear").round().clamp(0, 255).to(torch.uint8)
    pix = build("metric", "pixelation")
    as_real = pix(EvalSamples(fake=images[0::2], real=images[1::2]))["pixelation"]
    near = pix(EvalSamples(fake=nearest, real=images))["pixelation"]
    smooth = pix(EvalSamples(fake=bilinear, real=images))["pixelation"]
    assert as_real["value"] == pytest.approx(1.0, abs=0.15)
    assert near["value"] > 1.5 * smooth["value"]
    assert near["real_high"] == pytest.approx(smooth["real_high"])


def test_caption_values_names_bad_attribute_index():
    with pytest.raises(ValueError, match="attribute index 7"):
        caption_values([{7: 1}], 4)


def test_real_and_fake_resolution_mismatch_is_an_error(real):
    with pytest.raises(ValueError, match="same resolution"):
        EvalSamples(fake=real[0][:, :, :32, :32], real=real[0])


def test_an_attribute_is_judged_only_from_its_declared_min_size(evaluator, real):
    """A recipe that declares `min_size` for an attribute (synthbirds' back spots: 256 px) keeps it out of
    attr_fine and attr_all on smaller images and in on images that large; the rule lives in the meta."""
    from ganblocks.evaluation.evaluator import Evaluator

    images, class_ids, caps = real
    size = int(evaluator.meta["image_size"])
    strict = Evaluator(evaluator.net, {**evaluator.meta, "min_size": {"stripes": 2 * size}})
    assert [i.min_size for i in strict.attributes if i.name == "stripes"] == [2 * size]
    out = build("metric", "attributes")(judge_samples(images, class_ids, caps, strict))
    assert set(out) == {"attr_coarse", "attr_all"}
    assert "stripes" not in out["attr_all"]["per_attribute"]
    large = F.interpolate(images.float(), size=2 * size, mode="bilinear").round().clamp(0, 255).to(torch.uint8)
    out = build("metric", "attributes")(judge_samples(large, class_ids, caps, strict))
    assert set(out["attr_fine"]["per_attribute"]) == {"stripes"} and "stripes" in out["attr_all"]["per_attribute"]


def test_r_precision_scores_a_caption_only_on_attributes_judged_at_the_image_size(evaluator, real):
    """An attribute below its min_size is dropped from every caption, true and rival alike: with stripes unseen the
    result equals the plain judge on captions that never name stripes; with nothing seen every caption ties
    (score 0) and R-precision is exactly its chance level."""
    from ganblocks.evaluation.evaluator import Evaluator

    images, class_ids, caps = real
    size = int(evaluator.meta["image_size"])
    stripes = [i.name for i in evaluator.attributes].index("stripes")
    r_precision = build("metric", "r_precision")
    strict = Evaluator(evaluator.net, {**evaluator.meta, "min_size": {"stripes": 2 * size}})
    dropped = judge_samples(images, class_ids, caps, evaluator)
    dropped.fake_values[:, stripes] = -1
    dropped.pool_values[:, stripes] = -1
    with_strict = r_precision(judge_samples(images, class_ids, caps, strict))["r_precision"]["value"]
    assert with_strict == r_precision(dropped)["r_precision"]["value"]
    assert with_strict != r_precision(judge_samples(images, class_ids, caps, evaluator))["r_precision"]["value"]
    blind = Evaluator(evaluator.net, {**evaluator.meta, "min_size": {i.name: 2 * size for i in evaluator.attributes}})
    out = r_precision(judge_samples(images, class_ids, caps, blind))["r_precision"]
    assert out["value"] == pytest.approx(out["chance"])


def test_r_precision_names_the_attributes_its_captions_are_scored_on(evaluator, real):
    # as attr_* name theirs in per_attribute: a reader of metrics.json sees that R-precision of small images
    # scores captions on the coarse attributes only
    images, class_ids, caps = real
    size = int(evaluator.meta["image_size"])
    r_precision = build("metric", "r_precision")
    full = r_precision(judge_samples(images, class_ids, caps, evaluator))["r_precision"]
    assert full["attributes"] == [i.name for i in evaluator.attributes]
    small = F.interpolate(images.float(), size=size // 2, mode="area").round().to(torch.uint8)
    half = r_precision(judge_samples(small, class_ids, caps, evaluator))["r_precision"]
    assert half["attributes"] == [i.name for i in evaluator.attributes if not i.fine]
