"""load_official: strict loading of official checkpoints, and outputs equal to an independent functional
forward written from the official equations (hanzhanggit/StackGAN-Pytorch code/model.py) over the same
state-dict tensors, with random weights built from the reference file's names and shapes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganblocks.blocks import set_use_mean
from ganblocks.compat import load_official
from tests.models.reference import random_state_dict, read_reference

REF = read_reference()


def _bn(x, sd, key):
    return F.batch_norm(x, sd[f"{key}.running_mean"], sd[f"{key}.running_var"], sd[f"{key}.weight"],
                        sd[f"{key}.bias"], training=False, eps=1e-5)


def _up_block(h, sd, key):
    """Official upBlock: nearest x2, conv3x3 (no bias), BN, ReLU."""
    h = F.interpolate(h, scale_factor=2, mode="nearest")
    return F.relu(_bn(F.conv2d(h, sd[f"{key}.1.weight"], padding=1), sd, f"{key}.2"))


def _ca_mean(sd, key, text):
    """Official CA_NET with the code set to mu: relu(fc(text)), first half."""
    x = F.relu(F.linear(text, sd[f"{key}.fc.weight"], sd[f"{key}.fc.bias"]))
    return x[:, : x.shape[1] // 2]


def reference_stage1(sd, text, noise, p=""):
    mu = _ca_mean(sd, f"{p}ca_net", text)
    h = F.linear(torch.cat([noise, mu], 1), sd[f"{p}fc.0.weight"])
    h = F.relu(_bn(h, sd, f"{p}fc.1"))
    h = h.view(h.shape[0], -1, 4, 4)
    for i in range(1, 5):
        h = _up_block(h, sd, f"{p}upsample{i}")
    return torch.tanh(F.conv2d(h, sd[f"{p}img.0.weight"], padding=1))


def reference_stage2(sd, text, noise):
    stage1_img = reference_stage1(sd, text, noise, p="STAGE1_G.")
    h = F.relu(F.conv2d(stage1_img, sd["encoder.0.weight"], padding=1))
    h = F.relu(_bn(F.conv2d(h, sd["encoder.2.weight"], stride=2, padding=1), sd, "encoder.3"))
    h = F.relu(_bn(F.conv2d(h, sd["encoder.5.weight"], stride=2, padding=1), sd, "encoder.6"))
    c = _ca_mean(sd, "ca_net", text)[:, :, None, None].repeat(1, 1, 16, 16)
    h = torch.cat([h, c], 1)
    h = F.relu(_bn(F.conv2d(h, sd["hr_joint.0.weight"], padding=1), sd, "hr_joint.1"))
    for r in range(4):
        k = f"residual.{r}.block"
        out = F.relu(_bn(F.conv2d(h, sd[f"{k}.0.weight"], padding=1), sd, f"{k}.1"))
        out = _bn(F.conv2d(out, sd[f"{k}.3.weight"], padding=1), sd, f"{k}.4")
        h = F.relu(out + h)
    for i in range(1, 5):
        h = _up_block(h, sd, f"upsample{i}")
    return stage1_img, torch.tanh(F.conv2d(h, sd["img.0.weight"], padding=1))


@pytest.fixture(scope="module")
def stage1_checkpoint():
    return random_state_dict(REF["STAGE1_G"]["entries"], seed=1)


@pytest.fixture(scope="module")
def stage1_model(stage1_checkpoint):
    return load_official(stage1_checkpoint, stage=1)


@pytest.fixture(scope="module")
def stage2_checkpoint():
    return random_state_dict(REF["STAGE2_G"]["entries"], seed=2)


@pytest.fixture(scope="module")
def stage2_file(tmp_path_factory, stage2_checkpoint):
    """The Stage-II checkpoint saved as a DataParallel model would save it."""
    path = tmp_path_factory.mktemp("official") / "netG_epoch_600.pth"
    torch.save({"module." + k: v for k, v in stage2_checkpoint.items()}, path)
    return path


@pytest.fixture(scope="module")
def stage2_model(stage2_file):
    return load_official(stage2_file, stage=2)


def test_stage1_matches_the_official_equations(stage1_checkpoint, stage1_model):
    sd, g = stage1_checkpoint, stage1_model
    set_use_mean(g, True)
    torch.manual_seed(0)
    text, noise = torch.randn(3, 1024), torch.randn(3, 100)
    with torch.no_grad():
        ours, expected = g(text, noise).image, reference_stage1(sd, text, noise)
    assert expected.std() > 0.05  # the comparison is not between saturated or constant images
    assert (ours - expected).abs().max().item() < 1e-5


def test_stage2_matches_the_official_equations(stage2_checkpoint, stage2_model):
    sd, g = stage2_checkpoint, stage2_model
    set_use_mean(g, True)
    torch.manual_seed(0)
    text, noise = torch.randn(1, 1024), torch.randn(1, 100)
    with torch.no_grad():
        out = g(text, noise)
        stage1_img, expected = reference_stage2(sd, text, noise)
    assert out.image.shape == (1, 3, 256, 256) and expected.std() > 0.05
    assert (out.stage1_image - stage1_img).abs().max().item() < 1e-5
    assert (out.image - expected).abs().max().item() < 1e-5


def test_round_trip_through_a_dataparallel_file(stage2_checkpoint, stage2_model):
    g = stage2_model
    assert not g.training and not g.stage1.training
    assert all(torch.equal(v, stage2_checkpoint[k]) for k, v in g.state_dict().items())
    assert set_use_mean(g, True) == 2  # Stage-II's CA and its Stage-I's


def test_old_checkpoints_without_num_batches_tracked_load(stage1_checkpoint):
    sd = {k: v for k, v in stage1_checkpoint.items() if "num_batches" not in k}
    g = load_official(sd, stage=1)
    assert g.fc[1].num_batches_tracked.item() == 0


def test_sampling_mode_is_random_and_use_mean_is_not(stage1_model):
    ca = stage1_model.ca_net
    text = torch.randn(4, 1024)
    with torch.no_grad():
        set_use_mean(stage1_model, False)
        assert not torch.allclose(ca(text).code, ca(text).code)
        set_use_mean(stage1_model, True)
        out = ca(text)
        torch.testing.assert_close(out.code, out.mean, rtol=0, atol=0)
        torch.testing.assert_close(out.code, ca(text).code, rtol=0, atol=0)


def test_wrong_stage_and_wrong_shapes_are_named(stage1_checkpoint):
    sd = stage1_checkpoint
    with pytest.raises(ValueError, match="stage=2 but the checkpoint looks like a Stage-I generator"):
        load_official(sd, stage=2)
    with pytest.raises(ValueError, match="stage=3"):
        load_official(sd, stage=3)
    with pytest.raises(RuntimeError, match="size mismatch for ca_net.fc.weight"):
        load_official(sd, stage=1, text_dim=300)
