"""Presets: constructor keywords per model, as the StackGAN paper states them (`paper`) or as the official
PyTorch code has them (`official`: hanzhanggit/StackGAN-Pytorch names, shapes, parameter counts, quirks).

    >>> g = build_generator("stage1", preset="official")             # loads official netG checkpoints
    >>> d = build_discriminator("stage2", preset="paper", df_dim=8)  # any keyword overrides the preset

The StackGAN++ presets `paper_v2` and `official_v2` (hanzhanggit/StackGAN-v2, birds_3stages.yml) hold the
tree model `stackgan_v2`; `build_tree_discriminators` gives its discriminator of every scale.

A preset is a dict: `generator` and `discriminator` map a model name (the registered name: stage1, stage2,
onestage, gan_int_cls, stackgan_v2) to its keywords; `conditioning_options` and `d_head_options` map a conditioning or
d_head name to the extra keywords the preset gives that block, so an override such as
`conditioning="mixture"` gets the preset's options for the mixture rather than the Gaussian's.
"""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from ganblocks.registry import build

_TEXT = dict(text_dim=1024, noise_dim=100, condition_dim=128)
# StackGAN-v2 birds_3stages.yml: GF_DIM 64, R_NUM 2, EMBEDDING_DIM 128, Z_DIM 100, BRANCH_NUM 3, DF_DIM 64.
_TREE_G = dict(**_TEXT, gf_dim=64, branches=3, num_residual=2, base_size=64, upsample="glu", residual="glu",
               conditioning="gaussian", init_stage="glu_init", next_stage="glu_next", image_head="image",
               init="orthogonal")
_TREE_D = dict(image_size=64, df_dim=64, text_dim=1024, condition_dim=128, condition_input="cond_mean", d_head="joint",
               init="orthogonal")

PRESETS: dict[str, dict[str, Any]] = {
    "official": {
        "generator": {
            "stage1": dict(**_TEXT, gf_dim=128, out_size=64, upsample="nearest", conditioning="gaussian"),
            "stage2": dict(**_TEXT, gf_dim=128, out_size=256, num_residual=4, upsample="nearest", residual="relu",
                           conditioning="gaussian", text_twice=True, encoder_size=16),
            "onestage": dict(**_TEXT, gf_dim=128, out_size=256, upsample="nearest", conditioning="gaussian"),
            "gan_int_cls": dict(**_TEXT, gf_dim=64, out_size=64, upsample="deconv", conditioning="none"),
        },
        "discriminator": {
            "stage1": dict(image_size=64, df_dim=64, text_dim=1024, condition_dim=128, condition_input="cond_mean",
                           d_head="matching_aware"),
            "stage2": dict(image_size=256, df_dim=64, text_dim=1024, condition_dim=128, condition_input="cond_mean",
                           d_head="joint"),
            "onestage": dict(image_size=256, df_dim=64, text_dim=1024, condition_dim=128,
                             condition_input="cond_mean", d_head="matching_aware"),
            "gan_int_cls": dict(image_size=64, df_dim=64, text_dim=1024, condition_dim=128, condition_input="text",
                                d_head="matching_aware"),
        },
        # CA: ReLU before the mu/logvar split, KL averaged over dimensions (official quirks).
        "conditioning_options": {
            "gaussian": {"activation": "relu", "kl_reduction": "mean"},
            "mixture": {"activation": "relu", "kl_reduction": "mean"},
            "none": {"activation": "leaky_relu"},
        },
        # Official D_GET_LOGITS: 3x3 joint conv.
        "d_head_options": {"matching_aware": {"kernel_size": 3}, "joint": {"kernel_size": 3}},
    },
    "paper": {
        "generator": {
            "stage1": dict(**_TEXT, gf_dim=128, out_size=64, upsample="nearest", conditioning="gaussian"),
            "stage2": dict(**_TEXT, gf_dim=128, out_size=256, num_residual=None, upsample="nearest",
                           residual="relu", conditioning="gaussian", text_twice=True, encoder_size=16),
            "onestage": dict(**_TEXT, gf_dim=128, out_size=256, upsample="nearest", conditioning="gaussian"),
            "gan_int_cls": dict(**_TEXT, gf_dim=64, out_size=64, upsample="deconv", conditioning="none"),
        },
        # D compresses the raw text embedding to N_d = 128 itself (FC), M_d = 4.
        "discriminator": {
            "stage1": dict(image_size=64, df_dim=64, text_dim=1024, condition_dim=128, condition_input="text",
                           d_head="matching_aware"),
            "stage2": dict(image_size=256, df_dim=64, text_dim=1024, condition_dim=128, condition_input="text",
                           d_head="matching_aware"),
            "onestage": dict(image_size=256, df_dim=64, text_dim=1024, condition_dim=128, condition_input="text",
                             d_head="matching_aware"),
            "gan_int_cls": dict(image_size=64, df_dim=64, text_dim=1024, condition_dim=128, condition_input="text",
                                d_head="matching_aware"),
        },
        # CA: a plain FC to mu and log sigma^2; the KL of N(mu, Sigma) to N(0, I), summed over dimensions.
        "conditioning_options": {
            "gaussian": {"activation": "none", "kl_reduction": "sum"},
            "mixture": {"activation": "none", "kl_reduction": "sum"},
            "none": {"activation": "leaky_relu"},
        },
        # "concatenated ... a 1x1 convolutional layer ... a fully-connected layer with one node".
        "d_head_options": {"matching_aware": {"kernel_size": 1}, "joint": {"kernel_size": 1}},
    },
}

