"""The judge the tables use reads pixels: flip one attribute of a render and its reading follows; blur the fine
detail away and fine-attribute accuracy falls. Run on the committed evaluator of the `small` and `default`
builds (the exact weights their tables are computed with: the v3 network and the detail reader beside it), on
fresh counterfactual renders, each attribute at the sizes it is judged from (its `min_size`).
"""

import pytest
import torch

from ganblocks.data.synthbirds import MIN_SIZE, SPEC
from ganblocks.evaluation import report_judge
from ganblocks.evaluation.artifacts import read_index, recipe_key
from ganblocks.evaluation.builtin import free_rows, recipe, synthbirds_classes
from ganblocks.evaluation.run import DEFAULTS

PAIRS = 100  # counterfactual pairs per attribute: the same pairs (seeds) as docs/results/evaluator.json
# The loader's crop around the bird's box (1.5 x its longer side) normalises the bird's size away: no judge can
# read `size` from the dataset's images; it is measured in docs/results/evaluator.json, not asserted.
UNREADABLE = {"size"}
# Every other attribute follows its flip >= 0.9 at the smallest size it is judged from (docs/results/evaluator.json,
# 100 pairs each). The v3 network alone did not for two, which the detail reader now reads: beak shape at 64 px
# (v3: 0.89) and back spots, judged from 256 px only (v3: 0.53 at 256, 0.55 at 128).
DETAIL = {"beak_shape", "back_pattern"}


def default_recipe_key(test) -> str:
    d = DEFAULTS
    parts = recipe(test, int(d["evaluator_size"]), int(d["evaluator_renders_per_class"]),
                   int(d["evaluator_free_renders"]), 1000)
    return recipe_key(parts, dict(image_size=int(d["evaluator_size"]), epochs=int(d["evaluator_epochs"]),
                                  width=int(d["evaluator_width"]), seed=1000))


@pytest.fixture(scope="module")
def judge():
    """(evaluator, test classes) of the `small` build; committed weights, never trained here. (The smoke
    profile's `tiny` build trains a quick judge at run time instead; see experiments/conf/profile/smoke.yaml.)"""
    test = synthbirds_classes("small", "test")
    key = default_recipe_key(test)
    assert key in read_index(), (
        f"no committed evaluator for the default recipe {key}: the recipe changed; re-export it with "
        "python -m ganblocks.evaluation.report_judge --export")
    evaluator, _ = report_judge.benchmark_evaluator("small", progress=False)
    assert evaluator.meta["artifact"]["file"] == read_index()[key]["file"]
    assert "detail" in evaluator.meta, ("no committed detail reader for the default recipe; export it with "
                                        "python -m ganblocks.evaluation.report_judge --export")
    assert evaluator.meta["detail"]["artifact"]["file"] in {e["file"] for e in read_index().values()}
    return evaluator, test


def judged_from(size: int, fine: bool) -> list:
    """The attributes (fine or coarse) whose smallest judged size is `size`: where each must first be read."""
    sizes = {x.name: (MIN_SIZE.get(x.name, int(DEFAULTS["evaluator_size"])) if x.fine else 64) for x in SPEC}
    return [pytest.param(a, id=x.name) for a, x in enumerate(SPEC)
            if x.fine == fine and x.name not in UNREADABLE and sizes[x.name] == size]


@pytest.mark.slow
def test_held_out_class_accuracy_of_the_committed_judge(judge):
    evaluator, _ = judge
    assert evaluator.accuracy["class"] >= 0.95


def assert_reading_follows(judge, size: int, attribute: int) -> None:
    """The judge's reading follows a flipped attribute in >= 90 % of the PAIRS counterfactual pairs at `size`."""
    evaluator, test = judge
    rate = report_judge.flip_rates(evaluator, test, size, PAIRS, [attribute])[SPEC[attribute].name]
    assert rate["follows"] >= 0.9, rate


@pytest.mark.slow
@pytest.mark.parametrize("attribute", judged_from(64, fine=False))
def test_flipping_a_coarse_attribute_at_64px_moves_the_reading(judge, attribute):
    assert_reading_follows(judge, 64, attribute)


@pytest.mark.slow
@pytest.mark.parametrize("attribute", judged_from(128, fine=True))
def test_flipping_a_fine_attribute_at_128px_moves_the_reading(judge, attribute):
    assert_reading_follows(judge, 128, attribute)


@pytest.mark.slow
@pytest.mark.parametrize("attribute", judged_from(256, fine=True))
def test_flipping_a_256px_attribute_at_256px_moves_the_reading(judge, attribute):
    """Back spots, judged from 256 px only (synthbirds.MIN_SIZE): read there by the detail reader."""
    assert_reading_follows(judge, 256, attribute)


