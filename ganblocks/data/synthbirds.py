"""SynthBirds-200: the built-in procedural text-to-image benchmark, written in the StackGAN CUB layout.

Each class ("species") fixes 11 attributes: 7 coarse ones that show at 64x64 (body, wing, head and breast
colour, size, beak shape, tail shape) and 4 fine ones that only show at 128 or 256 (breast stripes, wing
bars, eye ring, back spots). The fine patterns are zero-mean around the part colour and about one 64-px
pixel wide, so box-downsampling to 64x64 averages them away while 256x256 keeps them.

A bird is drawn as a part-label map at 2-3x supersampling (PIL polygons), coloured and patterned with
vectorised numpy in the bird's own coordinates, box-downsampled, and composited over a varied background
with a lighting gradient. Per image: facing direction, tilt, scale, position, background and lighting.
Every random number of an image is drawn before its attributes are used, so two renders with the same
seed and attributes that differ in one fine attribute differ only in that attribute's pixels.

    >>> images, attrs = render([0, 1, 2], seed=7, size=128)      # fresh renders, (3, 3, 128, 128) uint8
    >>> root = ensure_built(size="tiny", seed=0)                  # CUB layout in the cache, built once
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from ganblocks.io import atomic_write_json, cache_dir, honour_umask, stable_hash
from ganblocks.progress import Step, long_step, report_done

GENERATOR_VERSION = "synthbirds-1"
MANIFEST = "manifest.json"


# ---------------------------------------------------------------------------------------------------------
# Attributes
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Attribute:
    """One attribute: its name, its values (index = label), and whether it only shows at high resolution."""

    name: str
    values: tuple[str, ...]
    fine: bool


COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.80, 0.13, 0.12),
    "orange": (0.93, 0.50, 0.12),
    "yellow": (0.95, 0.83, 0.18),
    "green": (0.22, 0.62, 0.22),
    "blue": (0.18, 0.35, 0.85),
    "purple": (0.50, 0.22, 0.65),
    "brown": (0.48, 0.30, 0.16),
    "black": (0.14, 0.14, 0.16),
    "white": (0.90, 0.90, 0.88),
    "grey": (0.55, 0.55, 0.57),
    "pink": (0.93, 0.55, 0.68),
    "teal": (0.10, 0.55, 0.55),
}
COLOR_NAMES = tuple(COLORS)

SPEC: tuple[Attribute, ...] = (
    Attribute("body_color", COLOR_NAMES, False),
    Attribute("wing_color", COLOR_NAMES, False),
    Attribute("head_color", COLOR_NAMES, False),
    Attribute("breast_color", COLOR_NAMES, False),
    Attribute("size", ("small", "medium", "large"), False),
    Attribute("beak_shape", ("short", "long", "hooked", "thick"), False),
    Attribute("tail_shape", ("pointed", "fan", "forked", "square"), False),
    Attribute("breast_pattern", ("plain", "striped"), True),
    Attribute("wing_bars", ("none", "present"), True),
    Attribute("eye_ring", ("none", "present"), True),
    Attribute("back_pattern", ("plain", "spotted"), True),
)
ATTRIBUTE_INDEX = {a.name: i for i, a in enumerate(SPEC)}
NUM_ATTRIBUTES = len(SPEC)
COARSE = tuple(i for i, a in enumerate(SPEC) if not a.fine)
FINE = tuple(i for i, a in enumerate(SPEC) if a.fine)


def attribute_spec() -> list[tuple[str, tuple[str, ...], bool]]:
    """The attribute list as (name, values, fine) tuples, in label order."""
    return [(a.name, a.values, a.fine) for a in SPEC]


def class_attributes(num_classes: int = 200, seed: int = 0) -> np.ndarray:
    """Attribute labels of every class: int64 (num_classes, A); distinct classes differ in a coarse one.

    Fine attributes are present in about half of the classes, independently.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes}: synthbirds needs at least 2 classes")
    rng = np.random.default_rng([seed, 1000])
    table = np.zeros((num_classes, NUM_ATTRIBUTES), dtype=np.int64)
    seen: set[tuple[int, ...]] = set()
    for c in range(num_classes):
        while True:
            row = [int(rng.integers(len(a.values))) for a in SPEC]
            key = tuple(row[i] for i in COARSE)
            if key not in seen:
                break
        seen.add(key)
        table[c] = row
    return table