# StackGAN++: the architecture of hanzhanggit/StackGAN-v2 (GLU everywhere, CA_NET's FC to 4 * N_g halved by a
# GLU, D conditioned on the detached CA mean, 3x3 joint conv, orthogonal init); `paper_v2` keeps that network (the StackGAN++
# paper describes the same one) with the project's `paper` conventions: the KL summed over dimensions.
# `regulariser_options`: the colour-consistency weights of the v2 code when it is on (its *_color configs;
# birds_3stages.yml leaves it off). Mean 1, covariance 5, overall COEFF.COLOR_LOSS 50.
for _name, _kl in (("official_v2", "mean"), ("paper_v2", "sum")):
    PRESETS[_name] = {
        "generator": {"stackgan_v2": dict(_TREE_G)},
        "discriminator": {"stackgan_v2": dict(_TREE_D)},
        "conditioning_options": {
            "gaussian": {"activation": "glu", "kl_reduction": _kl},
            "mixture": {"activation": "glu", "kl_reduction": _kl},
            "none": {"activation": "leaky_relu"},
        },
        "d_head_options": {"matching_aware": {"kernel_size": 3}, "joint": {"kernel_size": 3}},
        "regulariser_options": {"color_consistency": dict(weight=50.0, mean_weight=1.0, covariance_weight=5.0)},
    }

# AttnGAN (taoxugit/AttnGAN cfg/bird_attn2.yml; coco_attn2.yml): the attentional tree `attngan_packed` on packed
# DAMSM captions, D_NET per scale with the `attngan` head (COND_DNET on the sentence + UNCOND_DNET), CA with a
# GLU and the KL averaged (official) or summed (paper conventions), and the DAMSM term of G's loss (regulariser
# `damsm`): lambda = TRAIN.SMOOTH.LAMBDA (birds 5, COCO 50), GAMMA1/2/3 4, 5, 10. Birds: GF_DIM 32, DF_DIM 64,
# R_NUM 2, CONDITION_DIM 100, Z_DIM 100; COCO: GF_DIM 48, DF_DIM 96, R_NUM 3. `text_dim` is the packed row of a
# 256-d DAMSM (19 * 256 + 1); the pipeline sets it from the data.
_ATTN_G = dict(text_dim=19 * 256 + 1, noise_dim=100, condition_dim=100, gf_dim=32, branches=3, num_residual=2,
               base_size=64, upsample="glu", residual="glu", conditioning="gaussian")
_ATTN_D = dict(image_size=64, df_dim=64, text_dim=19 * 256 + 1, d_head="attngan", downsample="conv")
for _name, _kl, _score, _lambda, _widths in (
        ("official_attn", "mean", "official", 5.0, {}),
        ("paper_attn", "sum", "paper", 5.0, {}),
        ("official_attn_coco", "mean", "official", 50.0, {"gf_dim": 48, "df_dim": 96, "num_residual": 3})):
    PRESETS[_name] = {
        "generator": {"attngan_packed": {**_ATTN_G, **{k: v for k, v in _widths.items() if k != "df_dim"}}},
        "discriminator": {"attngan_packed": {**_ATTN_D, **{k: v for k, v in _widths.items() if k == "df_dim"}}},
        "conditioning_options": {
            "gaussian": {"activation": "glu", "kl_reduction": _kl},
            "mixture": {"activation": "glu", "kl_reduction": _kl},
            "none": {"activation": "leaky_relu"},
        },
        "d_head_options": {"matching_aware": {"kernel_size": 3}, "joint": {"kernel_size": 3}},
        "regulariser_options": {"damsm": dict(weight=_lambda, gamma1=4.0, gamma2=5.0, gamma3=10.0, word_score=_score),
                                "color_consistency": dict(weight=50.0, mean_weight=1.0, covariance_weight=5.0)},
    }

