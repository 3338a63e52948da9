"""The captured step on a GPU (skipped without one): it trains as the eager step does, it is really a graph,
it makes no host sync, and a learning-rate change is captured anew. Run by scripts/gpu-speed."""

import itertools

import pytest
import torch

from ganblocks.training.build import build_stage, configure_backends
from ganblocks.training.step import train_step
from tests.training.test_cuda import SIZES, exact_float32  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs CUDA, and GANBLOCKS_TEST_CUDA=1 (the suite hides GPUs otherwise)")


def _run(cfg, tmp_path, steps):
    device = torch.device("cuda")
    configure_backends(device, cfg.train.cpu_threads)
    torch.backends.cudnn.benchmark = False  # the same convolution algorithms in both runs
    s = build_stage(cfg, cfg.pipeline.stages[0], 0, tmp_path, device)
    batches = list(itertools.islice(iter(s.loader), 2))
    for k in range(steps):
        train_step(s, batches[k % 2])
    torch.cuda.synchronize()
    return s


def test_graphed_fp32_step_follows_the_eager_step(tiny_data, tiny_cfg, tmp_path, exact_float32):  # noqa: F811
    base = ["pipeline=stage1", "device=cuda", "train.amp=fp32", "train.channels_last=false", "train.ema_decay=0.9", *SIZES]
    eager = _run(tiny_cfg(*base, "train.cuda_graph=false"), tmp_path / "eager", 6)
    graphed = _run(tiny_cfg(*base, "train.cuda_graph=true"), tmp_path / "graphed", 6)
    assert graphed.graph is not None and graphed.graph.graph is not None  # a CUDA graph was replayed
    assert eager.graph is None
    for name in ("G", "D", "ema"):
        a, b = getattr(eager, name).state_dict(), getattr(graphed, name).state_dict()
        for key in a:
            if a[key].is_floating_point():
                err = float((a[key] - b[key]).norm() / a[key].norm().clamp_min(1e-12))
                assert err < 1e-4, f"{name}.{key}: relative difference {err:.2e}"
            else:
                assert torch.equal(a[key], b[key]), f"{name}.{key}"
    for key in eager.sums:
        assert torch.allclose(eager.sums[key], graphed.sums[key], rtol=1e-4, atol=1e-5), key


def test_graphed_step_makes_no_host_sync_and_recaptures_on_a_new_learning_rate(tiny_data, tiny_cfg, tmp_path):
    cfg = tiny_cfg("pipeline=stage1", "device=cuda", "train.cuda_graph=true", *SIZES)
    s = _run(cfg, tmp_path, 2)
    first = s.graph.graph
    batch = next(iter(s.loader))
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            train_step(s, batch)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert s.graph.graph is first
    for opt in (s.opt_g, s.opt_d):
        for group in opt.param_groups:
            group["lr"] = group["lr"] * 0.5
    train_step(s, batch)
    assert s.graph.graph is not first and s.graph.lrs[0] == pytest.approx(float(cfg.train.lr) * 0.5)
    assert not bool(s.nonfinite)
