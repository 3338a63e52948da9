"""GAN losses: official weighting, head-dependent terms, gradients, errors."""

import math

import pytest
import torch
import torch.nn.functional as F

import ganblocks
from ganblocks.types import DiscriminatorOutput as DO

LOSSES = ganblocks.names("loss")


def _bce(x, target):
    return F.binary_cross_entropy_with_logits(x, torch.full_like(x, target))


def test_bce_conditional_head_uses_official_weights():
    g = torch.Generator().manual_seed(0)
    r, w, f = (torch.randn(8, generator=g) for _ in range(3))
    loss, stats = ganblocks.build("loss", "bce").discriminator(DO(cond_logits=r), DO(cond_logits=w), DO(cond_logits=f))
    expected = _bce(r, 1) + 0.5 * (_bce(w, 0) + _bce(f, 0))
    assert torch.allclose(loss, expected)
    assert torch.allclose(stats["d_wrong"], torch.sigmoid(w).mean())


def test_bce_joint_head_uses_official_stage2_weights():
    g = torch.Generator().manual_seed(1)
    r, w, f, ur, uw, uf = (torch.randn(8, generator=g) for _ in range(6))
    loss, _ = ganblocks.build("loss", "bce").discriminator(
        DO(cond_logits=r, uncond_logits=ur), DO(cond_logits=w, uncond_logits=uw), DO(cond_logits=f, uncond_logits=uf)
    )
    expected = (_bce(r, 1) + _bce(ur, 1)) / 2 + (_bce(f, 0) + _bce(w, 0) + _bce(uf, 0)) / 3
    assert torch.allclose(loss, expected)


def test_unconditional_head_has_no_wrong_term():
    g = torch.Generator().manual_seed(2)
    r, f = torch.randn(8, generator=g), torch.randn(8, generator=g)
    loss_fn = ganblocks.build("loss", "bce")
    with_wrong, stats = loss_fn.discriminator(DO(uncond_logits=r), DO(uncond_logits=torch.randn(8)), DO(uncond_logits=f))
    without, _ = loss_fn.discriminator(DO(uncond_logits=r), None, DO(uncond_logits=f))
    assert torch.allclose(with_wrong, _bce(r, 1) + _bce(f, 0))
    assert torch.equal(with_wrong, without)
    assert "d_wrong" not in stats


@pytest.mark.parametrize("name", LOSSES)
def test_generator_loss_adds_weighted_regulariser_and_has_gradients(name):
    logits = torch.randn(6, requires_grad=True)
    kl = torch.tensor(0.7, requires_grad=True)
    loss_fn = ganblocks.build("loss", name, kl_weight=2.0)
    loss, stats = loss_fn.generator(DO(cond_logits=logits), kl)
    assert torch.allclose(loss, stats["loss_g_adv"] + 2.0 * 0.7)
    loss.backward()
    assert logits.grad.abs().sum() > 0 and math.isclose(kl.grad.item(), 2.0)


@pytest.mark.parametrize("name", LOSSES)
def test_losses_push_in_the_right_direction(name):
    """Raising real logits lowers the D loss; raising fake logits lowers the G loss."""
    loss_fn = ganblocks.build("loss", name)
    x = torch.zeros(4)
    lo, _ = loss_fn.discriminator(DO(cond_logits=x + 0.5), DO(cond_logits=x), DO(cond_logits=x))
    hi, _ = loss_fn.discriminator(DO(cond_logits=x - 0.5), DO(cond_logits=x), DO(cond_logits=x))
    assert lo < hi
    g_hi, _ = loss_fn.generator(DO(cond_logits=x - 0.5), torch.tensor(0.0))
    g_lo, _ = loss_fn.generator(DO(cond_logits=x + 0.5), torch.tensor(0.0))
    assert g_lo < g_hi


def test_minimax_is_the_saturating_form():
    x = torch.tensor([-3.0, 0.0, 2.0])
    loss, _ = ganblocks.build("loss", "minimax").generator(DO(cond_logits=x), torch.tensor(0.0))
    assert torch.allclose(loss, torch.log1p(-torch.sigmoid(x)).mean())


def test_bad_kl_weight_and_empty_output_are_named():
    with pytest.raises(ValueError, match="kl_weight must be >= 0"):
        ganblocks.build("loss", "bce", kl_weight=-1)
    with pytest.raises(ValueError, match="neither cond_logits nor uncond_logits"):
        ganblocks.build("loss", "hinge").generator(DO(), torch.tensor(0.0))
