"""Every metric at its degenerate input gives its degenerate value: chance, the best constant guess, 0 or 1.

A metric that scores flat grey images above chance, or one image repeated above IS 1, measures something
other than what its column says. Each test here failed before its fix (see the commit that added it).
"""

import pytest
import torch

from ganblocks.metrics.base import EvalSamples, MetricRefused, caption_se
from ganblocks.metrics.fidelity import distinct_kid_subsets
from ganblocks.registry import build
from tests.evaluation import toy
from tests.metrics.test_sanity import judge_samples, samples_of


def grey(n, size=64, level=128):
    return torch.full((n, 3, size, size), level, dtype=torch.uint8)


@pytest.mark.parametrize("level", [128, 40, 220])
def test_constant_images_score_r_precision_within_two_se_of_chance(evaluator, level):
    # a constant image reads the same attributes whatever its caption: its own caption is one more draw from
    # the pool, so it wins 1 time in 100; drawing rivals only from other classes made the caption of the one
    # class the judge sees in grey win every time
    _, class_ids, _, caps = toy.dataset(per_class=40, seed=11)
    out = build("metric", "r_precision")(judge_samples(grey(len(caps), level=level), class_ids, caps, evaluator))
    rec = out["r_precision"]
    assert rec["std_over"] == "captions" and rec["splits"] == len(caps) == rec["n_captions"]
    assert abs(rec["value"] - rec["chance"]) <= 2 * rec["std"], rec


def test_real_images_with_unrelated_captions_score_r_precision_at_chance(evaluator, real):
    # good images of the wrong bird: each image paired with the caption of a random image (any class)
    images, _, _ = real
    _, class_ids, _, caps = toy.dataset(per_class=24, seed=7)
    perm = torch.randperm(len(caps), generator=torch.Generator().manual_seed(3))
    samples = judge_samples(images, class_ids[perm], [caps[int(i)] for i in perm], evaluator)
    samples.fake_image_ids = perm
    rec = build("metric", "r_precision")(samples)["r_precision"]
    assert abs(rec["value"] - rec["chance"]) <= 2 * rec["std"], rec


def test_constant_images_attribute_accuracy_not_above_best_constant_guess(evaluator):
    _, class_ids, _, caps = toy.dataset(per_class=40, seed=11)
    out = build("metric", "attributes")(judge_samples(grey(len(caps)), class_ids, caps, evaluator))
    for name in ("attr_coarse", "attr_fine", "attr_all"):
        rec = out[name]
        assert 0 < rec["chance"] < 1
        assert rec["value"] <= rec["chance"] + 1e-12, (name, rec["value"], rec["chance"])


def test_best_constant_guess_is_the_share_of_the_commonest_value(evaluator):
    values = torch.tensor([[0, -1, -1, -1], [0, -1, -1, -1], [1, 1, -1, -1], [2, 0, -1, -1]])
    from ganblocks.metrics.judge import best_constant_guess

    guess = best_constant_guess(values)
    assert guess[0] == pytest.approx(0.5) and guess[1] == pytest.approx(0.5) and guess[2:].isnan().all()


def test_constant_images_have_zero_diversity(evaluator):
    ids = torch.arange(12).repeat_interleave(4)
    rec = build("metric", "diversity")(samples_of(grey(48), evaluator, fake_caption_ids=ids))["diversity"]
    assert rec["value"] == pytest.approx(0.0, abs=1e-9) and rec["std"] == pytest.approx(0.0, abs=1e-9)


def test_one_image_repeated_has_inception_score_one(evaluator, real):
    repeated = real[0][:1].expand(50, -1, -1, -1).contiguous()
    rec = build("metric", "is")(samples_of(repeated, evaluator))["is"]
    assert rec["value"] == pytest.approx(1.0, abs=1e-6)


def test_identical_sets_have_frechet_distance_zero(evaluator, real):
    images = real[0][:60]
    rec = build("metric", "fid")(samples_of(images, evaluator, real=images.clone()))["fid"]
    assert rec["value"] == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize("name,n_fake,n_real", [("fid", 1, 10), ("kid", 1, 10), ("kid", 2, 10), ("fid", 10, 1)])
def test_too_few_samples_are_refused_naming_the_setting(evaluator, real, name, n_fake, n_real):
    samples = samples_of(real[0][:n_fake], evaluator, real=real[0][:n_real])
    setting = "metrics.n_per_caption" if n_fake < n_real else "metrics.n_real"
    with pytest.raises(MetricRefused, match=setting):
        build("metric", name)(samples)


def test_errors_are_over_captions_not_images(evaluator):
    # 10 noise draws of each caption are one unit: a hit shared by its 10 images is one observation, not 10
    hits = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0]).repeat_interleave(10)
    ids = torch.arange(5).repeat_interleave(10)
    se, k = caption_se(hits, ids)
    assert k == 5 and se == pytest.approx(float(torch.tensor([1.0, 0, 0, 1, 0]).std() / 5**0.5))
    per_image = float(hits.std() / len(hits) ** 0.5)
    assert se > 2.5 * per_image  # ~sqrt(10) larger
    # and r_precision reports that error: images repeated per caption, the s.e. counts captions
    _, class_ids, _, caps = toy.dataset(per_class=5, seed=11)
    base = judge_samples(grey(len(caps)), class_ids, caps, evaluator)
    rep = torch.arange(len(caps)).repeat_interleave(10)
    repeated = EvalSamples(fake=base.fake[rep], fake_caption_ids=rep, fake_values=base.fake_values[rep],
                           fake_image_ids=rep, pool_values=base.pool_values, pool_image_ids=base.pool_image_ids,
                           evaluator=evaluator)
    rec = build("metric", "r_precision")(repeated)["r_precision"]
    assert rec["n_captions"] == len(caps) and rec["n_samples"] == 10 * len(caps)
    from ganblocks.metrics.judge import draw_mismatched, r_precision_hits

    logp = [l.double().log_softmax(1) for l in repeated.fake_outputs().attribute_logits]
    hits = r_precision_hits(logp, repeated.fake_values, repeated.pool_values,
                            draw_mismatched(rep, repeated.pool_image_ids, 99, 0))
    assert rec["value"] == pytest.approx(float(hits.mean()))
    assert rec["std"] == pytest.approx(caption_se(hits, rep)[0])


def test_kid_subsets_are_smaller_than_either_set_and_the_distinct_count_is_recorded(evaluator, real):
    images = real[0]
    rec = build("metric", "kid")(samples_of(images[:20], evaluator, real=images[20:40]))["kid"]
    assert rec["subset_size"] == 19 and rec["subsets_drawn"] == 100
    assert rec["std"] > 0  # subsets differ (before: every subset was the whole set, std 0)
    assert rec["splits"] == distinct_kid_subsets(20, 20, 19, 100, 0) and 50 < rec["splits"] <= 100
    tiny = build("metric", "kid")(samples_of(images[:3], evaluator, real=images[3:6]))["kid"]
    assert tiny["subset_size"] == 2 and tiny["splits"] == 9  # C(3, 2)^2 pairs of subsets exist


def test_every_record_names_captions_image_size_and_resize(evaluator, real):
    images, class_ids, caps = real
    samples = judge_samples(images, class_ids, caps, evaluator)
    samples.real, samples.resize = images, "as rendered"
    for name in ("is", "fid", "r_precision", "attributes", "pixelation"):
        for rec in build("metric", name)(samples).values():
            assert rec["n_captions"] == len(images) and rec["image_size"] == 64 and rec["resize"] == "as rendered"
