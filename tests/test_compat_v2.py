"""load_official(family="stackgan_v2"): a StackGAN-v2 netG_*.pth (hanzhanggit/StackGAN-v2 code/model.py G_NET,
birds_3stages.yml: GF_DIM 64, EMBEDDING_DIM 128, Z_DIM 100, R_NUM 2, BRANCH_NUM 3, TEXT.DIMENSION 1024) loads
strictly and draws the images of an independent functional forward written from the official equations over
the same state-dict tensors. The official key layout and the parameter counts below are derived here from the
official module definitions, not from ganblocks' models."""

from __future__ import annotations

import pickle

import pytest
import torch
import torch.nn.functional as F

from ganblocks.blocks import set_use_mean
from ganblocks.compat import load_official
from ganblocks.models import build_generator, build_tree_discriminators
from tests.models.reference import random_state_dict

T, Z, E, GF, R, DF = 1024, 100, 128, 64, 2, 64  # birds_3stages.yml


# ---- the official layout: keys and shapes of G_NET, from code/model.py -----------------------------------
def _bn(prefix: str, n: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (n,), f"{prefix}.bias": (n,), f"{prefix}.running_mean": (n,),
            f"{prefix}.running_var": (n,), f"{prefix}.num_batches_tracked": ()}


def _up_block(prefix: str, c_in: int, c_out: int) -> dict[str, tuple[int, ...]]:
    """upBlock(in, out): Upsample, conv3x3(in, 2 out), BatchNorm2d(2 out), GLU."""
    return {f"{prefix}.1.weight": (2 * c_out, c_in, 3, 3), **_bn(f"{prefix}.2", 2 * c_out)}