def _as_label_row(attributes: Mapping[int | str, int | str] | Sequence[int]) -> dict[int, int]:
    """Normalise {name or index: value name or index} (or a full label row) to {index: value index}."""
    if not isinstance(attributes, Mapping):
        return {i: int(v) for i, v in enumerate(attributes)}
    out: dict[int, int] = {}
    for key, value in attributes.items():
        idx = ATTRIBUTE_INDEX[key] if isinstance(key, str) else int(key)
        if not 0 <= idx < NUM_ATTRIBUTES:
            raise ValueError(f"attribute index {idx} out of range; synthbirds has {NUM_ATTRIBUTES} attributes")
        values = SPEC[idx].values
        out[idx] = values.index(value) if isinstance(value, str) else int(value)
        if not 0 <= out[idx] < len(values):
            raise ValueError(f"value {value!r} of {SPEC[idx].name!r} not in {values}")
    return out


# ---------------------------------------------------------------------------------------------------------
# Captions: a small grammar with synonyms and varied order; only true attributes are named
# ---------------------------------------------------------------------------------------------------------
_COLOR_SYNONYMS = {
    "red": ("red", "scarlet", "crimson"),
    "orange": ("orange", "tangerine"),
    "yellow": ("yellow", "golden"),
    "green": ("green", "leaf green"),
    "blue": ("blue", "azure"),
    "purple": ("purple", "violet"),
    "brown": ("brown", "chestnut"),
    "black": ("black", "jet black"),
    "white": ("white", "snowy white"),
    "grey": ("grey", "gray"),
    "pink": ("pink", "rosy"),
    "teal": ("teal", "blue green"),
}
_PHRASES: dict[str, dict[str, tuple[str, ...]] | tuple[str, ...]] = {
    "body_color": ("a {c} body", "{c} body feathers", "a mostly {c} body"),
    "wing_color": ("{c} wings", "{c} wing feathers", "{c} colored wings"),
    "head_color": ("a {c} head", "a {c} crown", "a {c} colored head"),
    "breast_color": ("a {c} breast", "a {c} belly", "a {c} chest"),
    "beak_shape": {
        "short": ("a short beak", "a short stubby bill", "a small cone shaped beak"),
        "long": ("a long pointed beak", "a long thin bill", "a long sharp beak"),
        "hooked": ("a hooked beak", "a curved bill", "a hooked bill"),
        "thick": ("a thick beak", "a heavy bill", "a thick strong beak"),
    },
    "tail_shape": {
        "pointed": ("a pointed tail", "a long pointy tail"),
        "fan": ("a fan shaped tail", "a fanned tail"),
        "forked": ("a forked tail", "a split tail"),
        "square": ("a square tail", "a square tipped tail"),
    },
    "breast_pattern": {
        "plain": ("a plain breast", "an unmarked belly"),
        "striped": ("thin stripes on its breast", "a finely striped belly", "fine streaks on the chest"),
    },
    "wing_bars": {
        "none": ("no wing bars", "wings without bars"),
        "present": ("pale wing bars", "thin bars on the wings", "two wing bars"),
    },
    "eye_ring": {
        "none": ("no eye ring",),
        "present": ("an eye ring", "a pale ring around the eye", "a thin eye ring"),
    },
    "back_pattern": {
        "plain": ("a plain back", "an unspotted back"),
        "spotted": ("small spots on its back", "a speckled back", "a finely spotted back"),
    },
}
_SIZE_WORDS = {"small": ("small", "little", "tiny"), "medium": ("medium sized", "mid sized"), "large": ("large", "big")}
_OPENERS = ("this {s}bird has {x}", "a {s}bird with {x}", "this is a {s}bird with {x}", "the {s}bird has {x}",
            "{x} make up this {s}bird", "this {s}bird is covered with {x}")


