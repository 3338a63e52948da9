"""The paper-protocol hooks: IS with a user-supplied classifier (metrics.is_classifier) and metrics=paper_protocol."""

import pytest
import torch
import torch.nn as nn
from omegaconf import OmegaConf

from ganblocks.evaluation.classifier import load_is_classifier
from ganblocks.metrics.base import EvalSamples
from ganblocks.registry import build


class ConstantLogits(nn.Module):
    """Every image gets the same (confident) logits: IS must be exactly 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([[5.0, -3.0, 1.0]]).expand(x.shape[0], -1)


class Brightness(nn.Module):
    """Class 0 for dark images, 1 for bright ones, with near-certain logits: k equal groups give IS k."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bright = (x.mean((1, 2, 3)) > 0).float()
        return torch.stack([1 - bright, bright], 1) * 40.0


def scripted(module: nn.Module, path):
    torch.jit.save(torch.jit.script(module), str(path))
    return str(path)


def images(levels, n=20, size=32):
    return torch.cat([torch.full((n, 3, size, size), level, dtype=torch.uint8) for level in levels])


def inception_score(fake, path, splits=1):
    return build("metric", "is", splits=splits, classifier_size=32)(EvalSamples(fake=fake, is_classifier=path))["is"]


def test_a_classifier_with_the_same_logits_for_every_image_gives_is_one(tmp_path):
    path = scripted(ConstantLogits(), tmp_path / "constant.pt")
    rec = inception_score(images([10, 128, 250]), path)
    assert rec["value"] == pytest.approx(1.0, abs=1e-9)
    assert rec["classifier"].startswith(path) and "sha256" in rec["classifier"]


def test_the_classifier_logits_feed_the_inception_score(tmp_path):
    path = scripted(Brightness(), tmp_path / "brightness.pt")
    assert inception_score(images([10, 250]), path)["value"] == pytest.approx(2.0, abs=1e-6)
    assert inception_score(images([10]), path)["value"] == pytest.approx(1.0, abs=1e-6)


def test_another_file_at_the_same_path_is_another_classifier(tmp_path):
    path = tmp_path / "clf.pt"
    scripted(Brightness(), path)
    assert inception_score(images([10, 250]), str(path))["value"] == pytest.approx(2.0, abs=1e-6)
    scripted(ConstantLogits(), path)
    assert inception_score(images([10, 250]), str(path))["value"] == pytest.approx(1.0, abs=1e-6)


def test_an_inception_state_dict_is_read_with_weights_only(tmp_path):
    from torchvision.models import inception_v3

    net = inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=4)
    torch.save(net.state_dict(), tmp_path / "inception.pth")
    loaded = load_is_classifier(tmp_path / "inception.pth")
    assert loaded.fc.out_features == 4 and not loaded.training


def test_missing_or_unusable_files_are_refused_naming_the_setting(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.is_classifier=.*no such file"):
        load_is_classifier(tmp_path / "absent.pt")
    torch.save({"conv.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="metrics.is_classifier=.*not torchvision's Inception-v3"):
        load_is_classifier(tmp_path / "other.pth")
    torch.save(ConstantLogits(), tmp_path / "pickled_module.pt")  # code, not weights: weights_only refuses it
    with pytest.raises(ValueError, match="metrics.is_classifier=.*weights_only=True"):
        load_is_classifier(tmp_path / "pickled_module.pt")


def test_paper_protocol_preset_holds_the_papers_counts_and_refuses_real_data_without_a_classifier(tmp_path):
    from experiments.config import compose
    from experiments.evaluate import parse
    from ganblocks.evaluation.run import check_is_classifier, metrics_config

    m = compose(["profile=smoke", "metrics=paper_protocol"]).metrics
    assert m.n_samples == 30000 and m.n_per_caption == 10 and m.options["is"]["splits"] == 10
    assert m.real_split == "test" and m.n_real is None and m.require_is_classifier
    (tmp_path / "config.yaml").write_text("{}")  # parse checks that run_dir holds a run
    _, overrides = parse([f"run_dir={tmp_path}", "metrics=paper_protocol", "metrics.n_samples=300"])
    assert overrides["n_samples"] == 300 and overrides["options"]["is"]["splits"] == 10
    real_data = OmegaConf.create({"attributes": None})
    with pytest.raises(ValueError, match="set metrics.is_classifier=PATH"):
        check_is_classifier(metrics_config(m), real_data)
    check_is_classifier(metrics_config(m), OmegaConf.create({"attributes": [1]}))  # built-in: its evaluator
    with pytest.raises(FileNotFoundError, match="metrics.is_classifier"):
        check_is_classifier(metrics_config(m, {"is_classifier": "/nonexistent/clf.pt"}), real_data)
