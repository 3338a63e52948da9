"""The StackGAN++ family at tiny widths: every stage, the tree generator for 1-3 branches with every up-sampling,
residual and conditioning variant, the per-scale discriminators with every d_head, the colour-consistency
regulariser (known answers), the v2 presets and `python -m ganblocks list`."""

from __future__ import annotations

import pytest
import torch

import ganblocks  # noqa: F401  (registers every component)
from ganblocks.__main__ import list_components
from ganblocks.losses.color import mean_covariance
from ganblocks.models import build_generator, build_tree_discriminators, generator_kwargs, regulariser_kwargs
from ganblocks.registry import UnknownComponentError, build, names

TEXT, NOISE, COND = 12, 5, 6
TINY = dict(text_dim=TEXT, noise_dim=NOISE, condition_dim=COND, gf_dim=8, base_size=16, num_residual=1)


def _grads_everywhere(module: torch.nn.Module) -> None:
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reached parameter {name}"


# ---- stages -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("upsample", names("upsample"))
@pytest.mark.parametrize("num_upsample", [1, 2, 4])
def test_init_stage_shape_and_gradients(upsample, num_upsample):
    torch.manual_seed(0)
    stage = build("stage", "glu_init", noise_dim=NOISE, condition_dim=COND, channels=32, num_upsample=num_upsample,
                  upsample=upsample)
    noise, code = torch.randn(3, NOISE, requires_grad=True), torch.randn(3, COND, requires_grad=True)
    h = stage(noise, code)
    side = 4 * 2**num_upsample
    assert h.shape == (3, 32 >> num_upsample, side, side) and stage.out_channels == 32 >> num_upsample
    (h * torch.randn_like(h)).sum().backward()
    assert noise.grad.abs().sum() > 0 and code.grad.abs().sum() > 0
    _grads_everywhere(stage)


@pytest.mark.parametrize("upsample", names("upsample"))
@pytest.mark.parametrize("residual", names("residual"))
@pytest.mark.parametrize("num_residual", [0, 2])
def test_next_stage_shape_and_gradients(upsample, residual, num_residual):
    torch.manual_seed(0)
    stage = build("stage", "glu_next", channels=8, condition_dim=COND, num_residual=num_residual, residual=residual,
                  upsample=upsample)
    h, code = torch.randn(2, 8, 6, 6, requires_grad=True), torch.randn(2, COND, requires_grad=True)
    y = stage(h, code)
    assert y.shape == (2, 4, 12, 12) and stage.out_channels == 4 and len(stage.residual) == num_residual
    (y * torch.randn_like(y)).sum().backward()
    assert h.grad.abs().sum() > 0 and code.grad.abs().sum() > 0
    _grads_everywhere(stage)


def test_image_head_is_bounded_and_ignores_the_code():
    torch.manual_seed(0)
    head = build("stage", "image", channels=4)
    h = 50 * torch.randn(2, 4, 8, 8, requires_grad=True)
    y = head(h, torch.randn(2, COND))
    assert y.shape == (2, 3, 8, 8) and y.abs().max() <= 1 and y.abs().max() > 0.99
    torch.testing.assert_close(y, head(h, None), rtol=0, atol=0)
    y.sum().backward()
    _grads_everywhere(head)


def test_stage_inputs_are_checked():
    stage = build("stage", "glu_next", channels=8, condition_dim=COND)
    with pytest.raises(ValueError, match=r"stage 'glu_next': features of shape \(2, 6, 4, 4\); expected \(B, 8, H, W\)"):
        stage(torch.randn(2, 6, 4, 4), torch.randn(2, COND))
    with pytest.raises(ValueError, match=r"stage 'glu_next': code of shape \(2, 5\); expected \(2, 6\)"):
        stage(torch.randn(2, 8, 4, 4), torch.randn(2, 5))
    with pytest.raises(ValueError, match="stage 'glu_init': channels=4 too few for num_upsample=3"):
        build("stage", "glu_init", noise_dim=NOISE, condition_dim=COND, channels=4, num_upsample=3)