MODEL_NAMES = ("stage1", "stage2", "onestage", "gan_int_cls", "stackgan_v2", "attngan_packed")
# Keywords a Stage-II generator passes on to the Stage-I generator it holds.
_SHARED_WITH_STAGE1 = ("text_dim", "noise_dim", "condition_dim", "gf_dim", "upsample", "conditioning",
                       "conditioning_kwargs")


def _preset(preset: str) -> dict[str, Any]:
    try:
        return PRESETS[preset]
    except KeyError:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}") from None


def _model_name(stage: str | int) -> str:
    name = {1: "stage1", 2: "stage2"}.get(stage, stage) if isinstance(stage, int) else stage
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {stage!r}; expected one of {MODEL_NAMES} (or 1, 2)")
    return name


def _entry(p: dict[str, Any], kind: str, name: str, preset: str) -> dict[str, Any]:
    """The preset's keywords of one model; a model the preset does not hold is named with the ones it does."""
    try:
        return copy.deepcopy(p[kind][name])
    except KeyError:
        raise ValueError(f"preset {preset!r} has no {kind} {name!r}; its {kind}s: {sorted(p[kind])}") from None


def generator_kwargs(stage: str | int, preset: str = "paper", **overrides: Any) -> dict[str, Any]:
    """Constructor keywords of the `stage` generator in `preset`, with `overrides` (None = keep the preset's).

    For stage2 the `stage1` keyword holds the Stage-I's keywords, built from the same preset and the
    overrides that both stages share (dims, gf_dim, upsample, conditioning); pass `stage1=` to set it.
    """
    p, name = _preset(preset), _model_name(stage)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    kwargs = _entry(p, "generator", name, preset) | overrides
    if "conditioning_kwargs" not in overrides:
        kwargs["conditioning_kwargs"] = dict(p["conditioning_options"].get(kwargs["conditioning"], {}))
    if name == "stage2" and "stage1" not in overrides:
        kwargs["stage1"] = generator_kwargs("stage1", preset, **{k: v for k, v in overrides.items()
                                                                 if k in _SHARED_WITH_STAGE1})
    return kwargs


def discriminator_kwargs(stage: str | int, preset: str = "paper", **overrides: Any) -> dict[str, Any]:
    """Constructor keywords of the `stage` discriminator in `preset`, with `overrides` (None = keep the preset's)."""
    p, name = _preset(preset), _model_name(stage)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    kwargs = _entry(p, "discriminator", name, preset) | overrides
    if "d_head_kwargs" not in overrides:
        kwargs["d_head_kwargs"] = dict(p["d_head_options"].get(kwargs["d_head"], {}))
    return kwargs


def regulariser_kwargs(name: str, preset: str = "official_v2", **overrides: Any) -> dict[str, Any]:
    """Constructor keywords the preset gives the registered `regulariser` `name` (none: {}), with `overrides`."""
    options = _preset(preset).get("regulariser_options", {})
    return copy.deepcopy(options.get(name, {})) | {k: v for k, v in overrides.items() if v is not None}


def build_generator(stage: str | int, preset: str = "paper", **overrides: Any) -> nn.Module:
    """The registered generator `stage` built with `generator_kwargs(stage, preset, **overrides)`."""
    name = _model_name(stage)
    return build("generator", name, where=f"preset {preset!r}", **generator_kwargs(name, preset, **overrides))


def build_discriminator(stage: str | int, preset: str = "paper", **overrides: Any) -> nn.Module:
    """The registered discriminator `stage` built with `discriminator_kwargs(stage, preset, **overrides)`."""
    name = _model_name(stage)
    return build("discriminator", name, where=f"preset {preset!r}", **discriminator_kwargs(name, preset, **overrides))


def build_tree_discriminators(branches: int | None = None, preset: str = "official_v2", **overrides: Any) -> nn.ModuleList:
    """The `stackgan_v2` discriminator of every scale of a tree: D_NET64, D_NET128, D_NET256 (ModuleList).

    Args:
        branches: how many scales (1 to 3); None takes the preset generator's.
        preset: a preset holding `stackgan_v2` (official_v2 or paper_v2).
        **overrides: keywords for every scale's discriminator (e.g. df_dim=8); `image_size` sets the first
            scale's size (the preset's base size, 64), doubled for each further one.
    """
    p = _preset(preset)
    branches = _entry(p, "generator", "stackgan_v2", preset)["branches"] if branches is None else branches
    if isinstance(branches, bool) or branches not in (1, 2, 3):
        raise ValueError(f"build_tree_discriminators: branches={branches!r}; expected 1, 2 or 3")
    base = overrides.pop("image_size", None) or _entry(p, "discriminator", "stackgan_v2", preset)["image_size"]
    return nn.ModuleList(build_discriminator("stackgan_v2", preset, image_size=base * 2**k, **overrides)
                         for k in range(branches))
