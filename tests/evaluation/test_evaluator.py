"""The evaluator: trains to a measured held-out accuracy, round-trips through its cache, refuses when weak."""

import pytest
import torch

from ganblocks.evaluation.evaluator import Evaluator, EvaluatorTooWeakError, attribute_infos
from ganblocks.evaluation.training import cached_evaluator, train_evaluator
from tests.evaluation import toy


def tiny_training_data():
    return toy.training_data(per_class=6, n_free=96, size=38, seed=3)


def test_trained_evaluator_is_accurate_on_held_out_renders(evaluator):
    acc = evaluator.accuracy
    assert acc["class"] > 0.8 and acc["coarse"] > 0.8
    assert set(acc["attributes"]) == {name for name, _, _ in toy.SPEC}
    assert evaluator.meta["n_heldout"] > 0 and evaluator.meta["class_ids"] == list(range(len(toy.CLASSES)))


def test_outputs_have_the_documented_shapes(evaluator, real):
    out = evaluator.outputs(real[0][:5])
    assert out.features.shape == (5, evaluator.meta["feature_dim"])
    assert out.class_logits.shape == (5, len(toy.CLASSES))
    assert [l.shape for l in out.attribute_logits] == [(5, len(v)) for _, v, _ in toy.SPEC]


def test_training_is_deterministic_under_a_seed():
    data = tiny_training_data()
    a = train_evaluator(**data, image_size=32, epochs=1, progress=False, seed=5)
    b = train_evaluator(**data, image_size=32, epochs=1, progress=False, seed=5)
    for (k, va), vb in zip(a.net.state_dict().items(), b.net.state_dict().values()):
        assert torch.equal(va, vb), k


def test_name_tells_recipe_and_weights_apart(tmp_path):
    """Same recipe, same weights: same name (also after a reload). Same recipe, other weights (another
    device, torch or seed would do that): another name, so results never claim one evaluator for two."""
    data = tiny_training_data()
    a = train_evaluator(**data, key="recipe", image_size=32, epochs=1, progress=False, seed=5)
    b = train_evaluator(**data, key="recipe", image_size=32, epochs=1, progress=False, seed=5)
    c = train_evaluator(**data, key="recipe", image_size=32, epochs=1, progress=False, seed=6)
    assert a.name == b.name and a.name.startswith("ganblocks-evaluator-recipe-w")
    assert c.key == a.key and c.name != a.name
    a.save(tmp_path)
    assert Evaluator.load(tmp_path).name == a.name
    legacy = dict(a.meta)
    del legacy["weights"]  # saved before names carried the fingerprint: computed on load
    assert Evaluator(a.net, legacy).name == a.name


def test_save_load_round_trip_gives_identical_outputs(tmp_path, evaluator, real):
    evaluator.save(tmp_path)
    loaded = Evaluator.load(tmp_path)
    assert loaded.meta == evaluator.meta
    x = real[0][:8]
    assert torch.equal(loaded.outputs(x).class_logits, evaluator.outputs(x).class_logits)


def test_cache_trains_once_then_loads():
    calls = []

    def make():
        calls.append(1)
        return tiny_training_data()

    first = cached_evaluator({"test": "cache-once"}, make, progress=False, image_size=32, epochs=1)
    second = cached_evaluator({"test": "cache-once"}, make, progress=False, image_size=32, epochs=1)
    assert len(calls) == 1 and first.key == second.key
    other = cached_evaluator({"test": "cache-once"}, make, progress=False, image_size=32, epochs=2)
    assert len(calls) == 2 and other.key != first.key


def test_weak_evaluator_is_refused_with_the_reason(evaluator):
    with pytest.raises(EvaluatorTooWeakError, match="metrics.min_class_accuracy=1.01"):
        evaluator.check(min_class_accuracy=1.01)
    with pytest.raises(EvaluatorTooWeakError, match="mean attribute accuracy"):
        evaluator.check(min_attribute_accuracy=1.01)
    evaluator.check(0.5, 0.5)


def test_bad_inputs_are_named():
    data = tiny_training_data()
    with pytest.raises(ValueError, match="attributes of images have shape"):
        train_evaluator(**{**data, "attributes": data["attributes"][:, :2]}, progress=False)
    with pytest.raises(ValueError, match="attributes of free_images have shape"):
        train_evaluator(**{**data, "free_attributes": data["free_attributes"][:5]}, progress=False)
    with pytest.raises(ValueError, match="free_images must be uint8"):
        train_evaluator(**{**data, "free_images": data["free_images"].float()}, progress=False)
    with pytest.raises(TypeError, match="attribute_spec\\[0\\]"):
        attribute_infos([42])
