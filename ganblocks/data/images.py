"""Image files to 8-bit RGB, and the checks of a bounding box against its image.

Every mode Pillow knows (`PIL.Image.MODES`) either decodes to the RGB values it means or is refused, naming
the file and the mode:

    1, L, P, RGB, RGBX, CMYK, YCbCr, LAB, HSV   Pillow's own conversion (palette looked up, CMYK without ICC
                                                profile as 255 - (C + K) per channel, YCbCr with JPEG's matrix)
    LA, La, PA, RGBA, RGBa, and a tRNS colour   composited over white (a documented repair: a transparent
                                                pixel has no colour of its own; premultiplied modes first
                                                un-premultiplied)
    I;16, I;16L, I;16B, I;16N                   16-bit grey, scaled to 8 bits: round(v / 257)
    I, F                                        refused: 32-bit integers and floats have no defined white level
                                                (Pillow would clip them to 0..255: a 16-bit value 4000 -> 255,
                                                a float image in [0, 1] -> black)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

DECODE_VERSION = 2  # in every image cache key: 2 = alpha over white, 16-bit scaled, 32-bit refused, boxes checked
PILLOW_CONVERTS = {"1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
WITH_ALPHA = {"LA", "La", "PA", "RGBA", "RGBa"}
SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N"}
REFUSED = {"I": "32-bit integer", "F": "32-bit float"}


class ImageModeError(ValueError):
    """An image mode with no defined 8-bit RGB meaning; the message names the mode and what to do."""


def to_rgb(im: Image.Image) -> Image.Image:
    """An opened image of any Pillow mode -> an RGB image of its 8-bit values (see the module docstring).

    Raises:
        ImageModeError: mode I or F, or a mode this table does not know.
    """
    mode = im.mode
    if mode in SIXTEEN_BIT:
        grey = (np.asarray(im).astype(np.uint32) + 128) // 257
        return Image.fromarray(grey.astype(np.uint8), "L").convert("RGB")
    if mode in WITH_ALPHA or (mode in ("L", "P", "RGB") and "transparency" in im.info):
        rgba = np.asarray((im.convert("LA") if mode == "La" else im).convert("RGBA"), dtype=np.float64)
        alpha = rgba[..., 3:] / 255.0
        over_white = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
        return Image.fromarray(np.clip(np.rint(over_white), 0, 255).astype(np.uint8), "RGB")
    if mode in PILLOW_CONVERTS:
        return im.convert("RGB")
    what = REFUSED.get(mode, "a mode without a known 8-bit RGB meaning")
    raise ImageModeError(f"image mode {mode!r} ({what}) is refused: its values have no defined white level; "
                         "save it as 8-bit (L, RGB, RGBA, P) or 16-bit grey (I;16) instead")


def check_bbox(bbox: Any, source: str) -> list[float]:
    """A bounding box (x, y, w, h) as four finite floats with w, h > 0; else ValueError naming `source`."""
    if isinstance(bbox, (str, bytes)) or not isinstance(bbox, Sequence) or len(bbox) != 4:
        raise ValueError(f"{source}: bbox {bbox!r}; expected [x, y, w, h] (four numbers, pixels)")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in bbox):
        raise ValueError(f"{source}: bbox {list(bbox)!r}; expected four finite numbers [x, y, w, h]")
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0 or h <= 0:
        raise ValueError(f"{source}: zero-size bounding box {list(bbox)!r} (width and height must be > 0); "
                         "its crop would be empty")
    return [x, y, w, h]


def bbox_crop(bbox: Sequence[float], width: int, height: int, path: Path, source: str) -> tuple[int, int, int, int]:
    """The official StackGAN crop of a CUB box: a square of side 1.5 * max(w, h) around its centre, clipped to
    the image. The box must lie inside the image (1 pixel of rounding allowed); else ValueError naming both."""
    x, y, w, h = bbox
    if x < -1 or y < -1 or x + w > width + 1 or y + h > height + 1:
        raise ValueError(f"bounding box {list(bbox)!r} ({source}) reaches outside image {path}, which is "
                         f"{width}x{height}; expected 0 <= x, x + w <= {width}, 0 <= y, y + h <= {height}")
    r = int(max(w, h) * 0.75)
    cx, cy = int((2 * x + w) / 2), int((2 * y + h) / 2)
    box = (max(0, cx - r), max(0, cy - r), min(width, cx + r), min(height, cy + r))
    if box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"bounding box {list(bbox)!r} ({source}) of image {path} gives an empty crop {box}")
    return box
