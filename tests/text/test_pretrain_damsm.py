"""pretrain_damsm: trains both encoders, resumes exactly, refuses a folder of other settings, and reports
retrieval against its chance level."""

from __future__ import annotations

import json

import pytest
import torch

from ganblocks.registry import build
from ganblocks.text.pretrain_damsm import main, pretrain_damsm

SETTINGS = dict(dim=16, word_dim=12, width=4, imsize=32, epochs=2, batch_size=16, progress=False, log=None)


@pytest.mark.slow
def test_resumed_run_equals_an_uninterrupted_one(tmp_path, tiny_synthbirds):
    whole = pretrain_damsm(tmp_path / "whole", root=tiny_synthbirds, **SETTINGS)
    paused = pretrain_damsm(tmp_path / "split", root=tiny_synthbirds, stop_after_epochs=1, **SETTINGS)
    assert paused == {"status": "paused", "epoch": 1, "epochs": 2, "out_dir": str(tmp_path / "split")}
    resumed = pretrain_damsm(tmp_path / "split", root=tiny_synthbirds, **SETTINGS)
    a = torch.load(tmp_path / "whole" / "final.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "final.pt", weights_only=True)
    for part in ("text", "image"):
        assert all(torch.equal(v, b[part][k]) for k, v in a[part].items()), part
    assert resumed == {**whole, "out_dir": str(tmp_path / "split")}
    assert whole["status"] == "finished" and whole["retrieval_n"] > 0
    assert whole["retrieval_chance"] == pytest.approx(1 / min(100, whole["retrieval_n"]))
    log = [json.loads(line) for line in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2] and all(r["loss"] > 0 for r in log)
    # The finished run is a text encoder for datasets: the same sentence vectors as its bi-LSTM.
    enc = build("text_encoder", "damsm", checkpoint=tmp_path / "whole")
    captions = ["a small red bird with black wings", "blue bird"]
    ids, lengths = enc.vocab.encode(captions, max_len=18)
    model = build("damsm", "rnn", vocab_size=len(enc.vocab.words), word_dim=12, dim=16).eval()
    model.load_state_dict(a["text"])
    with torch.no_grad():
        torch.testing.assert_close(enc.encode(captions), model(ids, lengths)[1])
    assert enc.dim == 16 and enc.encode(captions).shape == (2, 16) and enc.cache_key().startswith("damsm-")
    with pytest.raises(ValueError, match=r"holds a run with other settings \(lr\)"):
        pretrain_damsm(tmp_path / "whole", root=tiny_synthbirds, **{**SETTINGS, "lr": 1e-4})


def test_inception_without_weights_fails_before_training(tmp_path, tiny_synthbirds):
    with pytest.raises(ValueError, match="inception_weights is not set"):
        main(["--out", str(tmp_path / "x"), "--root", str(tiny_synthbirds), "--image-encoder", "inception_v3",
              "--epochs", "1"])


def test_damsm_text_encoder_names_its_checkpoint_setting(tmp_path):
    with pytest.raises(ValueError, match="text_encoder 'damsm': checkpoint is not set"):
        build("text_encoder", "damsm")
    with pytest.raises(FileNotFoundError, match=r"checkpoint='.*final.pt' is not a file"):
        build("text_encoder", "damsm", checkpoint=tmp_path)


def test_help_lists_defaults_and_examples(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    text = capsys.readouterr().out
    assert done.value.code == 0 and "examples:" in text and "(default: 20)" in text and "--inception-weights" in text


@pytest.mark.parametrize("make, message", [
    (lambda root: None, "dataset folder {root} does not exist"),
    (lambda root: (root / "train").mkdir(parents=True), "missing file {root}/train/filenames.pickle"),
])
def test_cli_bad_data_is_one_line_naming_the_file(tmp_path, capsys, make, message):
    """A missing or broken AttnGAN folder used to end pretrain_damsm in a traceback."""
    root = tmp_path / "birds"
    make(root)
    assert main(["--out", str(tmp_path / "out"), "--dataset", "attngan", "--root", str(root), "--epochs", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "python -m ganblocks.text.pretrain_damsm: " + message.format(root=root), err
    assert not (tmp_path / "out" / "final.pt").exists()