# ---- the tree generator -------------------------------------------------------------------------------------
@pytest.mark.parametrize("branches", [1, 2, 3])
@pytest.mark.parametrize("upsample", names("upsample"))
def test_tree_generator_every_branch_count_and_upsampling(branches, upsample):
    torch.manual_seed(0)
    g = build("generator", "stackgan_v2", branches=branches, upsample=upsample, **TINY)
    text = torch.randn(4, TEXT, requires_grad=True)
    out = g(text, torch.randn(4, NOISE))
    assert [tuple(i.shape) for i in out.images] == [(4, 3, 16 * 2**k, 16 * 2**k) for k in range(branches)]
    assert out.image is out.images[-1] and g.out_size == 16 * 2 ** (branches - 1)
    assert g.sizes == tuple(16 * 2**k for k in range(branches))
    loss = sum((i * torch.randn_like(i)).sum() for i in out.images) + out.cond.regulariser
    loss.backward()
    assert text.grad.abs().sum() > 0
    _grads_everywhere(g)


@pytest.mark.parametrize("conditioning", names("conditioning"))
@pytest.mark.parametrize("activation", ["glu", "relu", "none"])
def test_tree_generator_every_conditioning(conditioning, activation):
    torch.manual_seed(0)
    kwargs = {"activation": activation}
    if conditioning == "none" and activation == "none":
        kwargs = {}
    g = build("generator", "stackgan_v2", branches=2, conditioning=conditioning, conditioning_kwargs=kwargs, **TINY)
    out = g(torch.randn(4, TEXT), torch.randn(4, NOISE))
    assert out.cond.code.shape == (4, COND) and len(out.images) == 2
    (sum(i.square().mean() for i in out.images) + out.cond.regulariser).backward()
    _grads_everywhere(g)


def test_the_trunk_is_shared_and_lower_branches_do_not_see_higher_ones():
    torch.manual_seed(0)
    g = build("generator", "stackgan_v2", branches=3, **TINY)
    out = g(torch.randn(4, TEXT), torch.randn(4, NOISE))
    out.images[-1].square().mean().backward(retain_graph=True)  # the 64 px loss trains the whole trunk
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.h_net1.parameters())
    assert all(p.grad is None for p in g.img_net1.parameters()) and all(p.grad is None for p in g.img_net2.parameters())
    g.zero_grad(set_to_none=True)
    out.images[0].square().mean().backward()
    assert all(p.grad is None for p in g.h_net2.parameters()) and all(p.grad is None for p in g.h_net3.parameters())


def test_use_mean_makes_the_tree_deterministic():
    torch.manual_seed(0)
    g = build("generator", "stackgan_v2", branches=2, **TINY).eval()
    text, noise = torch.randn(2, TEXT), torch.randn(2, NOISE)
    with torch.no_grad():
        assert not torch.equal(g(text, noise).image, g(text, noise).image)
        ganblocks.blocks.set_use_mean(g, True)
        torch.testing.assert_close(g(text, noise).image, g(text, noise).image, rtol=0, atol=0)


def test_tree_generator_arguments_are_checked():
    with pytest.raises(ValueError, match="branches=4; expected 1, 2 or 3"):
        build("generator", "stackgan_v2", **TINY, branches=4)
    with pytest.raises(ValueError, match="gf_dim=2 too small for branches=3"):
        build("generator", "stackgan_v2", **(TINY | {"gf_dim": 2}), branches=3)
    with pytest.raises(ValueError, match="base_size=48; expected 4 times a power of two"):
        build("generator", "stackgan_v2", **(TINY | {"base_size": 48}))
    with pytest.raises(UnknownComponentError, match=r"unknown stage 'glu_nxt' \(from StackGANv2Generator.next_stage\)"):
        build("generator", "stackgan_v2", **TINY, next_stage="glu_nxt")
    with pytest.raises(UnknownComponentError, match="unknown upsample 'glu2'"):
        build("generator", "stackgan_v2", **TINY, upsample="glu2")


