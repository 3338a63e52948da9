"""AttnGAN generator, word attention and discriminators at tiny widths: shapes, gradients, attention
behaviour, and block swaps by registry name."""

from __future__ import annotations

import pytest
import torch

from ganblocks.blocks import set_use_mean
from ganblocks.blocks.attention import WordAttention
from ganblocks.registry import build

TINY = dict(text_dim=8, noise_dim=5, condition_dim=6, gf_dim=2)


def _inputs(b=2, t=5):
    gen = torch.Generator().manual_seed(0)
    mask = torch.arange(t)[None] >= torch.tensor([t, 2])[:b, None]
    return torch.randn(b, 8, generator=gen), torch.randn(b, 5, generator=gen), torch.randn(b, 8, t, generator=gen), mask


def test_generator_tree_shapes_maps_and_gradients():
    torch.manual_seed(0)
    g = build("generator", "attngan", **TINY)
    sent, noise, words, mask = _inputs()
    out = g(sent, noise, words, mask)
    assert [tuple(i.shape) for i in out.images] == [(2, 3, 64, 64), (2, 3, 128, 128), (2, 3, 256, 256)]
    assert out.image is out.images[-1] and g.out_size == 256
    assert [tuple(a.shape) for a in out.attention] == [(2, 5, 64, 64), (2, 5, 128, 128)]
    for a in out.attention:  # a distribution over the words at every region; padded words get none
        torch.testing.assert_close(a.sum(1), torch.ones(2, a.shape[2], a.shape[3]))
        assert a[1, 2:].abs().max() == 0 and a[1, :2].min() > 0
    assert out.cond.code.shape == (2, 6) and out.cond.regulariser.dim() == 0
    (sum(i.mean() for i in out.images) + out.cond.regulariser).backward()
    dead = [n for n, p in g.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not dead, dead


def test_words_drive_the_later_branches_only():
    torch.manual_seed(0)
    g = build("generator", "attngan", **TINY).eval()
    set_use_mean(g, True)
    sent, noise, words, mask = _inputs()
    with torch.no_grad():
        a = g(sent, noise, words, mask)
        b = g(sent, noise, words + torch.randn_like(words), mask)
        padded = words.clone()
        padded[1, :, 2:] = 50.0  # only padded positions of caption 1 change
        c = g(sent, noise, padded, mask)
    assert torch.equal(a.images[0], b.images[0])  # the 64x64 branch sees no words
    assert (a.images[1] - b.images[1]).abs().max() > 1e-4 and (a.images[2] - b.images[2]).abs().max() > 1e-4
    torch.testing.assert_close(a.images[2], c.images[2])


def test_branch_count_and_swappable_blocks():
    sent, noise, words, mask = _inputs()
    g1 = build("generator", "attngan", **TINY, num_branches=1)
    out = g1(sent, noise, words, mask)
    assert out.image.shape == (2, 3, 64, 64) and out.attention == () and not hasattr(g1, "h_net2")
    for cond in ("gaussian", "none", "mixture"):
        g = build("generator", "attngan", **TINY, num_branches=2, conditioning=cond)
        assert g(sent, noise, words, mask).image.shape == (2, 3, 128, 128), cond
    g = build("generator", "attngan", **TINY, num_branches=2, upsample="nearest", residual="relu",
              conditioning_kwargs={"activation": "glu", "kl_reduction": "mean"})
    assert g(sent, noise, words, mask).image.shape == (2, 3, 128, 128)
    assert g.ca_net.fc.out_features == 24  # official CA_NET: FC to 4 N_g, halved by the GLU
    with pytest.raises(ValueError, match="num_branches=4"):
        build("generator", "attngan", **TINY, num_branches=4)
    with pytest.raises(ValueError, match=r"words of shape \(2, 7, 5\); expected \(2, 8, T\)"):
        build("generator", "attngan", **TINY)(sent, noise, words[:, :7], mask)
    with pytest.raises(Exception, match="unknown conditioning 'gauss'"):
        build("generator", "attngan", **TINY, conditioning="gauss")


def test_word_attention_equals_its_equation():
    torch.manual_seed(0)
    att = WordAttention(channels=3, word_dim=4)
    h, words = torch.randn(2, 3, 2, 2), torch.randn(2, 4, 5)
    mask = torch.tensor([[False] * 5, [False, False, True, True, True]])
    context, beta = att(h, words, mask)
    u = att.conv_context.weight[:, :, 0, 0]  # (C, D)
    for b in range(2):
        n_words = int((~mask[b]).sum())
        e = u @ words[b, :, :n_words]  # (C, T)
        for y in range(2):
            for x in range(2):
                weights = torch.softmax(h[b, :, y, x] @ e, dim=0)
                torch.testing.assert_close(beta[b, :n_words, y, x], weights)
                torch.testing.assert_close(context[b, :, y, x], e @ weights)


@pytest.mark.parametrize("size", [64, 128, 256])
def test_discriminators_per_scale(size):
    torch.manual_seed(0)
    d = build("discriminator", "attngan", image_size=size, df_dim=2, text_dim=8)
    images, sent = torch.randn(3, 3, size, size, requires_grad=True), torch.randn(3, 8)
    assert d.encode(images).shape == (3, 16, 4, 4) and d.condition_input == "text"
    out = d(images, sent)
    assert out.cond_logits.shape == (3,) and out.uncond_logits.shape == (3,)
    (out.cond_logits.sum() + out.uncond_logits.sum()).backward()
    assert images.grad.abs().sum() > 0
    dead = [n for n, p in d.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not dead, dead
    # The conditional logit depends on the sentence; the unconditional one does not.
    with torch.no_grad():
        d.eval()
        a, b = d(images, sent), d(images, sent + 1)
    assert not torch.allclose(a.cond_logits, b.cond_logits) and torch.equal(a.uncond_logits, b.uncond_logits)


def test_discriminator_head_swaps():
    d = build("discriminator", "attngan", image_size=64, df_dim=2, text_dim=8, d_head_kwargs={"unconditional": False})
    out = d(torch.randn(2, 3, 64, 64), torch.randn(2, 8))
    assert out.uncond_logits is None and out.cond_logits.shape == (2,)
    assert not any(k.startswith("UNCOND_DNET") for k in d.state_dict())
    j = build("discriminator", "attngan", image_size=64, df_dim=2, text_dim=8, d_head="joint")
    out = j(torch.randn(2, 3, 64, 64), torch.randn(2, 8))
    assert out.cond_logits.shape == (2,) and out.uncond_logits.shape == (2,)
    assert any(k.startswith("get_cond_logits") for k in j.state_dict())
    with pytest.raises(ValueError, match=r"image_size=96"):
        build("discriminator", "attngan", image_size=96)
    with pytest.raises(ValueError, match=r"condition of shape \(2, 7\); expected \(B, 8\)"):
        build("discriminator", "attngan", df_dim=2, text_dim=8)(torch.randn(2, 3, 64, 64), torch.randn(2, 7))
