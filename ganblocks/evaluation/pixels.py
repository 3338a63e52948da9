"""Pixel helpers shared by the evaluator and the detail reader: value ranges, the central crop, high-pass detail."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ganblocks.data.batching import pixels_to_unit


def to_unit_range(images: Tensor) -> Tensor:
    """uint8 [0, 255] or float [-1, 1] images -> float [-1, 1]; (B, 3, H, W) -> (B, 3, H, W)."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return pixels_to_unit(images)
    return images.float()


def to_uint8(images: Tensor) -> Tensor:
    """float [-1, 1] images -> uint8 [0, 255]; (B, 3, H, W) -> (B, 3, H, W)."""
    if images.dtype == torch.uint8:
        return images
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def center_crop(images: Tensor, size: int) -> Tensor:
    """Central square crop; (B, C, L, L) -> (B, C, size, size). Used on real images at the load size."""
    h, w = images.shape[-2:]
    if size > min(h, w):
        raise ValueError(f"cannot crop {size}x{size} out of images of size {h}x{w}")
    top, left = (h - size) // 2, (w - size) // 2
    return images[..., top : top + size, left : left + size]


def high_pass(x: Tensor) -> Tensor:
    """(B, 3, S, S) -> (B, 6, S, S): the image and its high-pass detail, 4 x (image minus its 3x3 binomial blur)."""
    k = torch.tensor([1.0, 2.0, 1.0], device=x.device, dtype=x.dtype)
    k = (k[:, None] * k[None, :] / 16).expand(3, 1, 3, 3)
    return torch.cat([x, 4 * (x - F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k, groups=3))], 1)


def resize(images: Tensor, size: int) -> Tensor:
    """(B, C, H, W) images -> (B, C, size, size), bilinear with antialiasing (as the evaluator resizes its input);
    the same tensor when already that size. Used to score a generator at another resolution than it draws
    (`metrics.image_size`: Stage-I's 64 px images judged at Stage-II's 128 px)."""
    if images.shape[-2:] == (size, size):
        return images
    import torch.nn.functional as F

    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
