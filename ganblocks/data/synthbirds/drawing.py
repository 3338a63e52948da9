"""SynthBirds rendering: a bird as a supersampled part-label map (PIL polygons), coloured and patterned in the
bird's own coordinates (numpy), box-downsampled and composited over a varied background with lighting.

Every random number of an image is drawn before its attributes are used, so two renders with the same seed
and attributes that differ in one fine attribute differ only in that attribute's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from ganblocks.data.synthbirds.attributes import COLORS, NUM_ATTRIBUTES, SPEC, class_attributes

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
