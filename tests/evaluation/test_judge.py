"""The judge the tables use reads pixels: flip one attribute of a render and its reading follows; blur the fine
detail away and fine-attribute accuracy falls. Run on the committed evaluator of the `small` and `default`
builds (the exact weights their tables are computed with), on fresh counterfactual renders.

Attributes the committed judge does not yet read well enough are strict xfails with their measured rate: the
gap stays visible in every test run, and a better judge turns them into failures until the mark is removed.
"""

import pytest
import torch

from ganblocks.data.synthbirds import SPEC
from ganblocks.evaluation import report_judge
from ganblocks.evaluation.artifacts import read_index, recipe_key
from ganblocks.evaluation.builtin import recipe, synthbirds_classes
from ganblocks.evaluation.run import DEFAULTS

PAIRS = 100  # counterfactual pairs per attribute: the same pairs (seeds) as docs/results/evaluator.json
# The loader's crop around the bird's box (1.5 x its longer side) normalises the bird's size away: no judge can
# read `size` from the dataset's images; it is measured in docs/results/evaluator.json, not asserted.
UNREADABLE = {"size"}
# Not yet read at 0.9 by the committed v3 judge (docs/results/evaluator.json has the rates, 100 pairs each):
# beak shape at 64 px (0.89; 0.93 at 128), back spots at 128 px (0.55: held-out accuracy 0.62, chance 0.5).
NOT_YET = {64: {"beak_shape"}, 128: {"back_pattern"}}


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
    return evaluator, test


def readable(fine: bool, size: int) -> list:
    """The attributes to check at `size` px, those not yet read marked as strict xfails."""
    xfail = pytest.mark.xfail(strict=True, reason=f"not yet read at 0.9 at {size} px (docs/results/evaluator.json)")
    return [pytest.param(a, id=x.name, marks=[xfail] if x.name in NOT_YET[size] else []) for a, x in enumerate(SPEC)
            if x.fine == fine and x.name not in UNREADABLE]


@pytest.mark.slow
def test_held_out_class_accuracy_of_the_committed_judge(judge):
    evaluator, _ = judge
    assert evaluator.accuracy["class"] >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("attribute", readable(fine=False, size=64))
def test_flipping_a_coarse_attribute_at_64px_moves_the_reading(judge, attribute):
    evaluator, test = judge
    rate = report_judge.flip_rates(evaluator, test, 64, PAIRS, [attribute])[SPEC[attribute].name]
    assert rate["follows"] >= 0.9, rate


@pytest.mark.slow
@pytest.mark.parametrize("attribute", readable(fine=True, size=128))
def test_flipping_a_fine_attribute_at_128px_moves_the_reading(judge, attribute):
    evaluator, test = judge
    rate = report_judge.flip_rates(evaluator, test, 128, PAIRS, [attribute])[SPEC[attribute].name]
    assert rate["follows"] >= 0.9, rate


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