def test_glu_conditioning_is_the_official_ca_net():
    """FC to 4 N_g, GLU (first half * sigmoid(second half)), mu = first N_g, logvar = the rest."""
    torch.manual_seed(0)
    ca = build("conditioning", "gaussian", text_dim=TEXT, condition_dim=COND, activation="glu", kl_reduction="mean")
    assert ca.fc.weight.shape == (4 * COND, TEXT)
    text = torch.randn(3, TEXT)
    x = ca.fc(text)
    glu = x[:, : 2 * COND] * torch.sigmoid(x[:, 2 * COND:])
    ca.use_mean = True
    out = ca(text)
    torch.testing.assert_close(out.mean, glu[:, :COND])
    logvar = glu[:, COND:]
    torch.testing.assert_close(out.regulariser, (-0.5 * (1 + logvar - glu[:, :COND] ** 2 - logvar.exp())).mean())


# ---- per-scale discriminators -------------------------------------------------------------------------------
@pytest.mark.parametrize("d_head", names("d_head"))
@pytest.mark.parametrize("branches", [1, 2, 3])
def test_tree_discriminators_every_scale_and_head(d_head, branches):
    torch.manual_seed(0)
    ds = build_tree_discriminators(branches, "official_v2", df_dim=4, condition_dim=COND, image_size=16, d_head=d_head)
    assert [d.image_size for d in ds] == [16 * 2**k for k in range(branches)]
    for d in ds:
        images = torch.randn(3, 3, d.image_size, d.image_size, requires_grad=True)
        out = d(images, torch.randn(3, COND))
        filled = [l for l in (out.cond_logits, out.uncond_logits) if l is not None]
        assert (out.cond_logits is not None) == (d_head != "vanilla")
        assert (out.uncond_logits is not None) == (d_head in ("vanilla", "joint", "attngan"))
        assert all(l.shape == (3,) for l in filled)
        sum(l.sum() for l in filled).backward()
        assert images.grad.abs().sum() > 0
        _grads_everywhere(d)


def test_the_joint_head_gives_both_logits_by_default():
    d = build("discriminator", "stackgan_v2", df_dim=4, condition_dim=COND)
    assert d.condition_input == "cond_mean" and d.image_size == 64
    out = d(torch.randn(2, 3, 64, 64), torch.randn(2, COND))
    assert out.cond_logits.shape == (2,) and out.uncond_logits.shape == (2,)


# ---- colour consistency -------------------------------------------------------------------------------------
def test_mean_covariance_is_the_population_statistics_of_the_pixels():
    torch.manual_seed(0)
    images = torch.randn(2, 3, 5, 7)
    mu, cov = mean_covariance(images)
    for b in range(2):
        pixels = images[b].flatten(1)
        torch.testing.assert_close(mu[b], pixels.mean(1))
        torch.testing.assert_close(cov[b], torch.cov(pixels, correction=0))


def test_color_consistency_known_answer_and_official_weights():
    """Flat colours: the mean term only. Lower scale a, higher scale b per channel -> MSE = mean((b - a)^2)."""
    low = torch.tensor([0.1, -0.2, 0.3])[None, :, None, None].expand(2, 3, 4, 4)
    high = torch.tensor([0.4, 0.2, 0.3])[None, :, None, None].expand(2, 3, 8, 8).clone().requires_grad_(True)
    reg = build("regulariser", "color_consistency")
    loss, stats = reg([low, high])
    expected_mean = 50.0 * 1.0 * ((0.3**2 + 0.4**2 + 0.0) / 3)
    torch.testing.assert_close(loss, torch.tensor(expected_mean))
    torch.testing.assert_close(stats["color_cov"], torch.tensor(0.0))
    # A covariance term: the higher image gets per-pixel variance v in channel 0 -> Sigma[0, 0] = v, MSE = v^2 / 9.
    torch.manual_seed(0)
    noise = torch.zeros(2, 3, 8, 8)
    noise[:, 0] = torch.tensor([1.0, -1.0]).repeat(32).view(8, 8)  # mean 0, variance 1
    _, stats = reg([low, high.detach() + 0.5 * noise])
    torch.testing.assert_close(stats["color_cov"], torch.tensor(50.0 * 5.0 * 0.25**2 / 9))
    torch.testing.assert_close(stats["color_mean"], torch.tensor(expected_mean))


