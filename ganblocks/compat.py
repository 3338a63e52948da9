"""Load checkpoints of the official StackGAN code (hanzhanggit/StackGAN-Pytorch, hanzhanggit/StackGAN-v2).

    >>> from ganblocks.compat import load_official
    >>> from ganblocks.blocks import set_use_mean
    >>> g = load_official("netG_epoch_600.pth", stage=2)   # Stage-II, its Stage-I inside; eval mode
    >>> set_use_mean(g, True)                              # conditioning code = its mean: deterministic
    >>> image = g(text_embedding, noise).image             # (B, 3, 256, 256), as the official code draws

The checkpoint loads with strict=True into the `official` preset model (the same names and shapes); in
eval mode with the conditioning set to its mean, the images equal the official forward's (float32 CPU,
max abs difference below 1e-5). With sampling on, the official code draws eps from the global generator
in the same order (Stage-I's CA, then Stage-II's), so under the same seed the samples agree as well.

StackGAN++ (family="stackgan_v2"): a released `netG_*.pth` of hanzhanggit/StackGAN-v2 (G_NET, a plain state
dict, saved from DataParallel) loads into the `official_v2` preset tree generator; the branch count is read
from the checkpoint (its `h_netK` keys). Its `images` are the 64, 128 and 256 px images of G_NET's list:

    >>> g = load_official("netG_210000.pth", family="stackgan_v2", use_mean=True)
    >>> small, medium, large = g(text_embedding, noise).images
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from torch import Tensor, nn

from ganblocks.blocks.conditioning import set_use_mean
from ganblocks.models.presets import build_generator
from ganblocks.models.stage2 import read_state_dict

__all__ = ["FAMILIES", "load_official"]

FAMILIES = ("stackgan", "stackgan_v2")


def load_official(
    path_or_state_dict: str | os.PathLike | Mapping[str, Tensor],
    stage: int | None = None,
    *,
    family: str = "stackgan",
    use_mean: bool = False,
    **overrides: Any,
) -> nn.Module:
    """An official generator checkpoint loaded (strict) into the matching preset generator, in eval mode.

    Args:
        path_or_state_dict: the checkpoint file (read with `torch.load(..., weights_only=True)`), or its
            state dict; a DataParallel `module.` prefix is removed, and checkpoints from torch < 0.4 (no
            `num_batches_tracked`) are accepted.
        stage: family "stackgan": 1 (Stage-I G, 64x64) or 2 (Stage-II G with its Stage-I inside, 256x256).
            Family "stackgan_v2": None (one tree holds every scale).
        family: "stackgan" (StackGAN-Pytorch `netG_epoch_*.pth`, preset `official`) or "stackgan_v2"
            (StackGAN-v2 `netG_*.pth`, preset `official_v2`).
        use_mean: set every conditioning block's `use_mean` switch (code = mean, no sampling).
        **overrides: keywords for `build_generator` when the checkpoint was trained with another config
            (e.g. `text_dim=300`, `num_residual=2`, `out_size=128`; for v2 `gf_dim=32`, `branches=2`);
            the defaults are the official ones (v2: `branches` as many as the checkpoint's `h_netK`).

    Returns:
        `Stage1Generator` / `Stage2Generator` (stackgan) or `StackGANv2Generator` (stackgan_v2).

    Raises:
        ValueError: an unknown family, a stage that does not fit the family or the checkpoint.
        RuntimeError: (from `load_state_dict`) names or shapes that differ from the preset model's.
    """
    if family not in FAMILIES:
        raise ValueError(f"load_official: family={family!r}; expected one of {FAMILIES}")
    state = read_state_dict(path_or_state_dict)
    is_v2 = any(k.startswith("h_net1.") for k in state)
    if is_v2 != (family == "stackgan_v2"):
        found = "StackGAN-v2 (has h_net1.* keys)" if is_v2 else "StackGAN-v1 (has no h_net1.* keys)"
        raise ValueError(f"load_official: family={family!r} but the checkpoint looks like a {found} generator; "
                         f"pass family={'stackgan_v2' if is_v2 else 'stackgan'!r}")
    if family == "stackgan_v2":
        if stage is not None:
            raise ValueError(f"load_official: stage={stage!r} with family='stackgan_v2'; expected None (the tree "
                             f"holds every scale; pass branches=N to override the checkpoint's)")
        branches = max(int(k.split(".")[0][len("h_net"):]) for k in state if k.startswith("h_net"))
        # init="normal": the checkpoint replaces every weight, and the preset's orthogonal init costs seconds.
        kwargs = {"branches": branches, "init": "normal", **overrides}
        return _load(build_generator("stackgan_v2", preset="official_v2", **kwargs), state, use_mean)
    if stage not in (1, 2):
        raise ValueError(f"load_official: stage={stage!r}; expected 1 (Stage-I G) or 2 (Stage-II G)")
    has_stage1 = any(k.startswith("STAGE1_G.") for k in state)
    if has_stage1 != (stage == 2):
        found = "a Stage-II" if has_stage1 else "a Stage-I"
        raise ValueError(f"load_official: stage={stage} but the checkpoint looks like {found} generator "
                         f"({'has' if has_stage1 else 'has no'} STAGE1_G.* keys); pass stage={1 if stage == 2 else 2}")
    return _load(build_generator(stage, preset="official", **overrides), state, use_mean)


def _load(model: nn.Module, state: Mapping[str, Tensor], use_mean: bool) -> nn.Module:
    """`state` loaded into `model` strictly; eval mode; `use_mean` set on its conditioning blocks."""
    model.load_state_dict(state, strict=True)
    model.eval()
    set_use_mean(model, use_mean)
    return model
