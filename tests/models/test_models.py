"""Generators and discriminators at tiny widths: contracts, gradients, determinism, the frozen Stage-I."""

from __future__ import annotations

import copy

import pytest
import torch

import ganblocks  # noqa: F401
from ganblocks.models import build_discriminator, build_generator
from ganblocks.registry import names
from ganblocks.types import DiscriminatorOutput, GeneratorOutput

TINY = dict(text_dim=12, noise_dim=5, condition_dim=6, gf_dim=4)
SIZES = {"stage1": 64, "stage2": 128, "onestage": 128, "gan_int_cls": 64}


def tiny_generator(name: str, preset: str = "paper", **kw) -> torch.nn.Module:
    out = {} if name in ("stage1", "gan_int_cls") else {"out_size": SIZES[name]}
    return build_generator(name, preset, **(TINY | out | kw))


def tiny_discriminator(name: str, preset: str = "paper", **kw) -> torch.nn.Module:
    return build_discriminator(name, preset, **(dict(df_dim=4, text_dim=12, condition_dim=6,
                                                     image_size=SIZES[name]) | kw))


def test_every_registered_model_is_covered():
    assert set(names("generator")) >= set(SIZES) and set(names("discriminator")) >= set(SIZES)


@pytest.mark.parametrize("preset", ["paper", "official"])
@pytest.mark.parametrize("name", list(SIZES))
def test_generator_contract_and_gradients(name, preset):
    torch.manual_seed(0)
    g = tiny_generator(name, preset).train()
    text = torch.randn(3, 12, requires_grad=True)
    out = g(text, torch.randn(3, 5))
    assert isinstance(out, GeneratorOutput)
    assert out.image.shape == (3, 3, SIZES[name], SIZES[name])
    assert out.image.abs().max() <= 1
    assert (g.text_dim, g.noise_dim, g.condition_dim, g.out_size) == (12, 5, 6, SIZES[name])
    assert out.cond.code.shape == (3, 6)
    ((out.image * torch.randn_like(out.image)).sum() + out.cond.regulariser).backward()
    assert text.grad.abs().sum() > 0
    for pname, p in g.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: no gradient reached {pname}"


@pytest.mark.parametrize("name", list(SIZES))
def test_generator_is_deterministic_under_a_seed(name):
    images = []
    for _ in range(2):
        torch.manual_seed(3)
        g = tiny_generator(name)
        images.append(g(torch.randn(2, 12), torch.randn(2, 5)).image)
    torch.testing.assert_close(images[0], images[1], rtol=0, atol=0)


@pytest.mark.parametrize("preset", ["paper", "official"])
@pytest.mark.parametrize("name", list(SIZES))
def test_discriminator_contract_and_gradients(name, preset):
    torch.manual_seed(0)
    d = tiny_discriminator(name, preset)
    images = torch.randn(3, 3, SIZES[name], SIZES[name], requires_grad=True)
    condition = torch.randn(3, 12 if d.condition_input == "text" else 6, requires_grad=True)
    feats = d.encode(images)
    assert feats.shape == (3, d.feature_channels, 4, 4)
    out = d.head(feats, condition)
    assert isinstance(out, DiscriminatorOutput)
    logits = [t for t in (out.cond_logits, out.uncond_logits) if t is not None]
    assert logits and all(t.shape == (3,) for t in logits)
    sum(t.sum() for t in logits).backward()
    assert images.grad.abs().sum() > 0 and condition.grad.abs().sum() > 0
    for pname, p in d.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: no gradient reached {pname}"


def test_discriminator_forward_is_head_of_encode_and_deterministic():
    torch.manual_seed(0)
    d = tiny_discriminator("stage2", "official").eval()
    images, cond = torch.randn(2, 3, 128, 128), torch.randn(2, 6)
    a, b = d(images, cond), d.head(d.encode(images), cond)
    torch.testing.assert_close(a.cond_logits, b.cond_logits, rtol=0, atol=0)
    torch.testing.assert_close(a.uncond_logits, b.uncond_logits, rtol=0, atol=0)


def test_discriminator_condition_input_per_preset():
    assert tiny_discriminator("stage1", "official").condition_input == "cond_mean"
    paper = tiny_discriminator("stage1", "paper")
    assert paper.condition_input == "text" and paper.text_fc[0].in_features == 12


def test_discriminator_copies_score_with_their_own_layers():
    d = tiny_discriminator("stage2", "official")
    clone = copy.deepcopy(d)
    with torch.no_grad():
        clone.get_uncond_logits.outlogits[0].bias.fill_(3.0)
    feats = torch.zeros(2, clone.feature_channels, 4, 4)
    torch.testing.assert_close(clone.head(feats, torch.zeros(2, 6)).uncond_logits, torch.full((2,), 3.0))
    assert not torch.equal(d.get_uncond_logits.outlogits[0].bias, clone.get_uncond_logits.outlogits[0].bias)


