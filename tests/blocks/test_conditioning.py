"""Conditioning blocks: code/mean shapes, the use_mean switch, regulariser values, mixture statistics."""

from __future__ import annotations

import pytest
import torch

import ganblocks  # noqa: F401
from ganblocks.blocks.conditioning import gaussian_kl, set_use_mean
from ganblocks.registry import build, names
from ganblocks.types import ConditioningOutput


@pytest.mark.parametrize("name", names("conditioning"))
@pytest.mark.parametrize("text_dim,cond_dim", [(16, 4), (7, 9)])
def test_output_record_shapes_and_gradients(name, text_dim, cond_dim):
    torch.manual_seed(0)
    block = build("conditioning", name, text_dim=text_dim, condition_dim=cond_dim)
    text = torch.randn(5, text_dim, requires_grad=True)
    out = block(text)
    assert isinstance(out, ConditioningOutput)
    assert out.code.shape == out.mean.shape == (5, cond_dim)
    assert out.regulariser.shape == ()
    (out.code.sum() + out.regulariser).backward()
    assert text.grad is not None and text.grad.abs().sum() > 0
    for pname, p in block.named_parameters():
        assert p.grad is not None, f"{name}: no gradient reached {pname}"


@pytest.mark.parametrize("name", names("conditioning"))
def test_use_mean_makes_code_the_mean_and_deterministic(name):
    torch.manual_seed(0)
    block = build("conditioning", name, text_dim=8, condition_dim=4)
    text = torch.randn(3, 8)
    assert set_use_mean(block, True) == 1 and block.use_mean
    a, b = block(text), block(text)
    torch.testing.assert_close(a.code, a.mean)
    torch.testing.assert_close(a.code, b.code, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["gaussian", "mixture"])
def test_sampling_is_random_but_seeded(name):
    torch.manual_seed(0)
    block = build("conditioning", name, text_dim=8, condition_dim=4)
    text = torch.randn(3, 8)
    torch.manual_seed(5)
    a = block(text).code
    b = block(text).code
    torch.manual_seed(5)
    c = block(text).code
    assert not torch.allclose(a, b)
    torch.testing.assert_close(a, c, rtol=0, atol=0)


def test_kl_is_zero_for_standard_normal_and_positive_otherwise():
    zeros = torch.zeros(4, 6)
    assert gaussian_kl(zeros, zeros, "mean").item() == 0
    assert gaussian_kl(zeros, zeros, "sum").item() == 0
    mu, logvar = torch.full((4, 6), 0.5), torch.full((4, 6), -0.3)
    per_dim = -0.5 * (1 - 0.3 - 0.25 - torch.exp(torch.tensor(-0.3)))
    torch.testing.assert_close(gaussian_kl(mu, logvar, "mean"), per_dim)
    torch.testing.assert_close(gaussian_kl(mu, logvar, "sum"), 6 * per_dim)
    with pytest.raises(ValueError, match="'max'.*expected one of"):
        gaussian_kl(mu, logvar, "max")


def test_gaussian_kl_zero_when_fc_outputs_zero():
    block = build("conditioning", "gaussian", text_dim=8, condition_dim=4, activation="relu", kl_reduction="mean")
    torch.nn.init.zeros_(block.fc.weight)
    torch.nn.init.zeros_(block.fc.bias)
    assert block(torch.randn(2, 8)).regulariser.item() == 0


def test_gaussian_official_relu_quirk_makes_mu_and_logvar_nonnegative():
    torch.manual_seed(0)
    block = build("conditioning", "gaussian", text_dim=8, condition_dim=4, activation="relu")
    mu, logvar = block.encode(torch.randn(64, 8))
    assert mu.min() >= 0 and logvar.min() >= 0
    plain = build("conditioning", "gaussian", text_dim=8, condition_dim=4)
    assert plain.encode(torch.randn(64, 8))[0].min() < 0


def test_none_has_zero_regulariser():
    block = build("conditioning", "none", text_dim=8, condition_dim=4)
    out = block(torch.randn(2, 8))
    assert out.regulariser.item() == 0
    torch.testing.assert_close(out.code, out.mean)


def test_mixture_separation_stat_tracks_component_means():
    torch.manual_seed(0)
    block = build("conditioning", "mixture", text_dim=8, condition_dim=4, num_components=3)
    text = torch.randn(6, 8)
    assert block(text).stats["component_separation"] > 0
    with torch.no_grad():  # collapse: every component identical
        for fc in block.fcs[1:]:
            fc.load_state_dict(block.fcs[0].state_dict())
    out = block(text)
    assert out.stats["component_separation"].item() == pytest.approx(0.0, abs=1e-6)
    assert set(out.stats) == {"component_separation", "component_separation_rel"}


def test_mixture_regulariser_is_the_sum_of_component_kls():
    torch.manual_seed(0)
    block = build("conditioning", "mixture", text_dim=8, condition_dim=4, num_components=2, kl_reduction="mean")
    text = torch.randn(3, 8)
    expected = 0
    for fc in block.fcs:
        x = fc(text)
        expected = expected + gaussian_kl(x[:, :4], x[:, 4:], "mean")
    torch.testing.assert_close(block(text).regulariser, expected)


def test_mixture_learned_selection_trains_the_selector():
    torch.manual_seed(0)
    block = build("conditioning", "mixture", text_dim=8, condition_dim=4, selection="learned")
    out = block(torch.randn(4, 8))
    out.code.pow(2).sum().backward()
    assert block.selector.weight.grad is not None and block.selector.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("kwargs,match", [
    (dict(selection="argmax"), "selection='argmax'"),
    (dict(num_components=0), "num_components=0"),
    (dict(activation="tanh"), "activation='tanh'"),
])
def test_mixture_bad_options_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build("conditioning", "mixture", text_dim=8, condition_dim=4, **kwargs)
