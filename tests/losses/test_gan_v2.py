"""bce_v2: the StackGAN-v2 trainer's joint loss (code/trainer.py train_Dnet / train_Gnet), by known answers."""

import pytest
import torch
import torch.nn.functional as F

import ganblocks
from ganblocks.types import DiscriminatorOutput as DO


def _bce(x, target):
    return F.binary_cross_entropy_with_logits(x, torch.full_like(x, target))


def _logits(seed, n=6):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(8, generator=g) for _ in range(n)]


@pytest.mark.parametrize("u", [1.0, 0.5])
def test_joint_head_uses_the_v2_weights_and_labels_wrong_uncond_real(u):
    r, w, f, ur, uw, uf = _logits(0)
    loss_fn = ganblocks.build("loss", "bce_v2", uncond_weight=u)
    loss, stats = loss_fn.discriminator(DO(r, ur), DO(w, uw), DO(f, uf))
    expected = (_bce(r, 1) + u * _bce(ur, 1)) + (_bce(w, 0) + u * _bce(uw, 1)) + (_bce(f, 0) + u * _bce(uf, 0))
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(stats["d_wrong"], torch.sigmoid(w).mean())
    g_loss, _ = loss_fn.generator(DO(f, uf), torch.tensor(0.25))
    torch.testing.assert_close(g_loss, _bce(f, 1) + u * _bce(uf, 1) + 1.0 * 0.25)


def test_zero_uncond_weight_and_single_heads_fall_back_to_the_v1_weights():
    r, w, f, ur, uw, uf = _logits(1)
    v2, v1 = ganblocks.build("loss", "bce_v2", uncond_weight=0.0), ganblocks.build("loss", "bce")
    loss, _ = v2.discriminator(DO(r, ur), DO(w, uw), DO(f, uf))
    torch.testing.assert_close(loss, _bce(r, 1) + 0.5 * (_bce(w, 0) + _bce(f, 0)))
    for real, wrong, fake in [(DO(r), DO(w), DO(f)), (DO(None, ur), DO(None, uw), DO(None, uf))]:
        torch.testing.assert_close(ganblocks.build("loss", "bce_v2").discriminator(real, wrong, fake)[0],
                                   v1.discriminator(real, wrong, fake)[0])


def test_bad_uncond_weight_is_named():
    with pytest.raises(ValueError, match="loss 'bce_v2': uncond_weight must be >= 0"):
        ganblocks.build("loss", "bce_v2", uncond_weight=-0.1)