def test_stage2_keeps_stage1_frozen_and_in_eval():
    torch.manual_seed(0)
    g = tiny_generator("stage2")
    g.train()
    assert g.training and not g.stage1.training
    assert all(not m.training for m in g.stage1.modules())
    assert all(not p.requires_grad for p in g.stage1.parameters())
    out = g(torch.randn(2, 12), torch.randn(2, 5))
    assert out.stage1_image.shape == (2, 3, 64, 64) and not out.stage1_image.requires_grad
    out.image.sum().backward()
    assert all(p.grad is None for p in g.stage1.parameters())


def test_stage2_passes_the_noise_to_stage1():
    torch.manual_seed(0)
    g = tiny_generator("stage2").eval()
    ganblocks.blocks.set_use_mean(g, True)
    text, noise = torch.randn(2, 12), torch.randn(2, 5)
    torch.testing.assert_close(g(text, noise).stage1_image, g.stage1(text, noise).image, rtol=0, atol=0)
    assert not torch.allclose(g(text, noise).stage1_image, g(text, torch.randn(2, 5)).stage1_image)


def test_stage2_load_stage1_from_module_state_dict_and_file(tmp_path):
    torch.manual_seed(0)
    trained = tiny_generator("stage1")
    g = tiny_generator("stage2")
    g.load_stage1(trained)
    torch.testing.assert_close(g.stage1.ca_net.fc.weight, trained.ca_net.fc.weight, rtol=0, atol=0)
    torch.save({"module." + k: v for k, v in tiny_generator("stage1").state_dict().items()}, tmp_path / "g1.pth")
    g.load_stage1(tmp_path / "g1.pth")
    assert not any(p.requires_grad for p in g.stage1.parameters()) and not g.stage1.training


def test_stage2_without_text_twice_has_no_conditioning_of_its_own():
    torch.manual_seed(0)
    g = tiny_generator("stage2", text_twice=False)
    assert not hasattr(g, "ca_net") and g.hr_joint[0].in_channels == g.hr_joint[0].out_channels
    out = g(torch.randn(2, 12), torch.randn(2, 5))
    assert out.cond.regulariser.item() == 0 and out.cond.mean.shape == (2, 6)


def test_blocks_are_chosen_by_name():
    g = tiny_generator("stage2", upsample="pixelshuffle", residual="glu")
    assert type(g.upsample1).__name__ == "PixelShuffleUp" and type(g.residual[0]).__name__ == "GLUResBlock"
    assert type(g.stage1.upsample1).__name__ == "PixelShuffleUp"
    assert type(tiny_generator("stage1", conditioning="mixture").ca_net).__name__ == "MixtureConditioning"


def test_onestage_reaches_256_with_more_upsampling():
    g = build_generator("onestage", "paper", text_dim=12, noise_dim=5, condition_dim=6, gf_dim=8)
    assert g.num_upsample == 6 and hasattr(g, "upsample6")
    assert g(torch.randn(2, 12), torch.randn(2, 5)).image.shape == (2, 3, 256, 256)


@pytest.mark.parametrize("build,kwargs,match", [
    (tiny_generator, dict(name="stage1", upsample="nearst"), "unknown upsample 'nearst'.*did you mean 'nearest'"),
    (tiny_generator, dict(name="stage2", out_size=96), "out_size=96; expected"),
    (tiny_generator, dict(name="onestage", out_size=512), "gf_dim=4 too small for out_size=512"),
    (tiny_generator, dict(name="stage2", num_residual=-1), "num_residual=-1"),
    (tiny_discriminator, dict(name="stage1", condition_input="mu"), "condition_input='mu'"),
    (tiny_discriminator, dict(name="stage1", d_head="joint_head"), "unknown d_head 'joint_head'"),
])
def test_bad_configuration_is_named(build, kwargs, match):
    name = kwargs.pop("name")
    with pytest.raises(Exception, match=match):
        build(name, **kwargs)


def test_bad_inputs_are_named():
    g, d = tiny_generator("stage1"), tiny_discriminator("stage1")
    with pytest.raises(ValueError, match=r"noise of shape \(2, 7\); expected \(B, 5\)"):
        g(torch.randn(2, 12), torch.randn(2, 7))
    with pytest.raises(ValueError, match=r"images of shape \(2, 3, 32, 32\); expected \(B, 3, 64, 64\)"):
        d.encode(torch.randn(2, 3, 32, 32))


def test_discriminator_moves_with_its_head_layers():
    d = tiny_discriminator("stage1", "official").to(torch.float64)
    out = d(torch.randn(2, 3, 64, 64, dtype=torch.float64), torch.randn(2, 6, dtype=torch.float64))
    assert out.cond_logits.dtype == torch.float64
