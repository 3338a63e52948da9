"""A tiny procedural stand-in for the built-in dataset, so evaluation tests need no other package.

Classes are fixed combinations of 4 attributes: background colour, body colour, body shape (coarse) and thin
stripes (fine). Each image jitters position, size and pixel noise; each has captions naming 2 attributes.
"""

from __future__ import annotations

import torch
from torch import Tensor

SPEC = [("background", ["sky", "grass", "sand"], False), ("body", ["red", "blue", "yellow"], False),
        ("shape", ["round", "square"], False), ("stripes", ["plain", "striped"], True)]
CLASSES = torch.tensor([[0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 0, 1], [0, 1, 1, 0],
                        [1, 2, 0, 0], [2, 0, 1, 1], [0, 2, 1, 1], [1, 0, 0, 1]])
BACKGROUND = torch.tensor([[0.6, 0.8, 1.0], [0.3, 0.7, 0.3], [0.9, 0.8, 0.5]])
BODY = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.2, 0.9], [0.95, 0.9, 0.1]])


def render(class_ids: Tensor, size: int = 76, seed: int = 0) -> Tensor:
    """Images of the given classes; (N,) -> uint8 (N, 3, size, size)."""
    gen = torch.Generator().manual_seed(seed)
    n = len(class_ids)
    attrs = CLASSES[class_ids]
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    cx, cy = (torch.rand(2, n, 1, 1, generator=gen) - 0.5) * 0.4
    r = 0.35 + torch.rand(n, 1, 1, generator=gen) * 0.15
    dx, dy = xx - cx, yy - cy
    round_mask = dx**2 + dy**2 < r**2
    square_mask = (dx.abs() < r * 0.9) & (dy.abs() < r * 0.9)
    is_round = (attrs[:, 2] == 0)[:, None, None]
    body = torch.where(is_round, round_mask, square_mask)
    stripe = ((torch.arange(size)[None, :, None] // 2) % 2 == 0) & (attrs[:, 3] == 1)[:, None, None]
    img = BACKGROUND[attrs[:, 0]][:, :, None, None].expand(n, 3, size, size).clone()
    body_col = BODY[attrs[:, 1]][:, :, None, None].expand(n, 3, size, size)
    img = torch.where(body[:, None], body_col, img)
    # plain bodies have the mean colour of striped ones: only the thin stripes tell them apart (a fine attribute)
    plain = (attrs[:, 3] == 0)[:, None, None, None]
    img = torch.where(body[:, None] & plain, body_col * 0.65, img)
    img = torch.where((body & stripe)[:, None], body_col * 0.3, img)
    img = img + torch.randn(img.shape, generator=gen) * 0.04
    return (img.clamp(0, 1) * 255).round().to(torch.uint8)


def dataset(per_class: int = 30, size: int = 76, seed: int = 0, captions_per_image: int = 3, named: int = 2):
    """(images, class_ids, attributes, caption_attributes per image (list of dicts)) for every class.

    Each caption names `named` of the class's attributes (4 makes every caption unique to its class).
    """
    class_ids = torch.arange(len(CLASSES)).repeat_interleave(per_class)
    images = render(class_ids, size, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    caps = []
    for c in class_ids:
        mine = []
        for _ in range(captions_per_image):
            chosen = torch.randperm(len(SPEC), generator=gen)[:named].tolist()
            mine.append({a: int(CLASSES[c, a]) for a in chosen})
        caps.append(mine)
    return images, class_ids, CLASSES[class_ids], caps


def trained_evaluator(image_size: int = 64):
    """The toy evaluator, trained once per test session (cached in the test cache folder)."""
    from ganblocks.evaluation.evaluator import cached_evaluator

    def data():
        images, class_ids, attributes, _ = dataset(per_class=30, seed=123)
        return images, class_ids, attributes, SPEC

    return cached_evaluator({"toy": 1}, data, progress=False, image_size=image_size, epochs=8)
