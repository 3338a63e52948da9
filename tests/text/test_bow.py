"""bow: shape, scale, determinism across instances, sensitivity to words and order-aware bigrams."""

import pytest
import torch

from ganblocks.registry import build


def test_shape_scale_and_determinism():
    enc = build("text_encoder", "bow", dim=64)
    caps = ["a red bird with blue wings", "this bird has a hooked beak"]
    a = enc.encode(caps)
    assert a.shape == (2, 64) and a.dtype == torch.float32 and enc.dim == 64
    assert torch.allclose(a.norm(dim=1), torch.full((2,), 8.0))  # unit RMS per component
    assert torch.equal(a, build("text_encoder", "bow", dim=64).encode(caps))
    assert enc.cache_key() != build("text_encoder", "bow", dim=64, seed=1).cache_key()


def test_words_matter_and_stopwords_do_not():
    enc = build("text_encoder", "bow", dim=256)
    red, blue = enc.encode(["a red body", "a blue body"])
    assert torch.cosine_similarity(red, blue, dim=0) < 0.9
    x, y = enc.encode(["red body", "this is a red body"])
    assert torch.allclose(x, y)
    s, t = enc.encode(["red wings blue body", "blue wings red body"])  # same words, other bigrams
    assert not torch.allclose(s, t)


def test_bad_captions():
    enc = build("text_encoder", "bow", dim=8)
    with pytest.raises(ValueError, match="caption 1 is empty"):
        enc.encode(["ok", "  "])
    with pytest.raises(TypeError, match="list of captions"):
        enc.encode("one string")
    with pytest.raises(ValueError, match="dim=0"):
        build("text_encoder", "bow", dim=0)