@pytest.mark.slow
def test_back_spots_are_left_out_of_attr_fine_at_128px_and_in_at_256px(judge):
    from ganblocks.metrics.base import EvalSamples
    from ganblocks.registry import build

    evaluator, test = judge
    assert evaluator.judged_at(128) == [a for a, x in enumerate(SPEC) if x.name not in ("back_pattern", "size")]
    assert evaluator.judged_at(256) == [a for a, x in enumerate(SPEC) if x.name != "size"]
    rows = free_rows(test.attribute_spec, 40, 123)
    fine = {x.name for x in SPEC if x.fine}
    for size, expected in ((128, fine - {"back_pattern"}), (256, fine)):
        samples = EvalSamples(fake=report_judge.render_at(test, rows, 123, size), evaluator=evaluator,
                              fake_values=rows, fake_caption_ids=torch.arange(len(rows)))
        out = build("metric", "attributes")(samples)
        assert set(out["attr_fine"]["per_attribute"]) == expected, size
        assert ("back_pattern" in out["attr_all"]["per_attribute"]) == (size == 256)


@pytest.mark.slow
def test_the_detail_reader_supplies_its_attributes_and_nothing_else(judge):
    """Beak shape and back spots come from the detail reader; features, class logits and every other attribute
    are the committed v3 network's, bit for bit, and the combined judge has a name of its own."""
    evaluator, test = judge
    base = evaluator.base
    assert base.meta["artifact"]["sha256"] == read_index()[base.key]["sha256"]
    assert evaluator.name != base.name and evaluator.name.startswith(base.name + "-d")
    images = report_judge.render_at(test, free_rows(test.attribute_spec, 16, 321), 321, 128)
    combined, alone, detail = evaluator.outputs(images), base.outputs(images), evaluator.detail.logits(images)
    assert torch.equal(combined.features, alone.features) and torch.equal(combined.class_logits, alone.class_logits)
    reads = {r["name"]: j for j, r in enumerate(evaluator.detail.reads)}
    assert set(reads) == DETAIL
    for a, x in enumerate(SPEC):
        expected = detail[reads[x.name]] if x.name in reads else alone.attribute_logits[a]
        assert torch.equal(combined.attribute_logits[a], expected), x.name


@pytest.mark.slow
def test_blur_takes_the_fine_attributes_away(judge):
    evaluator, test = judge
    blur = report_judge.blur_drop(evaluator, test, 128, 2.5, n=200)
    assert blur["drop"] >= 0.2, blur


def test_evaluator_for_dataset_defaults_to_the_tables_recipe():
    """Callers that take the default judge (experiments.learning_curve) get the committed one, not a stale recipe."""
    import inspect

    from ganblocks.evaluation.builtin import evaluator_for_dataset

    params = inspect.signature(evaluator_for_dataset).parameters
    defaults = {k: params[k].default for k in ("image_size", "renders_per_class", "free_renders", "epochs", "width")}
    assert defaults == {"image_size": DEFAULTS["evaluator_size"],
                        "renders_per_class": DEFAULTS["evaluator_renders_per_class"],
                        "free_renders": DEFAULTS["evaluator_free_renders"], "epochs": DEFAULTS["evaluator_epochs"],
                        "width": DEFAULTS["evaluator_width"]}
    test = synthbirds_classes("small", "test")
    assert recipe_key(recipe(test, defaults["image_size"], defaults["renders_per_class"], defaults["free_renders"],
                             1000), dict(image_size=defaults["image_size"], epochs=defaults["epochs"],
                                         width=defaults["width"], seed=1000)) in read_index()


def test_the_stand_in_names_the_same_recipe_as_the_loaded_split(tiny_synthbirds):
    from ganblocks.data.loaders import load_synthbirds

    loaded = load_synthbirds(split="test", imsize=128, size="tiny", text_encoder=None)
    assert default_recipe_key(loaded) == default_recipe_key(synthbirds_classes("tiny", "test"))


def test_gaussian_blur_keeps_the_mean_and_removes_a_stripe_pattern():
    stripes = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    stripes[..., ::2] = 200
    blurred = report_judge.gaussian_blur(stripes, 2.5).float()
    assert (blurred - 100).abs().max() <= 2


@pytest.mark.slow
def test_size_which_no_image_shows_is_judged_at_no_size(judge):
    """The loader's crop normalises the bird's size away (flip rate ~chance), so no score may count it."""
    evaluator, _ = judge
    size = [a.name for a in evaluator.attributes].index("size")
    assert all(size not in evaluator.judged_at(s) for s in (64, 128, 256, 4096))
    values = torch.zeros(1, len(evaluator.attributes), dtype=torch.long)
    assert evaluator.judged_values(values, 256)[0, size] == -1
