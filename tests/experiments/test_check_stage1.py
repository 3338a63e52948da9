"""experiments.check_stage1: trained against untrained Stage-I on the evaluator, with its bounds and errors."""

import json
from types import SimpleNamespace

import pytest
import torch

from experiments import check_stage1

# A quicker judge than smoke's own (64 px, fewer free renders): these tests check the bookkeeping, not the judge
QUICK_JUDGE = ["metrics.evaluator_size=64", "metrics.evaluator_free_renders=200", "metrics.evaluator_epochs=30",
               "metrics.evaluator_width=8"]  # the quick judge these tests were written with (smoke's own is 10 epochs)


def test_caption_ceiling_counts_the_classes_a_caption_leaves_open():
    # Three classes over two attributes; classes 0 and 1 share attribute 0's value.
    attrs = torch.tensor([[0, 0], [0, 1], [1, 1]])
    test = SimpleNamespace(class_ids=torch.tensor([0, 1, 2]), attributes=attrs,
                           caption_attributes=[[{0: 0}, {0: 0, 1: 0}], [{}], [{1: 1}]])
    images, captions = torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 0, 0])
    # {0:0} leaves 2 classes open, {0:0,1:0} one, {} all three, {1:1} two.
    expected = (1 / 2 + 1 + 1 / 3 + 1 / 2) / 4
    assert check_stage1.caption_ceiling(test, images, captions) == pytest.approx(expected)


def test_check_writes_bounded_accuracies_with_errors(tmp_path, capsys):
    run = tmp_path / "check"
    assert check_stage1.main([f"run_dir={run}", "profile=smoke", "train.max_steps=3", "train.progress=false",
                              "n_captions=40", *QUICK_JUDGE]) == 0
    result = json.loads((run / "check_stage1.json").read_text())
    assert result == json.loads(capsys.readouterr().out)
    assert result["steps"] == 3 and result["profile"] == "smoke" and result["n_captions"] == 40
    assert (run / "untrained_generator.pt").is_file()
    chance = result["chance_class_accuracy"]
    assert result["split"] == "test"
    assert chance == pytest.approx(1 / result["classes"], abs=1e-4)
    assert chance <= result["caption_ceiling_class_accuracy"] <= 1.0
    for who in ("trained", "untrained", "real_images"):
        r = result[who]
        assert 0.0 <= r["class_accuracy"] <= 1.0 and 0.0 <= r["attribute_accuracy"] <= 1.0
        p = r["class_accuracy"]
        assert r["class_accuracy_se"] == pytest.approx((p * (1 - p) / 40) ** 0.5, abs=1e-4)
        assert 0.0 <= r["attribute_accuracy_se"] < 0.1  # over ~4 named attributes x 40 captions
        assert set(r["per_attribute"]) <= set(result["per_attribute_chance"])
        assert min(r["per_attribute"].values()) <= r["attribute_accuracy"] <= max(r["per_attribute"].values())
    # Real renders of the test classes are what the evaluator was built to recognise.
    assert result["real_images"]["class_accuracy"] > 0.8 > result["untrained"]["class_accuracy"]


def test_train_split_scores_the_captions_g_trained_on_beside_the_test_split(tmp_path, capsys):
    run = tmp_path / "check"
    common = [f"run_dir={run}", "profile=smoke", "train.max_steps=2", "train.progress=false", "n_captions=30",
              *QUICK_JUDGE]
    assert check_stage1.main(common) == 0
    assert check_stage1.main(common + ["split=train"]) == 0  # the finished run is scored, not retrained
    test = json.loads((run / "check_stage1.json").read_text())
    train = json.loads((run / "check_stage1_train.json").read_text())
    assert (test["split"], train["split"]) == ("test", "train")
    assert train["steps"] == test["steps"] == 2
    # The splits hold disjoint classes, so each has its own evaluator head and chance level.
    assert train["chance_class_accuracy"] == pytest.approx(1 / train["classes"], abs=1e-4)
    assert train["real_images"]["class_accuracy"] > 0.8


def test_bad_split_is_named(capsys, tmp_path):
    assert check_stage1.main([f"run_dir={tmp_path}", "profile=smoke", "split=val"]) == 2
    assert "split='val'; expected one of test, train" in capsys.readouterr().err


def test_check_needs_a_run_dir(capsys):
    assert check_stage1.main(["profile=smoke"]) == 2
    assert "run_dir" in capsys.readouterr().err


def test_a_run_dir_under_a_file_is_one_line_before_any_work(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(check_stage1, "check", lambda *a: pytest.fail("work started"))
    (tmp_path / "file").write_text("x")
    assert check_stage1.main([f"run_dir={tmp_path / 'file' / 'run'}", "profile=smoke"]) == 2
    err = capsys.readouterr().err
    assert "cannot be a folder" in err and "is a file" in err and "Traceback" not in err


def test_default_profile_is_auto_and_the_expected_time_is_said(monkeypatch, capsys, tmp_path):
    """Like every other command: auto (smoke on a CPU, as in the suite), not the half-hour small profile."""
    calls = []
    monkeypatch.setattr(check_stage1, "check", lambda run_dir, overrides, *a: calls.append(overrides) or {})
    assert check_stage1.main([f"run_dir={tmp_path}", "train.max_steps=2"]) == 0
    assert calls[-1] == ["train.max_steps=2", "profile=smoke"]
    assert "profile=smoke, expected about a minute on CPU" in capsys.readouterr().err
    assert check_stage1.main([f"run_dir={tmp_path}", "profile=small"]) == 0
    assert calls[-1] == ["profile=small"] and "over half an hour on CPU" in capsys.readouterr().err
    assert check_stage1.main([f"run_dir={tmp_path}", "profile=cpu"]) == 0
    assert "about 10 minutes on CPU" in capsys.readouterr().err
