"""Discriminator heads: which logits each fills, shapes, gradients, bad inputs."""

from __future__ import annotations

import pytest
import torch

import ganblocks  # noqa: F401
from ganblocks.registry import build, names
from ganblocks.types import DiscriminatorOutput

EXPECTED = {"vanilla": (None, (3,)), "matching_aware": ((3,), None), "joint": ((3,), (3,)), "attngan": ((3,), (3,)),
            "projection": ((3,), None)}


@pytest.mark.parametrize("name", names("d_head"))
@pytest.mark.parametrize("channels,cond_dim,kernel,spatial", [(8, 4, 3, 4), (16, 6, 1, 4), (4, 2, 3, 2)])
def test_head_fields_shapes_and_gradients(name, channels, cond_dim, kernel, spatial):
    torch.manual_seed(0)
    head = build("d_head", name, feature_channels=channels, condition_dim=cond_dim, kernel_size=kernel,
                 spatial_size=spatial)
    feats = torch.randn(3, channels, spatial, spatial, requires_grad=True)
    cond = torch.randn(3, cond_dim, requires_grad=True)
    out = head(feats, cond)
    assert isinstance(out, DiscriminatorOutput)
    shapes = tuple(None if t is None else tuple(t.shape) for t in (out.cond_logits, out.uncond_logits))
    assert shapes == EXPECTED[name]
    total = sum(t.sum() for t in (out.cond_logits, out.uncond_logits) if t is not None)
    total.backward()
    assert feats.grad.abs().sum() > 0
    assert (cond.grad is not None) == (out.cond_logits is not None)
    for pname, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: no gradient reached {pname}"


def test_logits_are_raw_not_sigmoid():
    torch.manual_seed(0)
    head = build("d_head", "joint", feature_channels=4, condition_dim=2)
    with torch.no_grad():
        head.get_uncond_logits.outlogits[0].bias.fill_(5.0)
    out = head(torch.randn(2, 4, 4, 4), torch.randn(2, 2))
    assert out.uncond_logits.min() > 1


def test_official_names():
    head = build("d_head", "joint", feature_channels=512, condition_dim=128)
    keys = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert keys["get_cond_logits.outlogits.0.weight"] == (512, 640, 3, 3)
    assert keys["get_cond_logits.outlogits.3.weight"] == (1, 512, 4, 4)
    assert keys["get_uncond_logits.outlogits.0.weight"] == (1, 512, 4, 4)


def test_bad_feature_shape_and_condition_are_named():
    head = build("d_head", "matching_aware", feature_channels=8, condition_dim=4)
    with pytest.raises(ValueError, match=r"features of shape \(2, 8, 8, 8\); expected \(B, 8, 4, 4\)"):
        head(torch.randn(2, 8, 8, 8), torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"condition of shape \(2, 5\); expected \(B, 4\)"):
        head(torch.randn(2, 8, 4, 4), torch.randn(2, 5))
    with pytest.raises(ValueError, match="kernel_size=5"):
        build("d_head", "joint", feature_channels=8, condition_dim=4, kernel_size=5)


def test_projection_is_psi_of_pooled_features_plus_inner_product_with_projected_condition():
    """Known answer: logit = w . sum_xy(h) + b + <V c, sum_xy(h)> (Miyato & Koyama 2018, Eq. 3)."""
    head = build("d_head", "projection", feature_channels=2, condition_dim=3)
    with torch.no_grad():
        head.get_cond_logits.outlogits[0].weight.copy_(torch.tensor([[1.0, -2.0]]))
        head.get_cond_logits.outlogits[0].bias.fill_(0.5)
        head.get_cond_logits.embed.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 3.0]]))
    feats = torch.zeros(2, 2, 4, 4)
    feats[0, 0, 0, 0], feats[0, 0, 1, 1], feats[0, 1, 2, 2] = 1.0, 2.0, 1.0  # pooled h = (3, 1)
    feats[1, 1] = 0.25  # pooled h = (0, 4)
    cond = torch.tensor([[2.0, 9.0, 1.0], [0.0, 0.0, -1.0]])  # V c = (2, 3), (0, -3)
    out = head(feats, cond)
    # image 0: 3 - 2 + 0.5 + (2*3 + 3*1) = 10.5; image 1: -8 + 0.5 + (-3*4) = -19.5
    assert out.cond_logits.tolist() == [10.5, -19.5]
    assert out.uncond_logits is None
    with pytest.raises(ValueError, match=r"'projection': condition of shape \(2, 5\); expected \(B, 3\)"):
        head(feats, torch.randn(2, 5))
