"""Presets: constructor keywords per model, as the StackGAN paper states them (`paper`) or as the official
PyTorch code has them (`official`: hanzhanggit/StackGAN-Pytorch names, shapes, parameter counts, quirks).

    >>> g = build_generator("stage1", preset="official")             # loads official netG checkpoints
    >>> d = build_discriminator("stage2", preset="paper", df_dim=8)  # any keyword overrides the preset

A preset is a dict: `generator` and `discriminator` map a model name (the registered name: stage1, stage2,
onestage, gan_int_cls) to its keywords; `conditioning_options` and `d_head_options` map a conditioning or
d_head name to the extra keywords the preset gives that block, so an override such as
`conditioning="mixture"` gets the preset's options for the mixture rather than the Gaussian's.
"""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from ganblocks.registry import build

_TEXT = dict(text_dim=1024, noise_dim=100, condition_dim=128)

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

MODEL_NAMES = ("stage1", "stage2", "onestage", "gan_int_cls")
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


def generator_kwargs(stage: str | int, preset: str = "paper", **overrides: Any) -> dict[str, Any]:
    """Constructor keywords of the `stage` generator in `preset`, with `overrides` (None = keep the preset's).

    For stage2 the `stage1` keyword holds the Stage-I's keywords, built from the same preset and the
    overrides that both stages share (dims, gf_dim, upsample, conditioning); pass `stage1=` to set it.
    """
    p, name = _preset(preset), _model_name(stage)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    kwargs = copy.deepcopy(p["generator"][name]) | overrides
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
    kwargs = copy.deepcopy(p["discriminator"][name]) | overrides
    if "d_head_kwargs" not in overrides:
        kwargs["d_head_kwargs"] = dict(p["d_head_options"].get(kwargs["d_head"], {}))
    return kwargs


def build_generator(stage: str | int, preset: str = "paper", **overrides: Any) -> nn.Module:
    """The registered generator `stage` built with `generator_kwargs(stage, preset, **overrides)`."""
    name = _model_name(stage)
    return build("generator", name, where=f"preset {preset!r}", **generator_kwargs(name, preset, **overrides))


def build_discriminator(stage: str | int, preset: str = "paper", **overrides: Any) -> nn.Module:
    """The registered discriminator `stage` built with `discriminator_kwargs(stage, preset, **overrides)`."""
    name = _model_name(stage)
    return build("discriminator", name, where=f"preset {preset!r}", **discriminator_kwargs(name, preset, **overrides))