def test_color_consistency_pulls_the_higher_scale_only_and_sums_adjacent_pairs():
    torch.manual_seed(0)
    imgs = [torch.randn(2, 3, s, s, requires_grad=True) for s in (4, 8, 16)]
    reg = build("regulariser", "color_consistency", weight=1.0)
    loss, _ = reg(imgs)
    pair = lambda a, b: reg([a, b])[0]  # noqa: E731
    torch.testing.assert_close(loss, pair(imgs[0], imgs[1]) + pair(imgs[1], imgs[2]))
    loss.backward()
    assert imgs[0].grad is None  # the lowest scale is only ever a target
    assert imgs[1].grad.abs().sum() > 0 and imgs[2].grad.abs().sum() > 0
    single, _ = reg(imgs[:1])
    assert single.item() == 0.0


def test_color_consistency_arguments_are_checked():
    with pytest.raises(ValueError, match="regulariser 'color_consistency': weight=-1; expected a number >= 0"):
        build("regulariser", "color_consistency", weight=-1)
    with pytest.raises(ValueError, match="expected the same batch and channels at every scale"):
        build("regulariser", "color_consistency")([torch.zeros(2, 3, 4, 4), torch.zeros(3, 3, 8, 8)])


# ---- presets and listing ------------------------------------------------------------------------------------
def test_v2_presets_hold_the_stackgan_v2_values():
    kw = generator_kwargs("stackgan_v2", "official_v2")
    assert {k: kw[k] for k in ("gf_dim", "branches", "num_residual", "condition_dim", "noise_dim", "text_dim")} == {
        "gf_dim": 64, "branches": 3, "num_residual": 2, "condition_dim": 128, "noise_dim": 100, "text_dim": 1024}
    assert kw["conditioning_kwargs"] == {"activation": "glu", "kl_reduction": "mean"}
    assert generator_kwargs("stackgan_v2", "paper_v2")["conditioning_kwargs"]["kl_reduction"] == "sum"
    assert regulariser_kwargs("color_consistency", "official_v2") == {
        "weight": 50.0, "mean_weight": 1.0, "covariance_weight": 5.0}
    g = build_generator("stackgan_v2", "official_v2", gf_dim=4, branches=1, upsample="bilinear")
    assert g.branches == 1 and g.h_net1.upsample1[0].mode == "bilinear"
    with pytest.raises(ValueError, match=r"preset 'official_v2' has no generator 'stage1'; its generators: \['stackgan_v2'\]"):
        build_generator("stage1", "official_v2")
    with pytest.raises(ValueError, match="preset 'official' has no generator 'stackgan_v2'"):
        build_generator("stackgan_v2", "official")


def test_list_shows_the_new_blocks():
    listed, kind = set(), None
    for line in list_components().splitlines():
        if line.startswith("  "):
            listed.add((kind, line.split()[0]))
        else:
            kind = line.rstrip(":")
    for entry in (("stage", "glu_init"), ("stage", "glu_next"), ("stage", "image"), ("generator", "stackgan_v2"),
                  ("discriminator", "stackgan_v2"), ("regulariser", "color_consistency")):
        assert entry in listed, f"{entry} missing from `python -m ganblocks list`"


def test_orthogonal_init_is_the_v2_codes():
    torch.manual_seed(0)
    g = build_generator("stackgan_v2", "official_v2", gf_dim=4, branches=2, text_dim=TEXT, condition_dim=COND)
    d = build_tree_discriminators(1, "official_v2", df_dim=4, condition_dim=COND)[0]
    for module in (g.h_net2.jointConv[0], g.h_net1.fc[0], d.encode_img[0]):
        w = module.weight.flatten(1)
        rows = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        torch.testing.assert_close(rows, torch.eye(rows.shape[0]), atol=1e-5, rtol=0)
    assert g.ca_net.fc.bias.abs().max() == 0 and g.h_net2.jointConv[1].bias.abs().max() == 0
    assert (g.h_net2.jointConv[1].weight - 1).abs().max() < 0.1
    normal = build("generator", "stackgan_v2", **TINY)
    assert normal.h_net1.fc[0].weight.std() < 0.03  # N(0, 0.02) by default
    with pytest.raises(ValueError, match=r"init='xavier'; expected one of \['normal', 'orthogonal'\]"):
        build("generator", "stackgan_v2", **TINY, init="xavier")
