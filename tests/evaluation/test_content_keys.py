"""Caches of real statistics and of evaluators are keyed by content: files replaced at the same path give new
values, and a weights file whose bytes changed is noticed."""

import json

import pytest
import torch
from PIL import Image

from ganblocks.data.folder import load_folder
from ganblocks.evaluation.artifacts import ArtifactMismatchError, export, load_committed
from ganblocks.evaluation.evaluator import Evaluator, center_crop
from ganblocks.evaluation.fidelity import INCEPTION_NAME, real_cache_name
from ganblocks.metrics.base import EvalSamples
from ganblocks.registry import build
from tests.evaluation import toy


def write_folder(root, images):
    """A `folder` dataset at root: one PNG per image (always the same file names) and captions.jsonl."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, img in enumerate(images):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(root / "images" / f"{i:03d}.png")
        lines.append(json.dumps({"image": f"images/{i:03d}.png", "captions": ["a bird"], "split": "test"}))
    (root / "captions.jsonl").write_text("\n".join(lines) + "\n")


def test_real_statistics_follow_the_files_not_their_paths(tmp_path, evaluator):
    """FID against a folder's images, cached under the dataset's (path-derived) hash; the images are then
    replaced at the same paths. The cached statistics must not be reused: FID equals an uncached run."""
    fake = center_crop(toy.render(torch.arange(8).repeat(4), seed=40), 64).contiguous()
    fid = build("metric", "fid")

    def fid_of_folder(use_cache=True):
        ds = load_folder(split="test", imsize=64, text_encoder=None, root=tmp_path)
        real = center_crop(ds.images, 64).contiguous()
        samples = EvalSamples(fake=fake, real=real, evaluator=evaluator, real_split="test",
                              real_cache_key=ds.dataset_hash if use_cache else None)
        return fid(samples)["fid"]["value"]

    write_folder(tmp_path, toy.render(torch.tensor([0, 1, 2, 3]).repeat(8), seed=41))
    first = fid_of_folder()
    assert fid_of_folder() == pytest.approx(first, rel=1e-9)  # a cache hit gives the same value
    write_folder(tmp_path, toy.render(torch.tensor([4, 5, 6, 7]).repeat(8), seed=42))
    second = fid_of_folder()
    assert second == pytest.approx(fid_of_folder(use_cache=False), rel=1e-6)
    assert abs(second - first) > 0.05 * first


def test_inception_weights_are_keyed_by_their_bytes(tmp_path):
    path = tmp_path / "inception.pth"
    extractor = {"feature_extractor": INCEPTION_NAME, "feature_extractor_weights_path": str(path)}
    path.write_bytes(b"weights one")
    first = real_cache_name("data", "test", 64, extractor, 100, "content")
    path.write_bytes(b"weights two")  # same path, same size, other bytes
    assert real_cache_name("data", "test", 64, extractor, 100, "content") != first
    path.write_bytes(b"weights one")
    assert real_cache_name("data", "test", 64, extractor, 100, "content") == first
    assert real_cache_name("data", "test", 64, extractor, 100, "other images") != first


def test_evaluator_replaced_at_the_same_path_gets_its_own_name(tmp_path, evaluator):
    evaluator.save(tmp_path)
    assert Evaluator.load(tmp_path).name == evaluator.name
    meta = {k: v for k, v in evaluator.meta.items() if k != "weights"}  # fingerprinted anew from the weights
    other = Evaluator(toy_net_like(evaluator, seed=1), meta)
    other.save(tmp_path)
    assert Evaluator.load(tmp_path).name == other.name != evaluator.name


def test_a_weights_file_altered_after_saving_is_refused(tmp_path, evaluator):
    evaluator.save(tmp_path)
    blob = torch.load(tmp_path / "evaluator.pt", weights_only=True)
    first = next(iter(blob["state_dict"]))
    blob["state_dict"][first] = blob["state_dict"][first] + 1
    torch.save(blob, tmp_path / "evaluator.pt")
    with pytest.raises(ValueError, match="altered after it was saved"):
        Evaluator.load(tmp_path)


def test_committed_weights_are_checked_by_sha256(tmp_path, evaluator):
    entry = export(evaluator, tmp_path)
    loaded = load_committed(evaluator.key, tmp_path)
    assert loaded.name == evaluator.name and loaded.meta["artifact"]["sha256"] == entry["sha256"]
    assert load_committed("no-such-recipe", tmp_path) is None
    blob = (tmp_path / entry["file"]).read_bytes()
    (tmp_path / entry["file"]).write_bytes(blob + b"\0")
    with pytest.raises(ArtifactMismatchError, match=entry["sha256"]):
        load_committed(evaluator.key, tmp_path)


def toy_net_like(evaluator, seed):
    """A network of the evaluator's shape with other (random) weights."""
    from ganblocks.evaluation.evaluator import EvaluatorNet

    torch.manual_seed(seed)
    m = evaluator.meta
    return EvaluatorNet(len(m["class_ids"]), [a["num_values"] for a in m["attributes"]], m["image_size"], m["width"],
                        m["feature_dim"]).eval()


def test_a_file_that_is_not_an_evaluator_or_an_unreadable_index_is_named(tmp_path, evaluator):
    # a detail reader's file (meta without class_ids) or a bare dict where an evaluator is expected, and an
    # index.json that is not JSON: one message naming the file, never a bare KeyError / JSONDecodeError
    from ganblocks.evaluation.artifacts import read_index

    (tmp_path / "reader").mkdir()
    torch.save({"state_dict": {}, "meta": {"key": "x", "reads": []}}, tmp_path / "reader" / "evaluator.pt")
    (tmp_path / "bare").mkdir()
    torch.save({"weights": torch.zeros(1)}, tmp_path / "bare" / "evaluator.pt")
    for folder in ("reader", "bare"):
        with pytest.raises(ValueError, match=f"{tmp_path / folder / 'evaluator.pt'}.*not an evaluator.*expected"):
            Evaluator.load(tmp_path / folder)
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(ValueError, match=f"{tmp_path / 'index.json'}.*not valid JSON"):
        read_index(tmp_path)