def _phrase(attr: int, value: int, rng: np.random.Generator) -> str:
    a = SPEC[attr]
    table = _PHRASES[a.name]
    if isinstance(table, dict):
        options = table[a.values[value]]
        return options[int(rng.integers(len(options)))]
    syn = _COLOR_SYNONYMS[a.values[value]]
    return table[int(rng.integers(len(table)))].format(c=syn[int(rng.integers(len(syn)))])


def make_caption(
    attributes: Mapping[int | str, int | str] | Sequence[int],
    rng: np.random.Generator | int = 0,
    subset: Sequence[int] | None = None,
) -> tuple[str, dict[int, int]]:
    """A caption naming a random subset of `attributes` (or exactly `subset`), and what it names.

    Args:
        attributes: {attribute name or index: value name or index}, or a full label row (A,).
        rng: a numpy Generator or a seed.
        subset: attribute indices to name; default a random 2-5 of the given ones (a present fine
            attribute is included with probability 0.4, an absent one with 0.1).

    Returns:
        (caption, {attribute index: value index}) where the dict holds exactly the attributes named.
    """
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    labels = _as_label_row(attributes)
    if subset is None:
        coarse = [i for i in labels if not SPEC[i].fine]
        k = min(len(coarse), int(rng.integers(2, 5)))
        chosen = [int(i) for i in rng.permutation(coarse)[:k]] if coarse else []
        for i in (i for i in labels if SPEC[i].fine):
            present = labels[i] != 0
            if rng.random() < (0.4 if present else 0.1):
                chosen.append(i)
        if not chosen:
            chosen = [next(iter(labels))]
    else:
        chosen = [int(i) for i in subset]
        missing = [i for i in chosen if i not in labels]
        if missing:
            raise ValueError(f"subset names attributes {missing} that are not in the given attributes")
    named = {i: labels[i] for i in chosen}
    size_idx = ATTRIBUTE_INDEX["size"]
    size = ""
    if size_idx in named:
        words = _SIZE_WORDS[SPEC[size_idx].values[named[size_idx]]]
        size = words[int(rng.integers(len(words)))] + " "
    parts = [_phrase(i, named[i], rng) for i in rng.permutation([i for i in chosen if i != size_idx])]
    if not parts:  # only the size was chosen
        return f"this is a {size}bird", named
    body = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    opener = _OPENERS[int(rng.integers(len(_OPENERS)))]
    if opener.startswith("{x}") and len(parts) == 1:
        opener = _OPENERS[0]
    return opener.format(s=size, x=body), named


# ---------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------
# Part labels of the supersampled label map, in drawing order.
BG, BRANCH, TAIL, LEG, BODY, BREAST, WING, HEAD, BEAK, RING, EYE = range(11)
_SIZE_SCALE = {"small": 0.78, "medium": 0.9, "large": 1.0}

_TAILS = {  # bird units: body centre at the origin, length 2 (rx 1), facing +u, v points down
    "pointed": [(-0.75, -0.22), (-0.75, 0.12), (-1.95, -0.30)],
    "fan": [(-0.75, -0.20), (-0.75, 0.10), (-1.55, 0.38), (-1.72, 0.02), (-1.62, -0.48)],
    "forked": [(-0.75, -0.20), (-0.75, 0.10), (-1.85, 0.28), (-1.40, -0.08), (-1.85, -0.52)],
    "square": [(-0.75, -0.22), (-0.75, 0.12), (-1.60, 0.12), (-1.60, -0.34)],
}
_BEAKS = {  # relative to the head centre (0.95, -0.55), head radius 0.38
    "short": [(0.30, -0.12), (0.30, 0.08), (0.58, -0.02)],
    "long": [(0.30, -0.10), (0.30, 0.05), (0.95, 0.02)],
    "hooked": [(0.28, -0.14), (0.30, 0.08), (0.60, 0.10), (0.70, 0.22), (0.72, -0.02), (0.55, -0.14)],
    "thick": [(0.22, -0.22), (0.24, 0.16), (0.66, -0.02)],
}
_HEAD = (0.95, -0.55, 0.38)
_EYE = (1.07, -0.62, 0.075)
_RING = 0.055  # eye-ring width
_WING = (-0.22, -0.20, 0.70, 0.27, -0.22)  # centre u, v, rx, ry, angle (rad)
_BREAST = (0.28, 0.26, 0.62, 0.32)
_STRIPE_PERIOD = 0.09  # fine patterns: about one 64-px pixel, three to five 256-px pixels
_FINE_DELTA = 0.24


