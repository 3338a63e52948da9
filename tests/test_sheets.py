"""Captioned, labelled image sheets: the caption band, the row labels, the wrapping, the tiles."""

import numpy as np
import torch

from ganblocks.sheets import compose_sheet, default_font, layout_sheet, text_width, wrap

CAPTIONS = ["this bird has a red crown, a white belly and thin black wing bars", "a grey bird"]


def tiles(n: int, size: int, value: int) -> torch.Tensor:
    return torch.full((n, 3, size, size), value, dtype=torch.uint8)


def test_wrap_keeps_every_word_in_order_within_the_width():
    font = default_font()
    text = "this bird has a red crown, a white belly and thin black wing bars"
    lines = wrap(text, 100, font)
    assert len(lines) > 1
    assert " ".join(lines) == text
    assert all(text_width(font, line) <= 100 for line in lines)
    long = wrap("supercalifragilisticexpialidocious", 40, font)  # a word wider than a line is cut, not lost
    assert "".join(long) == "supercalifragilisticexpialidocious" and all(text_width(font, w) <= 40 for w in long)


def test_layout_passes_labels_and_captions_through_and_adds_a_band():
    layout = layout_sheet(2, [("gaussian", "Stage-I"), ("mixture", "128px")], CAPTIONS, tile=128, pad=2)
    labels = [t for _, _, t, kind in layout.texts if kind == "label"]
    assert labels == ["gaussian", "Stage-I", "mixture", "128px"]
    by_column = {}
    for x, _, text, kind in layout.texts:
        if kind == "caption":
            by_column.setdefault(x, []).append(text)
    assert [" ".join(v) for _, v in sorted(by_column.items())] == CAPTIONS
    assert layout.band > 0 and layout.label_width > 0
    assert layout.height == layout.band + 2 * (128 + 2)
    assert layout.tile_origin(1, 1) == (layout.label_width + 130, layout.band + 130)
    assert layout.rules == [layout.band + 128]  # a line between the two variants' rows
    assert layout_sheet(2, [("gaussian", "Stage-I"), ("gaussian", "128px")], CAPTIONS, tile=128).rules == []
    # Captions sit in the band above the tiles, labels beside their own row.
    assert all(y + 12 <= layout.band for _, y, _, kind in layout.texts if kind == "caption")
    label_ys = [y for _, y, _, kind in layout.texts if kind == "label"]
    assert layout.band <= label_ys[0] < layout.band + 130 <= label_ys[2] < layout.band + 260


def test_sheet_is_taller_by_the_caption_band_which_holds_ink_where_a_caption_is_given():
    rows = [(("gaussian", "Stage-I"), tiles(3, 64, 200)), (("gaussian", "64px"), tiles(3, 64, 100))]
    plain = compose_sheet(rows)
    captioned = compose_sheet(rows, CAPTIONS)  # two captions for three columns: the third has none
    layout = layout_sheet(3, [labels for labels, _ in rows], CAPTIONS, tile=128)
    assert plain.size[0] == captioned.size[0]
    assert captioned.size[1] == plain.size[1] + layout.band and layout.band > 0
    band = np.asarray(captioned)[: layout.band]
    for col, caption in enumerate(CAPTIONS + [None]):
        x, _ = layout.tile_origin(0, col)
        inked = (band[:, x : x + 128] < 128).any()
        assert inked == (caption is not None), f"column {col}"
    # Tiles are enlarged by a whole factor (64 -> 128) and placed below the band, pixels unchanged.
    pixels = np.asarray(captioned)
    x, y = layout.tile_origin(1, 2)
    assert (pixels[y : y + 128, x : x + 128] == 100).all()
    # Labels are drawn left of the tiles.
    assert (pixels[layout.band :, : layout.label_width] < 128).any()
    assert (np.asarray(plain)[:, : layout.label_width] < 128).any()
