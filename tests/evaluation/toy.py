"""A tiny procedural stand-in for the built-in dataset, so evaluation tests need no other package.

Classes are fixed combinations of 4 attributes: background colour, body colour, body shape (coarse) and thin
stripes (fine). Each image jitters position, size and pixel noise; each has captions naming 2 attributes.
Like the built-in renderer it also renders any attribute rows (`render_attributes`), and its evaluator is
trained the built-in way: attribute heads on free renders (attributes drawn independently of the class), so
that a judge which reads the class instead of the pixels cannot pass the tests that use it.
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
    return render_attributes(CLASSES[class_ids], size, seed)


def render_attributes(attrs: Tensor, size: int = 76, seed: int = 0) -> Tensor:
    """Images of the given attribute rows; (N, 4) -> uint8 (N, 3, size, size). Same seed and n: same jitter
    and noise, so rows that differ in one attribute give images that differ only in its pixels."""
    gen = torch.Generator().manual_seed(seed)
    n = len(attrs)
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


def free_rows(n: int, seed: int = 0) -> Tensor:
    """(n, 4) attribute rows, every value drawn uniformly and independently of the others."""
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(len(values), (n,), generator=gen) for _, values, _ in SPEC], 1)


def training_data(per_class: int = 30, n_free: int = 480, size: int = 76, seed: int = 123) -> dict:
    """`train_evaluator`'s data arguments: class-faithful renders and free renders."""
    images, class_ids, attributes, _ = dataset(per_class=per_class, size=size, seed=seed)
    rows = free_rows(n_free, seed + 1)
    return dict(images=images, class_ids=class_ids, attributes=attributes, attribute_spec=SPEC,
                free_images=render_attributes(rows, size, seed + 2), free_attributes=rows)


def trained_evaluator(image_size: int = 64):
    """The toy evaluator, trained once per test session (cached in the test cache folder)."""
    from ganblocks.evaluation.training import cached_evaluator

    return cached_evaluator({"toy": 2}, training_data, progress=False, image_size=image_size, epochs=8)
