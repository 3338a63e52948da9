"""Data speed: SynthBirds build (images/s), renderer, first-load decode, and BatchLoader samples/s.

    pytest benchmarks/test_data_speed.py --benchmark-only --benchmark-group-by=group
Items per call are stored in extra_info, so `python -m benchmarks.to_markdown` shows images/s.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import pytest
import torch

from benchmarks.conftest import run_benchmark
from ganblocks.data import BatchLoader, TextImageDataset, build_dataset, load_size, synthbirds


@pytest.mark.benchmark(group="synthbirds-render")
@pytest.mark.parametrize("size", [64, 128, 256])
def test_render_one(benchmark, size):
    attrs = synthbirds.class_attributes(4, 0)
    counter = itertools.count()
    run_benchmark(benchmark, lambda: synthbirds.render_one(attrs[next(counter) % 4], next(counter), size), "cpu",
                  rounds=20, items=1)


@pytest.mark.benchmark(group="synthbirds-build")
@pytest.mark.parametrize("max_size,workers", [(128, 1), (256, 1), (256, 2)])
def test_build(benchmark, max_size, workers):
    """A whole build (render, PNG, captions, pickles, manifest) of 4 classes x 16 images."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-build-"))
    counter = itertools.count()

    def once():
        synthbirds.build(tmp / str(next(counter)), "tiny", seed=0, workers=workers, num_classes=4,
                         images_per_class=16, max_size=max_size)

    run_benchmark(benchmark, once, "cpu", rounds=3, warmup_rounds=1, items=64)
    benchmark.extra_info["workers"] = workers


@pytest.mark.benchmark(group="dataset-first-load")
@pytest.mark.parametrize("imsize", [64, 256])
def test_first_load_decode(benchmark, imsize):
    """Decode + bbox-crop + resize of every image into the uint8 cache (the one-time cost per imsize)."""
    root = synthbirds.ensure_built("tiny", 0)
    n = len(build_dataset("synthbirds", "train", 64, None, root=root))
    from ganblocks.data import dataset as dataset_mod

    def once():
        with tempfile.TemporaryDirectory() as cache:
            old = dataset_mod.cache_dir
            dataset_mod.cache_dir = lambda *parts: Path(cache).joinpath(*parts).mkdir(parents=True, exist_ok=True) \
                or Path(cache).joinpath(*parts)
            try:
                build_dataset("synthbirds", "train", imsize, None, root=root)
            finally:
                dataset_mod.cache_dir = old

    run_benchmark(benchmark, once, "cpu", rounds=3, warmup_rounds=1, items=n)


def _synthetic_dataset(n: int, imsize: int, dim: int = 1024) -> TextImageDataset:
    g = torch.Generator().manual_seed(0)
    size = load_size(imsize)
    return TextImageDataset(
        name="bench", split="train", imsize=imsize,
        images=torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g),
        embeddings=torch.randn(n, 10, dim, generator=g), captions=[["x"] * 10] * n,
        class_ids=torch.arange(n) % 50, filenames=[str(i) for i in range(n)], dataset_hash="bench", num_classes=50,
    )


@pytest.mark.benchmark(group="batch-loader")
@pytest.mark.parametrize("imsize", [64, 256])
@pytest.mark.parametrize("wrong", ["class", "shift"])
def test_batch_loader(benchmark, device, imsize, wrong):
    """Samples/s of BatchLoader (index, copy to device, crop + flip on device, wrong captions), batch 64."""
    ds = _synthetic_dataset(512 if imsize == 64 else 256, imsize)
    loader = BatchLoader(ds, 64, device, seed=0, wrong=wrong)
    batches = iter(())

    def one_batch():
        nonlocal batches
        try:
            return next(batches)
        except StopIteration:
            batches = iter(loader)
            return next(batches)

    run_benchmark(benchmark, one_batch, device, rounds=20, warmup_rounds=3, items=64)
