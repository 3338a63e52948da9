"""experiments.encoder_check: encoder options on the command line, and retrieval on a known answer."""

import pytest
import torch

from experiments import encoder_check


def test_encoder_spec_reads_options_after_the_name():
    assert encoder_check.encoder_spec("bow") == "bow"
    assert encoder_check.encoder_spec("rnn:epochs=100:lr=0.001") == {"name": "rnn", "epochs": 100, "lr": 0.001}


def test_retrieval_is_perfect_for_class_embeddings_and_chance_for_noise():
    classes = torch.arange(5).repeat_interleave(4)  # 5 classes x 4 images, 10 captions each
    exact = torch.nn.functional.one_hot(classes, 5).float()[:, None, :].expand(-1, 10, -1)
    acc, n = encoder_check.retrieval(exact, classes)
    assert acc == 1.0 and n == 20 * 5  # captions 5-9 of every image query
    noise, _ = encoder_check.retrieval(torch.randn(20, 10, 64, generator=torch.Generator().manual_seed(0)), classes)
    assert noise < 0.5


def test_bad_encoders_are_refused_before_any_encoder_is_built(tmp_path, capsys, monkeypatch):
    from experiments import encoder_check

    monkeypatch.setattr(encoder_check, "check", lambda *a, **k: pytest.fail("built an encoder"))
    out = tmp_path / "e.json"
    assert encoder_check.main([f"out={out}", "encoders=bow,rnn:epochs=abc,oracle:norm=0,rnnn"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not out.exists()
    assert "encoders=rnn:epochs=abc: rnn.epochs='abc'; text encoder 'rnn' expects an integer >= 1" in err
    assert "encoders=oracle:norm=0: oracle.norm=0; text encoder 'oracle' expects a finite number > 0" in err
    assert "unknown text_encoder 'rnnn' (from encoders)" in err
