"""The detail reader: a separate small network whose logits replace the judge's for the attributes it reads,
trained deterministically, saved with a fingerprint and committed with a sha256 (toy data, seconds)."""

import pytest
import torch

from ganblocks.evaluation.artifacts import ArtifactMismatchError, export_detail, load_committed_detail
from ganblocks.evaluation.detail import DetailedEvaluator, DetailReader, DetailReaderNet, train_detail_reader
from tests.evaluation import toy

READS = [{"name": "stripes", "index": 3, "num_values": 2, "size": 64, "width": 4, "epochs": 1}]


def toy_reader(seed: int = 0, key: str = "toy-detail") -> DetailReader:
    torch.manual_seed(seed)
    return DetailReader(DetailReaderNet(READS), {"key": key, "reads": READS})


def toy_training(seed: int = 0) -> DetailReader:
    rows = toy.CLASSES[torch.arange(64) % len(toy.CLASSES)]
    return train_detail_reader(rows, {76: toy.render_attributes(rows, 76, 5)}, READS, batch_size=16, heldout=16,
                               seed=seed, key="toy", progress=False)


def test_the_detail_reader_replaces_only_its_attributes(evaluator):
    reader = toy_reader()
    combined = DetailedEvaluator(evaluator, reader)
    images = toy.render(torch.arange(8), 64, seed=3)
    alone, both = evaluator.outputs(images), combined.outputs(images)
    assert torch.equal(both.features, alone.features) and torch.equal(both.class_logits, alone.class_logits)
    for a in range(3):
        assert torch.equal(both.attribute_logits[a], alone.attribute_logits[a])
    assert torch.equal(both.attribute_logits[3], reader.logits(images)[0])
    assert not torch.equal(both.attribute_logits[3], alone.attribute_logits[3])
    # the combined judge has its own name (caches keyed by it never reuse the base judge's results)
    assert combined.name == f"{evaluator.name}-d{reader.meta['weights']}"
    assert combined.name != DetailedEvaluator(evaluator, toy_reader(seed=1)).name


def test_the_combined_accuracy_takes_the_readers_held_out_accuracy(evaluator):
    reader = DetailReader(toy_reader().net, {"key": "toy-detail", "reads": READS, "accuracy": {"stripes": 0.25}})
    combined = DetailedEvaluator(evaluator, reader).accuracy
    base = evaluator.accuracy
    assert combined["attributes"] == {**base["attributes"], "stripes": 0.25} and combined["detail_reader"] == ["stripes"]
    fine = [combined["attributes"][i.name] for i in evaluator.attributes if i.fine]
    assert combined["fine"] == pytest.approx(sum(fine) / len(fine)) and combined["class"] == base["class"]
    assert combined["attributes_mean"] == pytest.approx(sum(combined["attributes"].values()) / len(base["attributes"]))


def test_a_reader_of_another_attribute_is_refused(evaluator):
    wrong = [{**READS[0], "name": "body"}]
    reader = DetailReader(DetailReaderNet(wrong), {"key": "x", "reads": wrong})
    with pytest.raises(ValueError, match="'body' as attribute 3.*is 'stripes'"):
        DetailedEvaluator(evaluator, reader)


def test_training_is_deterministic_and_measured_on_held_out_renders():
    a, b = toy_training(), toy_training()
    assert a.meta["weights"] == b.meta["weights"]
    assert a.meta["n_heldout"] == 16 and 0.0 <= a.meta["accuracy"]["stripes"] <= 1.0
    assert toy_training(seed=1).meta["weights"] != a.meta["weights"]


def test_training_refuses_a_branch_without_renders_at_its_size():
    rows = toy.CLASSES[:4]
    with pytest.raises(ValueError, match="reads at 64 px but no renders at load size 76"):
        train_detail_reader(rows, {152: toy.render_attributes(rows, 152)}, READS, progress=False)


def test_committed_detail_weights_are_checked_by_sha256_and_fingerprint(tmp_path):
    reader = toy_reader()
    entry = export_detail(reader, tmp_path)
    loaded = load_committed_detail("toy-detail", tmp_path)
    assert loaded.meta["weights"] == reader.meta["weights"] and loaded.meta["artifact"]["sha256"] == entry["sha256"]
    assert load_committed_detail("no-such-recipe", tmp_path) is None
    path = tmp_path / entry["file"]
    blob = torch.load(path, weights_only=True)
    first = next(iter(blob["state_dict"]))
    blob["state_dict"][first] = blob["state_dict"][first] + 1
    torch.save(blob, tmp_path / "altered.pt")
    with pytest.raises(ValueError, match="altered after it was saved"):
        DetailReader.load_file(tmp_path / "altered.pt")
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ArtifactMismatchError, match=entry["sha256"]):
        load_committed_detail("toy-detail", tmp_path)


def test_a_file_that_is_not_a_detail_reader_is_refused_naming_it(tmp_path):
    # an evaluator file (no `reads`), a bare dict, or weights of another shape where a detail reader is expected:
    # one message naming the file and what it should hold, never a bare KeyError / state_dict dump
    reader = toy_reader()
    evaluator_like = tmp_path / "evaluator.pt"
    torch.save({"state_dict": reader.net.state_dict(), "meta": {"class_ids": [0, 1], "image_size": 64}},
               evaluator_like)
    no_meta = tmp_path / "no_meta.pt"
    torch.save({"state_dict": reader.net.state_dict()}, no_meta)
    a_list = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], a_list)
    wider = [{**READS[0], "width": 8}]
    other_shape = tmp_path / "other_shape.pt"
    torch.save({"state_dict": reader.net.state_dict(), "meta": {"key": "x", "reads": wider}}, other_shape)
    for path in (evaluator_like, no_meta, a_list, other_shape):
        with pytest.raises(ValueError, match=f"{path}.*not a detail reader.*expected"):
            DetailReader.load_file(path)
