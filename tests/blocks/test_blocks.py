"""Every registered block: shapes at several sizes, gradients to inputs and every parameter, determinism."""

from __future__ import annotations

import pytest
import torch

import ganblocks  # noqa: F401  (registers every block)
from ganblocks.blocks.init import init_weights_
from ganblocks.registry import build, names

SIZES = [(8, 4, 4), (6, 12, 8), (16, 8, 2)]  # (C_in, C_out, H)


def _assert_all_grads(module: torch.nn.Module, *inputs: torch.Tensor) -> None:
    for x in inputs:
        assert x.grad is not None and x.grad.abs().sum() > 0, "no gradient reached the input"
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reached parameter {name}"


@pytest.mark.parametrize("name", names("upsample"))
@pytest.mark.parametrize("c_in,c_out,h", SIZES)
def test_upsample_shape_and_gradients(name, c_in, c_out, h):
    torch.manual_seed(0)
    block = build("upsample", name, in_channels=c_in, out_channels=c_out)
    x = torch.randn(3, c_in, h, h + 2, requires_grad=True)
    y = block(x)
    assert y.shape == (3, c_out, 2 * h, 2 * (h + 2))
    (y * torch.randn_like(y)).sum().backward()
    _assert_all_grads(block, x)


@pytest.mark.parametrize("name", names("residual"))
@pytest.mark.parametrize("channels,h", [(4, 4), (8, 16), (3, 5)])
def test_residual_shape_and_gradients(name, channels, h):
    torch.manual_seed(0)
    block = build("residual", name, channels=channels)
    x = torch.randn(2, channels, h, h, requires_grad=True)
    y = block(x)
    assert y.shape == x.shape
    (y * torch.randn_like(y)).sum().backward()
    _assert_all_grads(block, x)


@pytest.mark.parametrize("name", names("downsample"))
@pytest.mark.parametrize("batchnorm", [True, False])
@pytest.mark.parametrize("c_in,c_out,h", [(3, 8, 8), (8, 16, 16), (4, 4, 2)])
def test_downsample_shape_and_gradients(name, batchnorm, c_in, c_out, h):
    torch.manual_seed(0)
    block = build("downsample", name, in_channels=c_in, out_channels=c_out, batchnorm=batchnorm)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in block.modules()) == batchnorm
    x = torch.randn(2, c_in, h, h, requires_grad=True)
    y = block(x)
    assert y.shape == (2, c_out, h // 2, h // 2)
    (y * torch.randn_like(y)).sum().backward()
    _assert_all_grads(block, x)


def test_downsample_relu_activation_and_bad_activation():
    block = build("downsample", "conv", in_channels=3, out_channels=4, activation="relu")
    assert isinstance(block[-1], torch.nn.ReLU)
    with pytest.raises(ValueError, match="activation='gelu'.*expected one of"):
        build("downsample", "conv", in_channels=3, out_channels=4, activation="gelu")


@pytest.mark.parametrize("kind,kwargs,shape", [
    ("upsample", dict(in_channels=4, out_channels=2), (2, 4, 4, 4)),
    ("residual", dict(channels=4), (2, 4, 4, 4)),
    ("downsample", dict(in_channels=4, out_channels=2), (2, 4, 4, 4)),
])
def test_blocks_are_deterministic_under_a_seed(kind, kwargs, shape):
    for name in names(kind):
        outs = []
        for _ in range(2):
            torch.manual_seed(123)
            block = init_weights_(build(kind, name, **kwargs))
            outs.append(block(torch.randn(*shape)))
        torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


@pytest.mark.parametrize("kind,kwargs", [
    ("upsample", dict(in_channels=0, out_channels=2)),
    ("residual", dict(channels=-1)),
    ("downsample", dict(in_channels=3, out_channels=0)),
])
def test_bad_channel_counts_are_named(kind, kwargs):
    for name in names(kind):
        with pytest.raises(ValueError, match="expected a positive int"):
            build(kind, name, **kwargs)


def test_official_upblock_layout():
    block = build("upsample", "nearest", in_channels=8, out_channels=4)
    assert [k for k in block.state_dict()] == [
        "1.weight", "2.weight", "2.bias", "2.running_mean", "2.running_var", "2.num_batches_tracked"
    ]
    assert block[1].bias is None


def test_init_matches_official_statistics():
    torch.manual_seed(0)
    block = init_weights_(torch.nn.Sequential(torch.nn.Conv2d(64, 64, 3), torch.nn.BatchNorm2d(4096)))
    assert abs(block[0].weight.std().item() - 0.02) < 1e-3
    assert block[0].bias.abs().max() == 0
    assert abs(block[1].weight.mean().item() - 1.0) < 2e-3 and block[1].bias.abs().max() == 0
