"""pretrain_damsm: trains both encoders, resumes exactly, refuses a folder of other settings, and reports
retrieval against its chance level."""

from __future__ import annotations

import json

import pytest
import torch

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
    with pytest.raises(ValueError, match=r"holds a run with other settings \(lr\)"):
        pretrain_damsm(tmp_path / "whole", root=tiny_synthbirds, **{**SETTINGS, "lr": 1e-4})


def test_inception_without_weights_fails_before_training(tmp_path, tiny_synthbirds):
    with pytest.raises(ValueError, match="inception_weights is not set"):
        main(["--out", str(tmp_path / "x"), "--root", str(tiny_synthbirds), "--image-encoder", "inception_v3",
              "--epochs", "1"])
