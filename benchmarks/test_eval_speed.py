"""Evaluation speed: evaluator feature extraction (images/s), evaluator training, and metric computation.

    pytest benchmarks/test_eval_speed.py --benchmark-only --benchmark-group-by=group
Items per call are stored in extra_info, so `python -m benchmarks.to_markdown` shows images/s.
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.conftest import run_benchmark
from ganblocks.evaluation.evaluator import EvaluatorNet, Evaluator, train_evaluator
from ganblocks.metrics.base import EvalSamples, caption_values
from ganblocks.registry import build

N_ATTRIBUTES = [12, 12, 12, 12, 3, 4, 4, 2, 2, 2, 2]  # synthbirds: 7 coarse, 4 fine
N_CLASSES = 50


def stand_in_evaluator(image_size: int, device: str) -> Evaluator:
    """An untrained evaluator of synthbirds' shape: speed does not depend on the weights."""
    net = EvaluatorNet(N_CLASSES, N_ATTRIBUTES, image_size=image_size, width=8)
    meta = {"key": f"bench-{image_size}", "image_size": image_size, "width": 8, "feature_dim": 128,
            "class_ids": list(range(N_CLASSES)),
            "attributes": [dict(name=f"a{i}", num_values=n, fine=i >= 7) for i, n in enumerate(N_ATTRIBUTES)],
            "accuracy": {"class": 1.0, "attributes_mean": 1.0, "coarse": 1.0, "fine": 1.0, "attributes": {}}}
    return Evaluator(net, meta).to(device)


def images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.benchmark(group="evaluator-features")
@pytest.mark.parametrize("size", [64, 128, 256])
def test_feature_extraction(benchmark, device, size):
    """Evaluator forward pass (features, class and attribute logits) on 256 uint8 images."""
    ev = stand_in_evaluator(128, device)
    batch = images(256, size).to(device)
    run_benchmark(benchmark, lambda: ev.outputs(batch), device, items=len(batch))


@pytest.mark.benchmark(group="evaluator-training")
def test_evaluator_training_epoch(benchmark):
    """One epoch of evaluator training on 300 renders at 128 px (the tiny dataset's 5 test classes x 60)."""
    data = images(300, 152)
    class_ids = torch.arange(5).repeat_interleave(60)
    attrs = torch.stack([torch.randint(0, n, (300,)) for n in N_ATTRIBUTES], 1)
    spec = [(f"a{i}", n, i >= 7) for i, n in enumerate(N_ATTRIBUTES)]
    run_benchmark(benchmark, lambda: train_evaluator(data, class_ids, attrs, spec, image_size=128, epochs=1,
                                                     progress=False), "cpu", rounds=2, warmup_rounds=0, items=300)


@pytest.fixture(scope="module")
def samples() -> EvalSamples:
    n, k = 1000, 100
    ev = stand_in_evaluator(128, "cpu")
    values = caption_values([{i % 11: i % 2, (i + 3) % 11: 1} for i in range(k)], len(N_ATTRIBUTES))
    ids = torch.arange(k).repeat_interleave(n // k)
    return EvalSamples(fake=images(n, 128), fake_caption_ids=ids, fake_class_ids=ids % 5, fake_values=values[ids],
                       fake_image_ids=ids, real=images(n, 128, seed=1), real_class_ids=torch.arange(n) % 5,
                       pool_values=values, pool_image_ids=torch.arange(k), evaluator=ev, real_split="test", seed=0)


@pytest.mark.benchmark(group="metrics")
@pytest.mark.parametrize("name", ["is", "fid", "kid", "r_precision", "attributes", "diversity", "pixelation"])
def test_metric(benchmark, samples, name):
    """One metric on 1000 generated and 1000 real 128 px images (evaluator outputs recomputed each call)."""
    metric = build("metric", name)

    def once():
        samples._memo.clear()
        return metric(samples)

    run_benchmark(benchmark, once, "cpu", rounds=3, warmup_rounds=1, items=len(samples.fake))
