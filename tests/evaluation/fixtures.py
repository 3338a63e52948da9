"""Fixtures shared by tests/evaluation and tests/metrics: the toy evaluator and fresh real renders it never saw."""

import pytest
import torch

from ganblocks.evaluation.evaluator import center_crop
from tests.evaluation import toy


@pytest.fixture(scope="session")
def evaluator():
    return toy.trained_evaluator()


@pytest.fixture(scope="session")
def real():
    """Fresh renders (seed disjoint from the evaluator's), cropped to 64: (images, class_ids, caption dicts)."""
    images, class_ids, _, caps = toy.dataset(per_class=24, seed=7)
    return center_crop(images, 64).contiguous(), class_ids, caps


def noise_images(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    """(n, 3, size, size) uint8 uniform noise, the floor of every sanity check."""
    return torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
