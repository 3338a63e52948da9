"""DAMSM encoders: the bi-LSTM's word/sentence contract, the image encoders' output contract, and the
Inception trunk's weights coming only from a local file."""

from __future__ import annotations

import pytest
import torch

from ganblocks.losses.damsm import DAMSMLoss
from ganblocks.registry import build
from ganblocks.text.damsm import INCEPTION_BLOCKS


def _captions():
    gen = torch.Generator().manual_seed(0)
    lengths = torch.tensor([3, 6, 1, 4])
    ids = torch.randint(1, 30, (4, 6), generator=gen) * (torch.arange(6)[None] < lengths[:, None])
    return ids, lengths


def test_rnn_words_and_sentence_follow_the_lengths():
    torch.manual_seed(0)
    enc = build("damsm", "rnn", vocab_size=30, word_dim=7, dim=10).eval()
    ids, lengths = _captions()
    words, sentence = enc(ids, lengths)
    assert words.shape == (4, 10, 6) and sentence.shape == (4, 10)
    for b, n in enumerate(lengths.tolist()):
        assert words[b, :, n:].abs().sum() == 0  # padded positions are zero
        # Sentence = forward direction's state after the last real word ++ backward direction's after the first.
        torch.testing.assert_close(sentence[b, :5], words[b, :5, n - 1])
        torch.testing.assert_close(sentence[b, 5:], words[b, 5:, 0])
        # Each caption encodes the same alone (no padding) as inside the padded, unsorted batch.
        w1, s1 = enc(ids[b : b + 1, :n], lengths[b : b + 1])
        torch.testing.assert_close(w1[0], words[b, :, :n], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(s1[0], sentence[b], rtol=1e-5, atol=1e-6)


def test_rnn_gru_and_bad_input():
    enc = build("damsm", "rnn", vocab_size=30, word_dim=7, dim=10, rnn_type="gru").eval()
    ids, lengths = _captions()
    words, sentence = enc(ids, lengths)
    torch.testing.assert_close(sentence[1, :5], words[1, :5, 5])
    with pytest.raises(ValueError, match=r"lengths \[3, 7, 1, 4\] must lie in 1..6"):
        enc(ids, torch.tensor([3, 7, 1, 4]))
    with pytest.raises(ValueError, match="rnn_type='transformer'"):
        build("damsm", "rnn", vocab_size=30, rnn_type="transformer")
    with pytest.raises(ValueError, match="dim=9 must be even"):
        build("damsm", "rnn", vocab_size=30, dim=9)


def test_small_cnn_contract_and_training_signal():
    torch.manual_seed(0)
    image = build("damsm", "small_cnn", dim=12, width=4, image_size=32)
    text = build("damsm", "rnn", vocab_size=30, word_dim=7, dim=12)
    regions, code = image(torch.rand(4, 3, 32, 32) * 2 - 1)
    assert regions.shape == (4, 12, 4, 4) and code.shape == (4, 12)
    assert image(torch.rand(2, 3, 48, 48))[0].shape == (2, 12, 4, 4)  # other sizes are resized
    ids, lengths = _captions()
    words, sentence = text(ids, lengths)
    loss, _ = DAMSMLoss()(regions, code, words, sentence, lengths)
    loss.backward()
    for module in (image, text):
        dead = [n for n, p in module.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
        assert not dead, dead


def test_inception_weights_are_required_and_never_downloaded(tmp_path):
    with pytest.raises(ValueError, match="inception_weights is not set"):
        build("damsm", "inception_v3")
    missing = tmp_path / "inception_v3_google.pth"
    with pytest.raises(FileNotFoundError, match=r"inception_weights='.*inception_v3_google.pth' is not a file"):
        build("damsm", "inception_v3", inception_weights=missing)


@pytest.mark.slow
def test_inception_trunk_loads_a_local_file_is_frozen_and_gives_17x17_regions(tmp_path):
    from torchvision.models.inception import Inception3

    torch.manual_seed(1)
    full = Inception3(num_classes=1000, aux_logits=True, transform_input=False, init_weights=False)
    path = tmp_path / "inception_v3_google-local.pth"
    torch.save(full.state_dict(), path)
    enc = build("damsm", "inception_v3", dim=16, inception_weights=path).eval()
    for block in INCEPTION_BLOCKS:
        for key, value in getattr(enc, block).state_dict().items():
            assert torch.equal(value, full.state_dict()[f"{block}.{key}"]), f"{block}.{key}"
    assert all(not p.requires_grad for p in enc.trunk_parameters())
    trainable = {n for n, p in enc.named_parameters() if p.requires_grad}
    assert trainable == {"emb_features.weight", "emb_cnn_code.weight", "emb_cnn_code.bias"}
    with torch.no_grad():
        regions, code = enc(torch.rand(1, 3, 64, 64) * 2 - 1)
    assert regions.shape == (1, 16, 17, 17) and code.shape == (1, 16)


def test_a_file_that_is_not_inception_weights_is_named(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(RuntimeError, match=r"inception_weights='.*other.pth' is not a torchvision Inception-v3"):
        build("damsm", "inception_v3", inception_weights=path)