def _ellipse(cu: float, cv: float, ru: float, rv: float, angle: float = 0.0, n: int = 40) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = ru * np.cos(t), rv * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([cu + c * x - s * y, cv + s * x + c * y], 1)


@dataclass
class _Pose:
    """Per-image randomness, all drawn before the attributes are looked at."""

    flip: bool
    angle: float
    scale_jitter: float
    cx: float
    cy: float
    bg: np.ndarray  # (2, 3) gradient colours
    bg_waves: np.ndarray  # (3, 4) amplitude, freq x, freq y, phase
    light_dir: float
    light_gain: float
    light_slope: float
    branch: np.ndarray  # (4,) v offset, tilt, thickness, colour jitter
    leg_color: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator) -> "_Pose":
        base = rng.choice(np.array([[0.55, 0.75, 0.95], [0.45, 0.65, 0.35], [0.80, 0.75, 0.60],
                                    [0.35, 0.55, 0.65], [0.85, 0.85, 0.90], [0.30, 0.40, 0.25]]))
        top = np.clip(base + rng.normal(0, 0.08, 3), 0, 1)
        bottom = np.clip(base * rng.uniform(0.6, 1.0) + rng.normal(0, 0.08, 3), 0, 1)
        return cls(
            flip=bool(rng.random() < 0.5),
            angle=float(rng.uniform(-0.3, 0.3)),
            scale_jitter=float(rng.uniform(0.88, 1.1)),
            cx=float(rng.uniform(-1, 1)),
            cy=float(rng.uniform(-1, 1)),
            bg=np.stack([top, bottom]),
            bg_waves=np.stack([rng.uniform(0.02, 0.06, 3), rng.uniform(0.5, 3, 3), rng.uniform(0.5, 3, 3),
                               rng.uniform(0, 2 * np.pi, 3)], 1),
            light_dir=float(rng.uniform(0, 2 * np.pi)),
            light_gain=float(rng.uniform(0.8, 1.1)),
            light_slope=float(rng.uniform(0.0, 0.25)),
            branch=np.array([rng.uniform(0.95, 1.15), rng.uniform(-0.25, 0.25), rng.uniform(0.10, 0.18),
                             rng.uniform(-0.08, 0.08)]),
            leg_color=np.array([0.25, 0.2, 0.15]) + rng.uniform(-0.05, 0.15),
        )


def _default_supersample(size: int) -> int:
    return 3 if size <= 160 else 2


