"""Presets: official parameter counts and state-dict names/shapes (from the reference file), paper counts."""

from __future__ import annotations

import copy

import pytest
import torch

import ganblocks  # noqa: F401
from ganblocks.models import PRESETS, build_discriminator, build_generator, discriminator_kwargs, generator_kwargs
from tests.models.reference import random_state_dict, read_reference

REF = read_reference()
OFFICIAL = {"STAGE1_G": ("generator", 1), "STAGE1_D": ("discriminator", 1),
            "STAGE2_G": ("generator", 2), "STAGE2_D": ("discriminator", 2)}


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _build(kind: str, stage: int, preset: str) -> torch.nn.Module:
    """Built on the meta device: names, shapes and counts without allocating or initialising 100M numbers."""
    with torch.device("meta"):
        return (build_generator if kind == "generator" else build_discriminator)(stage, preset)


@pytest.fixture(scope="module")
def official_models():
    return {name: _build(kind, stage, "official") for name, (kind, stage) in OFFICIAL.items()}


def test_reference_file_matches_the_documented_counts():
    assert {k: v["params"] for k, v in REF.items()} == {
        "STAGE1_G": 10_301_248, "STAGE1_D": 5_715_713, "STAGE2_G": 36_591_328, "STAGE2_D": 71_269_122}


@pytest.mark.parametrize("name", list(OFFICIAL))
def test_official_parameter_counts(official_models, name):
    assert _count(official_models[name]) == REF[name]["params"]


def test_stage2_own_parameters_exclude_the_frozen_stage1(official_models):
    g = official_models["STAGE2_G"]
    assert sum(p.numel() for p in g.parameters() if p.requires_grad) == 26_290_080
    assert _count(g.stage1) == REF["STAGE1_G"]["params"]


@pytest.mark.parametrize("name", list(OFFICIAL))
def test_official_state_dict_names_and_shapes(official_models, name):
    ours = {k: tuple(v.shape) for k, v in official_models[name].state_dict().items()}
    assert ours == REF[name]["entries"]


@pytest.mark.parametrize("name", list(OFFICIAL))
def test_state_dict_built_from_reference_loads_strictly(official_models, name):
    model = copy.deepcopy(official_models[name])
    state = random_state_dict(REF[name]["entries"], seed=1)
    model.load_state_dict(state, strict=True, assign=True)  # assign: the meta tensors take the loaded ones
    loaded = model.state_dict()
    assert all(torch.equal(loaded[key], state[key]) for key in state)


def test_paper_parameter_counts_differ_from_official_only_where_the_paper_does():
    # Paper D: the text goes through its own FC (1024 -> 128, + bias) and the joint conv is 1x1, not 3x3;
    # the paper's Stage-II D has no unconditional head (official: one 4x4 conv to 1 node, + bias).
    text_fc, joint_3x3, joint_1x1, uncond = 1024 * 128 + 128, 640 * 512 * 9, 640 * 512, 512 * 16 + 1
    assert _count(_build("discriminator", 1, "paper")) == REF["STAGE1_D"]["params"] - joint_3x3 + joint_1x1 + text_fc
    assert _count(_build("discriminator", 2, "paper")) == (
        REF["STAGE2_D"]["params"] - joint_3x3 + joint_1x1 + text_fc - uncond)
    # The paper's CA is one FC like the official one: the generators have the same size.
    assert _count(_build("generator", 1, "paper")) == REF["STAGE1_G"]["params"]
    assert _count(_build("generator", 2, "paper")) == REF["STAGE2_G"]["params"]


def test_paper_defaults_follow_the_paper():
    g2 = generator_kwargs(2, "paper")
    assert (g2["condition_dim"], g2["noise_dim"], g2["encoder_size"], g2["out_size"]) == (128, 100, 16, 256)
    assert g2["conditioning_kwargs"] == {"activation": "none", "kl_reduction": "sum"}
    d1 = discriminator_kwargs(1, "paper")
    assert d1["condition_input"] == "text" and d1["condition_dim"] == 128 and d1["d_head_kwargs"]["kernel_size"] == 1
    assert generator_kwargs(1, "official")["conditioning_kwargs"] == {"activation": "relu", "kl_reduction": "mean"}


def test_num_residual_paper_default_depends_on_resolution():
    tiny = dict(text_dim=8, noise_dim=4, condition_dim=4, gf_dim=4)
    assert build_generator(2, "paper", out_size=128, **tiny).num_residual == 2
    assert build_generator(2, "paper", out_size=256, num_residual=None, **tiny).num_residual == 4
    assert build_generator(2, "paper", out_size=128, num_residual=3, **tiny).num_residual == 3


def test_overrides_reach_stage1_and_pick_the_block_options():
    kw = generator_kwargs("stage2", "official", upsample="bilinear", conditioning="mixture", gf_dim=4)
    assert kw["stage1"]["upsample"] == "bilinear" and kw["stage1"]["gf_dim"] == 4
    assert kw["conditioning_kwargs"] == PRESETS["official"]["conditioning_options"]["mixture"]
    assert "num_residual" not in kw["stage1"]
    assert discriminator_kwargs(2, "official", d_head="vanilla")["d_head_kwargs"] == {}


def test_unknown_preset_and_model_are_named():
    with pytest.raises(ValueError, match=r"unknown preset 'papr'; expected one of \['official', 'official_attn', 'official_attn_coco', "
                                          r"'official_v2', 'paper', 'paper_attn', 'paper_v2'\]"):
        build_generator(1, "papr")
    with pytest.raises(ValueError, match="unknown model 'stage3'"):
        build_discriminator("stage3")
