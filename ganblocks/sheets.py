"""Image sheets that say what they show: each column's caption above it, each row's label to its left.

One sheet is a grid of uint8 tiles, one row per (variant, stage) and one column per caption. Text is drawn
with PIL's default font (no font files, no downloads); tiles smaller than `MIN_COLUMN` pixels are enlarged
by a whole factor with nearest-neighbour resampling (pixels stay honest) so a caption wraps to a readable
number of lines. `layout_sheet` decides where every word goes and is what tests inspect; `compose_sheet`
draws it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont

FONT_PX = 12  # text height in pixels: readable at the sheet's own size
MIN_COLUMN = 128  # narrowest column (pixels) a caption is wrapped into
MAX_LABEL = 160  # widest row label (pixels) before it wraps
MARGIN = 4


def default_font(size: int = FONT_PX) -> ImageFont.ImageFont:
    """PIL's built-in font at `size` px (Pillow >= 10.1 scales it); the fixed bitmap font on older Pillow."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, AttributeError, OSError, ImportError):
        return ImageFont.load_default()


def text_width(font: ImageFont.ImageFont, text: str) -> int:
    """Width in pixels of `text` drawn in `font`."""
    left, _, right, _ = font.getbbox(text)
    return int(math.ceil(right - left))


def line_height(font: ImageFont.ImageFont) -> int:
    """Pixels from one text line to the next."""
    _, top, _, bottom = font.getbbox("Ag|y")
    return int(bottom - min(top, 0)) + 3


def wrap(text: str, max_width: int, font: ImageFont.ImageFont) -> list[str]:
    """Greedy word wrap of `text` into lines no wider than `max_width` px; a longer word is cut by characters."""
    lines: list[str] = []
    current = ""
    for word in str(text).split():
        candidate = f"{current} {word}" if current else word
        if text_width(font, candidate) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while text_width(font, word) > max_width and len(word) > 1:
            cut = 1
            while cut < len(word) and text_width(font, word[: cut + 1]) <= max_width:
                cut += 1
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    return lines


@dataclass
class SheetLayout:
    """Where everything on a sheet goes (pixels). `texts`: (x, y, line, kind) with kind "caption" | "label"."""

    width: int
    height: int
    tile: int  # side of one (enlarged) tile
    pad: int
    band: int  # height of the caption band above the tiles (0 without captions)
    label_width: int  # width of the label column left of the tiles (0 without labels)
    texts: list[tuple[int, int, str, str]] = field(default_factory=list)
    rules: list[int] = field(default_factory=list)  # y of a grey line in the gap above a row whose first label changes

    def tile_origin(self, row: int, col: int) -> tuple[int, int]:
        """Top-left corner of the tile at (row, col)."""
        return self.label_width + col * (self.tile + self.pad), self.band + row * (self.tile + self.pad)


def layout_sheet(n_cols: int, row_labels: Sequence[Sequence[str]], captions: Sequence[str], tile: int,
                 pad: int = 2, font: ImageFont.ImageFont | None = None) -> SheetLayout:
    """Lay out a sheet of len(row_labels) rows x `n_cols` tiles of `tile` px, with captions and row labels.

    Args:
        n_cols: tiles per row.
        row_labels: per row, its label lines (e.g. ("nearest", "Stage-I")); empty tuples for no label.
        captions: one per column (fewer leaves the last columns uncaptioned); empty for no caption band.
        tile: tile side in pixels (already enlarged).
        pad: gap between tiles.
    """
    font = font or default_font()
    lh = line_height(font)
    labels = [[line for text in lines for line in wrap(text, MAX_LABEL, font)] for lines in row_labels]
    widest = max((text_width(font, line) for lines in labels for line in lines), default=0)
    label_width = widest + 3 * MARGIN if widest else 0
    wrapped = [wrap(c, tile - 2 * MARGIN, font) for c in list(captions)[:n_cols]]
    band = max((len(lines) for lines in wrapped), default=0) * lh + (2 * MARGIN if any(wrapped) else 0)
    n_rows = len(row_labels)
    out = SheetLayout(width=label_width + n_cols * (tile + pad), height=band + n_rows * (tile + pad), tile=tile,
                      pad=pad, band=band, label_width=label_width)
    for col, lines in enumerate(wrapped):
        x, _ = out.tile_origin(0, col)
        out.texts += [(x + MARGIN // 2, MARGIN + k * lh, line, "caption") for k, line in enumerate(lines)]
    for row, lines in enumerate(labels):
        _, y = out.tile_origin(row, 0)
        if row and row_labels[row][:1] != row_labels[row - 1][:1]:
            out.rules.append(y - pad)
        top = y + (tile - len(lines) * lh) // 2
        out.texts += [(MARGIN, top + k * lh, line, "label") for k, line in enumerate(lines)]
    return out


def compose_sheet(rows: Sequence[tuple[Sequence[str], torch.Tensor]], captions: Sequence[str] = (), pad: int = 2,
                  min_column: int = MIN_COLUMN) -> Image.Image:
    """Draw a captioned, labelled sheet.

    Args:
        rows: [(label lines, uint8 (n, 3, S, S) images)]; every row has the same S (rows may have fewer tiles).
        captions: the caption of each column, wrapped above it.
        min_column: tiles are enlarged by the smallest whole factor that makes them at least this wide.

    Returns:
        An RGB image of size (layout.width, layout.height): the caption band on top, labels on the left.
    """
    size = int(rows[0][1].shape[-1])
    scale = max(1, math.ceil(min_column / size))
    n_cols = max(int(images.shape[0]) for _, images in rows)
    font = default_font()
    layout = layout_sheet(n_cols, [tuple(labels) for labels, _ in rows], captions, size * scale, pad, font)
    sheet = Image.new("RGB", (layout.width, layout.height), "white")
    for r, (_, images) in enumerate(rows):
        for c in range(int(images.shape[0])):
            tile = Image.fromarray(images[c].permute(1, 2, 0).contiguous().cpu().numpy())
            if scale > 1:
                tile = tile.resize((size * scale, size * scale), Image.NEAREST)
            sheet.paste(tile, layout.tile_origin(r, c))
    draw = ImageDraw.Draw(sheet)
    for y in layout.rules:  # between variants: a line across the sheet, in the gap between tile rows
        draw.rectangle([0, y, layout.width - 1, y + max(pad, 1) - 1], fill=(60, 60, 60))
    for x, y, line, kind in layout.texts:
        draw.text((x, y), line, fill="black" if kind == "caption" else (40, 40, 40), font=font)
    return sheet