def render_one(
    attributes: Sequence[int], seed: int | Sequence[int], size: int, supersample: int | None = None
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Render one bird with the given attribute labels.

    Args:
        attributes: label row (A,) in `SPEC` order.
        seed: seed of this image's pose, background and lighting (an int or a sequence of ints).
        size: output side S in pixels.
        supersample: drawing factor (default 3 up to 160 px, else 2).

    Returns:
        (uint8 (S, S, 3) image, bounding box (x, y, w, h) in pixels).
    """
    if size < 16:
        raise ValueError(f"size={size}: synthbirds renders at 16 px or more")
    labels = [int(v) for v in attributes]
    if len(labels) != NUM_ATTRIBUTES:
        raise ValueError(f"attributes has {len(labels)} labels; synthbirds has {NUM_ATTRIBUTES} ({[a.name for a in SPEC]})")
    ss = supersample or _default_supersample(size)
    pose = _Pose.draw(np.random.default_rng(seed))
    val = {a.name: a.values[labels[i]] for i, a in enumerate(SPEC)}

    # Bird units -> supersampled pixels: the bird spans about 3.4 units (tail tip to beak).
    big = size * ss
    unit = big * 0.68 / 3.4 * _SIZE_SCALE[val["size"]] * pose.scale_jitter
    ca, sa = np.cos(pose.angle), np.sin(pose.angle)
    sign = -1.0 if pose.flip else 1.0
    margin = 2.1 * unit
    cx = big / 2 + pose.cx * max(0.0, big / 2 - margin)
    cy = big / 2 + pose.cy * max(0.0, big / 2 - margin) * 0.6

    def to_px(pts: np.ndarray) -> list[tuple[float, float]]:
        u, v = pts[:, 0] * sign, pts[:, 1]
        x = cx + unit * (ca * u - sa * v)
        y = cy + unit * (sa * u + ca * v)
        return list(zip(x.tolist(), y.tolist()))

    canvas = Image.new("L", (big, big), BG)
    draw = ImageDraw.Draw(canvas)
    by, tilt, thick, _ = pose.branch
    draw.polygon(to_px(np.array([[-3.5, by - tilt], [3.5, by + tilt], [3.5, by + tilt + thick],
                                 [-3.5, by - tilt + thick]])), fill=BRANCH)
    draw.polygon(to_px(np.array(_TAILS[val["tail_shape"]])), fill=TAIL)
    for lu in (-0.15, 0.22):
        draw.polygon(to_px(np.array([[lu - 0.03, 0.45], [lu + 0.03, 0.45], [lu + 0.05, by], [lu - 0.01, by]])),
                     fill=LEG)
    draw.polygon(to_px(_ellipse(0, 0, 1.0, 0.62, 0, 56)), fill=BODY)
    draw.polygon(to_px(_ellipse(*_BREAST, 0, 48)), fill=BREAST)
    draw.polygon(to_px(_ellipse(*_WING, 48)), fill=WING)
    hu, hv, hr = _HEAD
    draw.polygon(to_px(np.array(_BEAKS[val["beak_shape"]]) + [hu, hv]), fill=BEAK)
    draw.polygon(to_px(_ellipse(hu, hv, hr, hr, 0, 48)), fill=HEAD)
    eu, ev, er = _EYE
    if val["eye_ring"] == "present":
        draw.polygon(to_px(_ellipse(eu, ev, er + _RING, er + _RING, 0, 32)), fill=RING)
    draw.polygon(to_px(_ellipse(eu, ev, er, er, 0, 24)), fill=EYE)
    lab = np.asarray(canvas)

    # Colour the parts.
    pal = np.zeros((11, 3), np.float32)
    pal[BRANCH] = np.clip(np.array([0.40, 0.28, 0.18]) + pose.branch[3], 0, 1)
    pal[TAIL] = pal[WING] = COLORS[val["wing_color"]]
    pal[LEG] = pose.leg_color
    pal[BODY] = COLORS[val["body_color"]]
    pal[BREAST] = COLORS[val["breast_color"]]
    pal[HEAD] = COLORS[val["head_color"]]
    pal[BEAK] = (0.85, 0.65, 0.2) if val["beak_shape"] in ("short", "thick") else (0.2, 0.18, 0.15)
    pal[RING] = COLORS[val["head_color"]]
    pal[EYE] = (0.05, 0.05, 0.05)
    paletted = canvas.copy()
    paletted.putpalette((pal * 255 + 0.5).astype(np.uint8).tobytes())
    rgb = np.array(paletted.convert("RGB"))  # C-speed label -> colour lookup

    # Fine, zero-mean patterns in the bird's own coordinates (only where the part is drawn).
    def part_uv(part: int) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, np.ndarray]:
        idx = np.nonzero(lab == part)
        x, y = (idx[1] + 0.5 - cx) / unit, (idx[0] + 0.5 - cy) / unit
        u, v = ca * x + sa * y, -sa * x + ca * y
        return idx, u * sign, v

    def apply(idx: tuple[np.ndarray, np.ndarray], pattern: np.ndarray) -> None:
        shifted = rgb[idx].astype(np.float32) + (255 * _FINE_DELTA * pattern)[:, None]
        rgb[idx] = np.clip(shifted + 0.5, 0, 255).astype(np.uint8)

    if val["breast_pattern"] == "striped":
        idx, u, v = part_uv(BREAST)
        apply(idx, np.sign(np.sin(2 * np.pi * u / _STRIPE_PERIOD)))
    if val["wing_bars"] == "present":
        idx, u, v = part_uv(WING)
        wu, wv, _, _, wa = _WING
        t = np.cos(wa) * (u - wu) + np.sin(wa) * (v - wv)  # along the wing
        pattern = np.zeros_like(t)
        for centre in (0.05, 0.30):
            d = np.abs(t - centre)
            pattern += np.where(d < _STRIPE_PERIOD / 4, 1.0, np.where(d < _STRIPE_PERIOD / 2, -1.0, 0.0))
        apply(idx, pattern * 1.3)
    if val["eye_ring"] == "present":
        idx, u, v = part_uv(RING)
        d = np.hypot(u - eu, v - ev) - er
        apply(idx, np.where(d < _RING / 2, 1.6, -1.6))
    if val["back_pattern"] == "spotted":
        idx, u, v = part_uv(BODY)
        g = _STRIPE_PERIOD * 1.6
        du, dv = np.mod(u, g) - g / 2, np.mod(v + 0.5 * np.floor(u / g) * g, g) - g / 2
        r = np.hypot(du, dv)
        r1 = _STRIPE_PERIOD * 0.28
        pattern = np.where(r < r1, 1.0, np.where(r < r1 * np.sqrt(2), -1.0, 0.0))
        apply(idx, np.where(v < 0.05, pattern * 1.4, 0.0))

    # Box-downsample (premultiplied: background pixels are black in `rgb`) and composite.
    fg = np.asarray(Image.fromarray(rgb).reduce(ss), dtype=np.float32) / 255
    alpha = np.asarray(Image.fromarray(((lab != BG) * 255).astype(np.uint8)).reduce(ss), dtype=np.float32)
    alpha = alpha[..., None] / 255
    yy, xx = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    w = pose.bg_waves.astype(np.float32)
    wave = sum(w[k, 0] * np.sin(2 * np.pi * (w[k, 1] * xx + w[k, 2] * yy) + w[k, 3]) for k in range(3))
    top, bottom = pose.bg.astype(np.float32)
    bg = top * (1 - yy[..., None]) + bottom * yy[..., None] + wave[..., None]
    img = bg * (1 - alpha) + fg
    light = np.float32(pose.light_gain) + np.float32(pose.light_slope) * (
        (xx - 0.5) * np.float32(np.cos(pose.light_dir)) + (yy - 0.5) * np.float32(np.sin(pose.light_dir)))
    img = np.clip(img * light[..., None], 0, 1)
    out = (img * 255 + 0.5).astype(np.uint8)

    bird = lab >= TAIL  # every bird part is labelled after the branch
    rows, cols = np.nonzero(bird.any(1))[0], np.nonzero(bird.any(0))[0]
    x0, x1 = cols[0] / ss, (cols[-1] + 1) / ss
    y0, y1 = rows[0] / ss, (rows[-1] + 1) / ss
    return out, (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def render_attributes(attributes: np.ndarray | torch.Tensor, seed: int, size: int) -> torch.Tensor:
    """Render one image per label row: (N, A) labels -> uint8 (N, 3, S, S); image i uses seed (seed, i)."""
    attributes = np.asarray(attributes, dtype=np.int64)
    images = np.stack([render_one(row, (seed, i), size)[0] for i, row in enumerate(attributes)])
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def render(
    class_ids: Sequence[int] | np.ndarray | torch.Tensor,
    seed: int,
    size: int,
    *,
    num_classes: int = 200,
    dataset_seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh renders of given classes (for an evaluator the GAN never trains on).

    Args:
        class_ids: (N,) 0-based class indices of the dataset built with (num_classes, dataset_seed).
        seed: seed of the renders' poses; use one the dataset build does not use (it uses
            (dataset_seed, 1, image index)), e.g. any seed >= 1000.
        size: output side S.

    Returns:
        (uint8 images (N, 3, S, S), int64 attributes (N, A)).
    """
    table = class_attributes(num_classes, dataset_seed)
    ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
    if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
        raise ValueError(f"class_ids must lie in [0, {num_classes}); got range [{ids.min()}, {ids.max()}]")
    attrs = table[ids]
    images = np.stack([render_one(attrs[i], (seed, 7, i), size)[0] for i in range(len(ids))]) if len(ids) else \
        np.zeros((0, size, size, 3), np.uint8)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(attrs)


# ---------------------------------------------------------------------------------------------------------
# Building the dataset on disk, in the StackGAN CUB layout
# ---------------------------------------------------------------------------------------------------------
PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"num_classes": 20, "images_per_class": 8, "max_size": 128},
    "small": {"num_classes": 200, "images_per_class": 15, "max_size": 256},
    "default": {"num_classes": 200, "images_per_class": 60, "max_size": 256},
}
TRAIN_FRACTION = 0.75  # 150 / 50 of 200 classes, as CUB
N_CAPTIONS = 10


