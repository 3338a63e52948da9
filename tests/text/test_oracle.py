"""oracle (diagnosis-only attribute one-hot encoder): it parses every caption the grammar writes exactly."""

import numpy as np
import pytest
import torch

from ganblocks.data import synthbirds as sb
from ganblocks.registry import build


def test_oracle_parses_every_grammar_caption_back_to_its_attributes():
    enc = build("text_encoder", "oracle")
    table, rng = sb.class_attributes(200, 0), np.random.default_rng(3)
    for c in range(200):
        for _ in range(10):
            caption, named = sb.make_caption(table[c], rng)
            assert enc.parse(caption) == named, caption


def test_oracle_one_hot_layout_and_binding():
    enc = build("text_encoder", "oracle")
    e = enc.encode(["a violet crown and teal body feathers", "a teal crown and violet body feathers"])
    assert e.shape == (2, 67) and enc.dim == 67
    assert torch.allclose(e.norm(dim=1), torch.tensor(32.0))  # the bow / char-CNN-RNN embedding norm
    assert ((e > 0).sum(1) == 2).all()  # two attributes named, one slot each
    body, head = sb.ATTRIBUTE_INDEX["body_color"], sb.ATTRIBUTE_INDEX["head_color"]
    teal, purple = sb.COLOR_NAMES.index("teal"), sb.COLOR_NAMES.index("purple")
    assert e[0, enc.offsets[body] + teal] > 0 and e[0, enc.offsets[head] + purple] > 0
    assert float(torch.nn.functional.cosine_similarity(e[:1], e[1:])) == 0.0  # colours bound to parts


def test_oracle_refuses_other_datasets_and_unparsable_captions():
    with pytest.raises(ValueError, match="data.name='cub'"):
        build("text_encoder", "oracle", dataset="cub")
    with pytest.raises(ValueError, match="names no synthbirds attribute"):
        build("text_encoder", "oracle").encode(["a photo of a dog"])