def official_g_entries(t=T, z=Z, e=E, gf=GF, r=R, branches=3) -> dict[str, tuple[int, ...]]:
    """G_NET's state-dict keys and shapes (B_CONDITION True)."""
    ngf = gf * 16  # INIT_STAGE_G(GF_DIM * 16)
    out = {"ca_net.fc.weight": (4 * e, t), "ca_net.fc.bias": (4 * e,),
           "h_net1.fc.0.weight": (ngf * 4 * 4 * 2, e + z), **_bn("h_net1.fc.1", ngf * 4 * 4 * 2)}
    for i in range(1, 5):
        out |= _up_block(f"h_net1.upsample{i}", ngf >> (i - 1), ngf >> i)
    out["img_net1.img.0.weight"] = (3, gf, 3, 3)
    for k in range(2, branches + 1):
        c = gf >> (k - 2)  # NEXT_STAGE_G(GF_DIM), NEXT_STAGE_G(GF_DIM // 2)
        p = f"h_net{k}"
        out |= {f"{p}.jointConv.0.weight": (2 * c, c + e, 3, 3), **_bn(f"{p}.jointConv.1", 2 * c)}
        for j in range(r):
            b = f"{p}.residual.{j}.block"
            out |= {f"{b}.0.weight": (2 * c, c, 3, 3), **_bn(f"{b}.1", 2 * c),
                    f"{b}.3.weight": (c, c, 3, 3), **_bn(f"{b}.4", c)}
        out |= _up_block(f"{p}.upsample", c, c // 2)
        out[f"img_net{k}.img.0.weight"] = (3, c // 2, 3, 3)
    return out


def official_g_params(t=T, z=Z, e=E, gf=GF, r=R, branches=3) -> int:
    """Parameters of G_NET (buffers excluded), term by term.

    ca_net.fc: 4e*t + 4e.  h_net1 (ngf = 16 gf): fc 32 ngf*(e+z) + BN1d 2*32 ngf; upBlock(c, c/2) for
    c = ngf, ngf/2, ngf/4, ngf/8: conv 9*c*c + BN 2*c.  img_net1: 9*3*gf.
    h_netk (c = gf, gf/2): jointConv 9*2c*(c+e) + 2*2c; R ResBlocks 9*2c*c + 2*2c + 9*c*c + 2*c each;
    upBlock(c, c/2) 9*c*c + 2*c.  img_netk: 9*3*c/2.
    """
    ngf = 16 * gf
    total = 4 * e * t + 4 * e + 32 * ngf * (e + z) + 2 * 32 * ngf
    total += sum(9 * c * c + 2 * c for c in (ngf, ngf // 2, ngf // 4, ngf // 8)) + 9 * 3 * gf
    for k in range(2, branches + 1):
        c = gf >> (k - 2)
        total += 9 * 2 * c * (c + e) + 4 * c
        total += r * (9 * 2 * c * c + 4 * c + 9 * c * c + 2 * c)
        total += 9 * c * c + 2 * c + 9 * 3 * (c // 2)
    return total


def official_d_params(scale: int, df=DF, e=E) -> int:
    """Parameters of D_NET64 (scale 0), D_NET128 (1), D_NET256 (2) with B_CONDITION True.

    encode_image_by_16times: 16*3*df + sum over (df->2df, 2df->4df, 4df->8df) of 16*c_in*c_out + 2*c_out.
    D_NET128 adds downBlock(8df, 16df) 16*8df*16df + 2*16df and Block3x3_leakRelu(16df, 8df) 9*16df*8df + 2*8df;
    D_NET256 adds downBlock(8df, 16df), downBlock(16df, 32df), Block3x3_leakRelu(32df, 16df), (16df, 8df).
    Heads: logits conv 16*8df + 1, uncond_logits 16*8df + 1, jointConv 9*(8df+e)*8df + 2*8df.
    """
    down = lambda ci, co: 16 * ci * co + 2 * co  # noqa: E731  conv 4x4 (no bias) + BN
    block = lambda ci, co: 9 * ci * co + 2 * co  # noqa: E731  conv 3x3 (no bias) + BN
    total = 16 * 3 * df + down(df, 2 * df) + down(2 * df, 4 * df) + down(4 * df, 8 * df)
    if scale == 1:
        total += down(8 * df, 16 * df) + block(16 * df, 8 * df)
    if scale == 2:
        total += down(8 * df, 16 * df) + down(16 * df, 32 * df) + block(32 * df, 16 * df) + block(16 * df, 8 * df)
    return total + 2 * (16 * 8 * df + 1) + block(8 * df + e, 8 * df)


# ---- the official forward, written with torch.nn.functional only ---------------------------------------
def _glu(x):
    n = x.shape[1] // 2
    return x[:, :n] * torch.sigmoid(x[:, n:])


def _batch_norm(x, sd, key):
    return F.batch_norm(x, sd[f"{key}.running_mean"], sd[f"{key}.running_var"], sd[f"{key}.weight"],
                        sd[f"{key}.bias"], training=False, eps=1e-5)


def _conv_bn_glu(x, sd, conv, bn):
    return _glu(_batch_norm(F.conv2d(x, sd[f"{conv}.weight"], padding=1), sd, bn))


def _up(x, sd, key):
    return _conv_bn_glu(F.interpolate(x, scale_factor=2, mode="nearest"), sd, f"{key}.1", f"{key}.2")


def reference_g(sd, text, noise, eps=None, branches=3, r=R):
    """G_NET.forward(z, text) in eval mode: c = mu (+ eps * std when eps is given); cat(c, z); cat(c, h)."""
    x = _glu(F.linear(text, sd["ca_net.fc.weight"], sd["ca_net.fc.bias"]))
    e = x.shape[1] // 2
    mu, logvar = x[:, :e], x[:, e:]
    c = mu if eps is None else mu + eps * torch.exp(0.5 * logvar)
    h = _glu(_batch_norm(F.linear(torch.cat([c, noise], 1), sd["h_net1.fc.0.weight"]), sd, "h_net1.fc.1"))
    h = h.view(h.shape[0], -1, 4, 4)
    for i in range(1, 5):
        h = _up(h, sd, f"h_net1.upsample{i}")
    images = [torch.tanh(F.conv2d(h, sd["img_net1.img.0.weight"], padding=1))]
    for k in range(2, branches + 1):
        p = f"h_net{k}"
        cc = c[:, :, None, None].repeat(1, 1, h.shape[2], h.shape[3])
        h = _conv_bn_glu(torch.cat([cc, h], 1), sd, f"{p}.jointConv.0", f"{p}.jointConv.1")
        for j in range(r):
            b = f"{p}.residual.{j}.block"
            out = _conv_bn_glu(h, sd, f"{b}.0", f"{b}.1")
            h = _batch_norm(F.conv2d(out, sd[f"{b}.3.weight"], padding=1), sd, f"{b}.4") + h
        h = _up(h, sd, f"{p}.upsample")
        images.append(torch.tanh(F.conv2d(h, sd[f"img_net{k}.img.0.weight"], padding=1)))
    return images


# ---- fixtures: a random checkpoint in the official layout, saved as the official trainer saves it ---------
@pytest.fixture(scope="module")
def checkpoint():
    return random_state_dict(official_g_entries(), seed=3)


@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory, checkpoint):
    """netG_*.pth as StackGAN-v2's save_model writes it: netG (DataParallel).state_dict(), `module.` keys."""
    path = tmp_path_factory.mktemp("official_v2") / "netG_210000.pth"
    torch.save({"module." + k: v for k, v in checkpoint.items()}, path)
    return path


@pytest.fixture(scope="module")
def model(checkpoint_file):
    return load_official(checkpoint_file, family="stackgan_v2", use_mean=True)


def test_parameter_counts_equal_the_official_models():
    assert official_g_params() == 21_239_696
    g = build_generator("stackgan_v2", preset="official_v2", init="normal")  # (the orthogonal init takes seconds)
    assert sum(p.numel() for p in g.parameters()) == 21_239_696
    assert [official_d_params(s) for s in range(3)] == [5_723_906, 18_834_178, 71_269_122]
    ds = build_tree_discriminators(preset="official_v2", init="normal")
    assert [sum(p.numel() for p in d.parameters()) for d in ds] == [5_723_906, 18_834_178, 71_269_122]
    assert [d.image_size for d in ds] == [64, 128, 256]


def test_names_and_shapes_are_the_official_ones(model, checkpoint):
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == official_g_entries()
    assert all(torch.equal(v, checkpoint[k]) for k, v in model.state_dict().items())
    assert not model.training and model.branches == 3


def test_images_equal_the_official_equations_at_the_mean(model, checkpoint):
    torch.manual_seed(0)
    text, noise = torch.randn(2, T), torch.randn(2, Z)
    with torch.no_grad():
        out = model(text, noise)
        expected = reference_g(checkpoint, text, noise)
    assert [tuple(i.shape) for i in out.images] == [(2, 3, 64, 64), (2, 3, 128, 128), (2, 3, 256, 256)]
    assert out.image is out.images[-1]
    for ours, ref in zip(out.images, expected):
        assert ref.std() > 0.05  # not a comparison of saturated or constant images
        assert (ours - ref).abs().max().item() < 1e-5


def test_sampling_draws_eps_as_the_official_code(model, checkpoint):
    """Official CA_NET.reparametrize draws eps = FloatTensor(B, E).normal_() after the FC: same seed, same images."""
    text, noise = torch.randn(1, T), torch.randn(1, Z)
    set_use_mean(model, False)
    try:
        with torch.no_grad():
            torch.manual_seed(5)
            ours = model(text, noise).images
            torch.manual_seed(5)
            eps = torch.FloatTensor(1, E).normal_()
            expected = reference_g(checkpoint, text, noise, eps=eps)
            mean_image = reference_g(checkpoint, text, noise)[-1]
    finally:
        set_use_mean(model, True)
    assert (ours[-1] - mean_image).abs().max() > 1e-3  # sampling did move the image
    for a, b in zip(ours, expected):
        assert (a - b).abs().max().item() < 1e-5


def test_branch_count_is_read_from_the_checkpoint():
    sd = random_state_dict(official_g_entries(gf=8, branches=2), seed=4)
    g = load_official(sd, family="stackgan_v2", gf_dim=8, use_mean=True)
    assert g.branches == 2 and g.out_size == 128
    text, noise = torch.randn(2, T), torch.randn(2, Z)
    with torch.no_grad():
        for ours, ref in zip(g(text, noise).images, reference_g(sd, text, noise, branches=2)):
            assert (ours - ref).abs().max().item() < 1e-5


def test_strict_loading_names_the_bad_key_and_the_family(checkpoint):
    missing = {k: v for k, v in checkpoint.items() if k != "h_net2.jointConv.0.weight"}
    with pytest.raises(RuntimeError, match=r"Missing key\(s\).*h_net2\.jointConv\.0\.weight"):
        load_official(missing, family="stackgan_v2")
    with pytest.raises(RuntimeError, match="size mismatch for ca_net.fc.weight"):
        load_official(checkpoint, family="stackgan_v2", text_dim=300)
    with pytest.raises(ValueError, match="looks like a StackGAN-v2 .*pass family='stackgan_v2'"):
        load_official(checkpoint, stage=2)
    with pytest.raises(ValueError, match=r"stage=2 with family='stackgan_v2'; expected None"):
        load_official(checkpoint, stage=2, family="stackgan_v2")
    with pytest.raises(ValueError, match=r"family='stackgan3'; expected one of \('stackgan', 'stackgan_v2'\)"):
        load_official(checkpoint, family="stackgan3")


class _NotATensor:
    pass


def test_a_file_holding_python_objects_is_refused(tmp_path, checkpoint):
    """The official file is a plain state dict; it is read with weights_only=True, which runs no pickled code."""
    path = tmp_path / "netG_1.pth"
    torch.save({**checkpoint, "extra": _NotATensor()}, path)
    with pytest.raises(pickle.UnpicklingError):
        load_official(path, family="stackgan_v2")