def resolve_config(size: str = "default", seed: int = 0, num_classes: int | None = None,
                   images_per_class: int | None = None, max_size: int | None = None) -> dict:
    """The full build configuration of a preset with overrides; what the cache folder is keyed by."""
    if size not in PRESETS:
        raise ValueError(f"unknown synthbirds size {size!r}; sizes: {', '.join(PRESETS)}")
    cfg = dict(PRESETS[size])
    for key, value in (("num_classes", num_classes), ("images_per_class", images_per_class), ("max_size", max_size)):
        if value is not None:
            cfg[key] = int(value)
    if cfg["num_classes"] < 2 or cfg["images_per_class"] < 1 or cfg["max_size"] < 32:
        raise ValueError(f"synthbirds config {cfg}: needs num_classes >= 2, images_per_class >= 1, max_size >= 32")
    cfg.update(size=size, seed=int(seed), version=GENERATOR_VERSION, n_captions=N_CAPTIONS)
    return cfg


def class_dir(c: int) -> str:
    """Folder name of class c (0-based), CUB style: '001.Synthbird_001'."""
    return f"{c + 1:03d}.Synthbird_{c + 1:03d}"


def _write_pickle(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _workers(workers: int | None, n_images: int) -> int:
    if workers is not None:
        return max(1, int(workers))
    return 1 if n_images < 400 else max(1, min(4, os.cpu_count() or 1))


def _render_chunk(task: tuple) -> list[tuple[float, float, float, float]]:
    """Render and save a chunk of images (a worker's unit); returns their bounding boxes in order."""
    folder, items, seed, size = task
    boxes = []
    for image_id, key, attrs in items:
        img, box = render_one(attrs, (seed, 1, image_id), size)
        Image.fromarray(img).save(folder / f"{key}.png", compress_level=1)
        boxes.append(box)
    return boxes


def _counted(boxes: list, step: Step) -> list:
    step.update(len(boxes))  # one box per image of the chunk
    return boxes


def build(root: str | os.PathLike, size: str = "default", seed: int = 0, workers: int | None = None,
          **overrides: int | None) -> Path:
    """Render the dataset into `root` (which must not exist yet), atomically; returns `root`.

    Built in a temporary sibling folder, the manifest written last, then renamed onto `root`: an
    interrupted build never looks finished. Layout (StackGAN CUB):
        CUB_200_2011/images/<class dir>/<name>.png, images.txt, bounding_boxes.txt,
        image_class_labels.txt, classes.txt; {train,test}/filenames.pickle, class_info.pickle;
        text_c10/<class dir>/<name>.txt (10 captions); attributes.json; manifest.json.
    `workers` processes render in parallel (default: 1 below 400 images, else up to 4); the bytes written
    do not depend on it.
    """
    cfg = resolve_config(size, seed, **overrides)
    root = Path(root)
    if (root / MANIFEST).exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.building-", dir=root.parent))
    honour_umask(tmp)  # mkdtemp makes 0700; the built folder is renamed onto `root`, often a shared cache
    try:
        start = time.perf_counter()
        table = class_attributes(cfg["num_classes"], seed)
        n_train = max(1, min(cfg["num_classes"] - 1, round(cfg["num_classes"] * TRAIN_FRACTION)))
        cub = tmp / "CUB_200_2011"
        images_txt, bbox_txt, labels_txt, per_split = [], [], [], {"train": ([], []), "test": ([], [])}
        caption_attrs: dict[str, list[dict[str, int]]] = {}
        jobs = []  # (image id, key, class) in file order
        for c in range(cfg["num_classes"]):
            (cub / "images" / class_dir(c)).mkdir(parents=True, exist_ok=True)
            (tmp / "text_c10" / class_dir(c)).mkdir(parents=True, exist_ok=True)
            for k in range(cfg["images_per_class"]):
                jobs.append((len(jobs) + 1, f"{class_dir(c)}/Synthbird_{c + 1:03d}_{k + 1:04d}", c))
        n_workers = _workers(workers, len(jobs))
        tasks = [(cub / "images", [(i, key, table[c].tolist()) for i, key, c in jobs[lo:lo + 64]], seed,
                  cfg["max_size"]) for lo in range(0, len(jobs), 64)]
        with long_step(f"rendering SynthBirds-200 {size} ({len(jobs):,} images)",
                       f"rendered SynthBirds-200 {size} ({len(jobs):,} images)", total=len(jobs), unit="img") as step:
            if n_workers > 1:
                ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
                with ctx.Pool(n_workers) as pool:
                    chunks = [_counted(chunk, step) for chunk in pool.imap(_render_chunk, tasks)]
            else:
                chunks = [_counted(_render_chunk(t), step) for t in tasks]
        boxes = [b for chunk in chunks for b in chunk]
        for (image_id, key, c), (x, y, w, h) in zip(jobs, boxes):
            images_txt.append(f"{image_id} {key}.png")
            bbox_txt.append(f"{image_id} {x:.1f} {y:.1f} {w:.1f} {h:.1f}")
            labels_txt.append(f"{image_id} {c + 1}")
            rng = np.random.default_rng([seed, 2, image_id])
            caps = [make_caption(table[c], rng) for _ in range(N_CAPTIONS)]
            (tmp / "text_c10" / f"{key}.txt").write_text("\n".join(t for t, _ in caps) + "\n")
            caption_attrs[key] = [{str(i): v for i, v in named.items()} for _, named in caps]
            split = "train" if c < n_train else "test"
            per_split[split][0].append(key)
            per_split[split][1].append(c + 1)
        (cub / "images.txt").write_text("\n".join(images_txt) + "\n")
        (cub / "bounding_boxes.txt").write_text("\n".join(bbox_txt) + "\n")
        (cub / "image_class_labels.txt").write_text("\n".join(labels_txt) + "\n")
        (cub / "classes.txt").write_text("".join(f"{c + 1} {class_dir(c)}\n" for c in range(cfg["num_classes"])))
        for split, (keys, classes) in per_split.items():
            _write_pickle(tmp / split / "filenames.pickle", keys)
            _write_pickle(tmp / split / "class_info.pickle", classes)
        atomic_write_json(tmp / "attributes.json", {
            "spec": [[a.name, list(a.values), a.fine] for a in SPEC],
            "class_attributes": table.tolist(),
            "caption_attributes": caption_attrs,
        })
        seconds = time.perf_counter() - start
        manifest = dict(cfg, n_images=len(jobs), n_train_classes=n_train, build_seconds=round(seconds, 3),
                        images_per_second=round(len(jobs) / max(seconds, 1e-9), 2), workers=n_workers, hash=stable_hash(cfg))
        atomic_write_json(tmp / MANIFEST, manifest)  # last: its presence marks a finished build
        try:
            os.rename(tmp, root)
        except OSError:
            if not (root / MANIFEST).exists():  # a concurrent build finished first otherwise
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report_done(f"built SynthBirds-200 {size} ({len(jobs):,} images)", time.perf_counter() - start, root)
    return root


def ensure_built(size: str = "default", seed: int = 0, workers: int | None = None,
                 **overrides: int | None) -> Path:
    """The cached build of (size, seed, overrides) under cache_dir('synthbirds'); built on first use."""
    cfg = resolve_config(size, seed, **overrides)
    root = cache_dir("synthbirds") / f"{size}-seed{seed}-{stable_hash(cfg, 10)}"
    if not (root / MANIFEST).exists():
        build(root, size, seed, workers, **overrides)
    return root


def read_manifest(root: str | os.PathLike) -> dict:
    """The manifest of a built dataset."""
    return json.loads((Path(root) / MANIFEST).read_text())
