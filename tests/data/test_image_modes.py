"""Every image mode Pillow knows decodes to the 8-bit RGB values it means, or is refused naming the mode.

Each case is a tiny image with known pixels and the RGB a person would read from it (alpha over white,
16-bit grey scaled by 1/257, palettes looked up); the last tests go through real files and decode_image.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from ganblocks.data import DatasetError
from ganblocks.data.dataset import decode_image
from ganblocks.data.images import ImageModeError, to_rgb

PALETTE = [10, 20, 30, 200, 100, 50] + [0] * (256 * 3 - 6)
HALF = (227, 177, 152)  # (200, 100, 50) at alpha 128 over white: c * 128/255 + 255 * 127/255


def pixels(mode: str, values: list, palette: bool = False, **info) -> Image.Image:
    im = Image.new(mode, (len(values), 1))
    if palette:
        im.putpalette(PALETTE)
    for x, v in enumerate(values):
        im.putpixel((x, 0), v)
    im.info.update(info)
    return im


def sixteen(mode: str, values: list[int]) -> Image.Image:
    order = {"I;16": "little", "I;16L": "little", "I;16B": "big", "I;16N": sys.byteorder}[mode]
    return Image.frombytes(mode, (len(values), 1), b"".join(v.to_bytes(2, order) for v in values))


GREY16 = ([0, 1000, 32896, 65535], [(0,) * 3, (4,) * 3, (128,) * 3, (255,) * 3])
CASES = {
    "1": (lambda: pixels("1", [0, 1]), [(0, 0, 0), (255, 255, 255)]),
    "L": (lambda: pixels("L", [0, 77]), [(0, 0, 0), (77, 77, 77)]),
    "P": (lambda: pixels("P", [0, 1], palette=True), [(10, 20, 30), (200, 100, 50)]),
    "LA": (lambda: pixels("LA", [(77, 255), (77, 0), (100, 128)]), [(77,) * 3, (255,) * 3, (177,) * 3]),
    "La": (lambda: pixels("La", [(77, 255), (50, 128)]), [(77,) * 3, (177,) * 3]),  # premultiplied: c + 255 - a
    "PA": (lambda: pixels("PA", [(0, 255), (1, 0), (1, 128)], palette=True), [(10, 20, 30), (255,) * 3, HALF]),
    "RGB": (lambda: pixels("RGB", [(10, 20, 30)]), [(10, 20, 30)]),
    "RGBX": (lambda: pixels("RGBX", [(10, 20, 30, 0)]), [(10, 20, 30)]),
    "RGBA": (lambda: pixels("RGBA", [(10, 20, 30, 255), (200, 100, 50, 0), (200, 100, 50, 128)]),
             [(10, 20, 30), (255,) * 3, HALF]),
    "RGBa": (lambda: pixels("RGBa", [(100, 50, 25, 128), (10, 20, 30, 255)]), [HALF, (10, 20, 30)]),
    "CMYK": (lambda: pixels("CMYK", [(0, 255, 255, 0), (255, 0, 0, 0), (0, 0, 0, 128)]),
             [(255, 0, 0), (0, 255, 255), (127, 127, 127)]),
    "YCbCr": (lambda: pixels("YCbCr", [(76, 85, 255), (128, 128, 128)]), [(254, 0, 0), (128, 128, 128)]),
    "LAB": (lambda: pixels("LAB", [(255, 128, 128), (0, 128, 128), (128, 128, 128)]),
            [(255,) * 3, (0,) * 3, (119,) * 3]),  # L* 50.2 is sRGB grey 119
    "HSV": (lambda: pixels("HSV", [(0, 255, 255), (85, 255, 255), (0, 0, 128)]),
            [(255, 0, 0), (0, 255, 0), (128, 128, 128)]),
    **{m: (lambda m=m: sixteen(m, GREY16[0]), GREY16[1]) for m in ("I;16", "I;16L", "I;16B", "I;16N")},
    "I": (lambda: pixels("I", [0, 4000]), "refused"),
    "F": (lambda: pixels("F", [0.0, 0.5]), "refused"),
}


def test_every_pillow_mode_has_a_case():
    assert sorted(Image.MODES) == sorted(CASES)


@pytest.mark.parametrize("mode", sorted(CASES))
def test_mode_decodes_to_the_rgb_it_means(mode):
    make, expected = CASES[mode]
    im = make()
    assert im.mode == mode
    if expected == "refused":
        with pytest.raises(ImageModeError, match=f"image mode {mode!r} .* is refused"):
            to_rgb(im)
        return
    got = np.asarray(to_rgb(im)).reshape(-1, 3).astype(int)
    assert np.abs(got - np.array(expected)).max() <= 1, (got.tolist(), expected)


def test_a_palette_colour_marked_transparent_is_white():
    im = pixels("P", [0, 1], palette=True, transparency=1)
    assert np.asarray(to_rgb(im)).reshape(-1, 3).tolist() == [[10, 20, 30], [255, 255, 255]]
    grey = pixels("L", [0, 77], transparency=77)  # a tRNS grey level
    assert np.asarray(to_rgb(grey)).reshape(-1, 3).tolist() == [[0, 0, 0], [255, 255, 255]]


FILES = [  # (mode, how it is made, file suffix): what users' folders hold
    ("1", CASES["1"][0], ".png"), ("L", CASES["L"][0], ".png"), ("LA", CASES["LA"][0], ".png"),
    ("P", lambda: pixels("P", [0, 1], palette=True, transparency=1), ".png"),
    ("RGBA", CASES["RGBA"][0], ".png"), ("I;16", CASES["I;16"][0], ".png"), ("CMYK", CASES["CMYK"][0], ".tif"),
    ("LAB", CASES["LAB"][0], ".tif"), ("YCbCr", CASES["YCbCr"][0], ".tif"),
]


@pytest.mark.parametrize("mode, make, suffix", FILES, ids=[f"{m}{s}" for m, _, s in FILES])
def test_files_of_each_mode_decode_through_decode_image(tmp_path, mode, make, suffix):
    path = tmp_path / f"image{suffix}"
    im = make()
    im.save(path)
    with Image.open(path) as reopened:
        if reopened.mode != mode:
            pytest.skip(f"Pillow stores {mode} in {suffix} as {reopened.mode}")
        expected = np.asarray(to_rgb(reopened))
    width = im.size[0]
    decoded = decode_image(path, width)  # (3, W, W): the one row resized to a square, no crop
    assert np.abs(decoded[:, 0, :].T.astype(int) - expected[0].astype(int)).max() <= 1


@pytest.mark.parametrize("mode", ["I", "F"])
def test_32_bit_files_are_refused_naming_file_and_mode(tmp_path, mode):
    path = tmp_path / "deep.tif"
    CASES[mode][0]().save(path)
    with pytest.raises(DatasetError, match=f"cannot use image {path}: image mode {mode!r} .* no defined white level"):
        decode_image(path, 8)
