"""experiments.evaluate with a broken committed judge file (the v3 weights or the detail reader's): one line
naming the file and what is expected, exit 1; never a traceback, never another judge under the same name."""

import json

import pytest
import torch

from experiments import evaluate
from ganblocks.evaluation.artifacts import export_detail, load_committed_detail
from ganblocks.evaluation.detail import DetailReader, DetailReaderNet

READS = [{"name": "stripes", "index": 3, "num_values": 2, "size": 64, "width": 4, "epochs": 1}]


def committed_reader(folder):
    torch.manual_seed(0)
    reader = DetailReader(DetailReaderNet(READS), {"key": "toy-detail", "reads": READS})
    return export_detail(reader, folder)


def broken(folder, how):
    entry = committed_reader(folder)
    path = folder / entry["file"]
    if how == "altered":
        path.write_bytes(path.read_bytes() + b"\0")
    elif how == "missing":
        path.unlink()
    else:  # an evaluator-like file under the reader's name, its sha256 recorded: still not a detail reader
        torch.save({"state_dict": {}, "meta": {"class_ids": [0]}}, path)
        from ganblocks.evaluation.artifacts import file_sha256

        index = json.loads((folder / "index.json").read_text())
        index["toy-detail"]["sha256"] = file_sha256(path)
        (folder / "index.json").write_text(json.dumps(index))
    return path


@pytest.mark.parametrize("how, words", [("altered", "sha256"), ("missing", "is missing"),
                                        ("not_a_reader", "not a detail reader")])
def test_a_broken_committed_judge_file_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys, how, words):
    weights = tmp_path / "weights"
    weights.mkdir()
    path = broken(weights, how)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("data: {name: synthbirds}\n")

    def evaluate_run(run_dir, overrides=None):  # what evaluate_run meets while building the judge
        return load_committed_detail("toy-detail", weights)

    monkeypatch.setattr("ganblocks.evaluation.evaluate_run", evaluate_run)
    assert evaluate.main([f"run_dir={run}"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("experiments.evaluate: ") and str(path) in err and words in err


def test_a_committed_reader_whose_weights_were_edited_and_resigned_is_one_line(tmp_path, monkeypatch, capsys):
    # sha256 in the index updated to the edited file: the fingerprint in the file's meta still catches it
    from ganblocks.evaluation.artifacts import file_sha256

    weights = tmp_path / "weights"
    weights.mkdir()
    entry = committed_reader(weights)
    path = weights / entry["file"]
    blob = torch.load(path, weights_only=True)
    first = next(iter(blob["state_dict"]))
    blob["state_dict"][first] = blob["state_dict"][first] + 1
    torch.save(blob, path)
    index = json.loads((weights / "index.json").read_text())
    index["toy-detail"]["sha256"] = file_sha256(path)
    (weights / "index.json").write_text(json.dumps(index))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("data: {name: synthbirds}\n")
    monkeypatch.setattr("ganblocks.evaluation.evaluate_run", lambda run_dir, overrides=None:
                        load_committed_detail("toy-detail", weights))
    assert evaluate.main([f"run_dir={run}"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "altered after it was saved" in err
