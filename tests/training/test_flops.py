"""Model FLOPs counting, the GPU peak table and MFU arithmetic (CPU, seconds)."""

import pytest
import torch
from torch import nn

from ganblocks.training.flops import count_flops, mfu, peak_flops, peak_flops_for_name, train_step_flops
from ganblocks.training.build import build_stage


def test_conv_flops_match_the_analytic_count_forward_and_backward():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    forward = 2 * 2 * 8 * 16 * 16 * 3 * 3 * 3  # 2 x B x C_out x H x W x C_in x k x k
    assert count_flops(lambda: conv(x)) == forward
    # backward: the gradient of the input and of the weight, each as costly as the forward
    assert count_flops(lambda: conv(x).sum().backward()) == 3 * forward


def test_linear_flops_match_the_analytic_count():
    linear = nn.Linear(10, 20)
    x = torch.randn(4, 10)
    assert count_flops(lambda: linear(x)) == 2 * 4 * 10 * 20


@pytest.mark.parametrize("pipeline", ["stage1", "two_stage"])
def test_train_step_flops_exceed_the_forward_flops_and_do_not_depend_on_the_step(tiny_data, tiny_cfg, tmp_path, pipeline):
    cfg = tiny_cfg(f"pipeline={pipeline}")
    stage_cfg = cfg.pipeline.stages[-1].copy()
    stage_cfg.fixed = None  # a fresh Stage-I inside Stage-II: no trained one in tmp_path
    stage = build_stage(cfg, stage_cfg, len(cfg.pipeline.stages) - 1, tmp_path, torch.device("cpu"))
    batch = next(iter(stage.loader))
    with torch.no_grad():
        out = stage.G(batch.embeddings, torch.randn(len(batch), stage.G.noise_dim))
    condition = batch.embeddings if stage.D.condition_input == "text" else out.cond.mean
    forward = count_flops(lambda: stage.G(batch.embeddings, torch.randn(len(batch), stage.G.noise_dim))) \
        + count_flops(lambda: stage.D(batch.images, condition))
    before = [p.detach().clone() for p in stage.D.parameters()]
    step = train_step_flops(stage, batch)
    assert step > 2 * forward  # D on real and fake, G through D, and every backward
    assert any(not torch.equal(a, b) for a, b in zip(before, stage.D.parameters()))  # a real step ran
    assert train_step_flops(stage, batch) == step


def test_mfu_is_achieved_flops_over_peak():
    assert mfu(2e12, 0.5, 8e12) == pytest.approx(0.5)
    assert mfu(1e9, 1.0, 1e12) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="seconds_per_step=0"):
        mfu(1e9, 0.0, 1e12)
    with pytest.raises(ValueError, match="peak=-1"):
        mfu(1e9, 1.0, -1)


def test_peak_table_knows_common_gpus_and_never_guesses():
    assert peak_flops_for_name("NVIDIA H100 80GB HBM3", torch.bfloat16) == pytest.approx(989.4e12)
    assert peak_flops_for_name("NVIDIA H100 PCIe", "bf16") == pytest.approx(756.5e12)
    assert peak_flops_for_name("NVIDIA H200", "tf32") == pytest.approx(494.7e12)
    assert peak_flops_for_name("NVIDIA A100-SXM4-80GB", torch.float32) == pytest.approx(19.5e12)
    assert peak_flops_for_name("NVIDIA L40S", "bf16") == pytest.approx(362.05e12)
    assert peak_flops_for_name("NVIDIA L4", "bf16") == pytest.approx(121e12)
    assert peak_flops_for_name("NVIDIA L40", "bf16") is None  # not the L4, not in the table
    assert peak_flops_for_name("NVIDIA H100 80GB HBM3 MIG 1g.10gb", "bf16") is None
    assert peak_flops_for_name("Tesla V100-SXM2-16GB", "bf16") is None
    assert peak_flops("cpu", torch.float32) is None
    with pytest.raises(ValueError, match="precision='int8'"):
        peak_flops_for_name("NVIDIA H100 PCIe", "int8")
