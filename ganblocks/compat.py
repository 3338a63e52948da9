"""Load checkpoints of the official StackGAN code (hanzhanggit/StackGAN-Pytorch) into ganblocks models.

    >>> from ganblocks.compat import load_official
    >>> from ganblocks.blocks import set_use_mean
    >>> g = load_official("netG_epoch_600.pth", stage=2)   # Stage-II, its Stage-I inside; eval mode
    >>> set_use_mean(g, True)                              # conditioning code = its mean: deterministic
    >>> image = g(text_embedding, noise).image             # (B, 3, 256, 256), as the official code draws

The checkpoint loads with strict=True into the `official` preset model (the same names and shapes); in
eval mode with the conditioning set to its mean, the images equal the official forward's (float32 CPU,
max abs difference below 1e-5). With sampling on, the official code draws eps from the global generator
in the same order (Stage-I's CA, then Stage-II's), so under the same seed the samples agree as well.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from torch import Tensor, nn

from ganblocks.blocks.conditioning import set_use_mean
from ganblocks.models.presets import build_generator
from ganblocks.models.stage2 import read_state_dict

__all__ = ["load_official"]


def load_official(
    path_or_state_dict: str | os.PathLike | Mapping[str, Tensor],
    stage: int,
    *,
    use_mean: bool = False,
    **overrides: Any,
) -> nn.Module:
    """An official `netG_epoch_*.pth` loaded (strict) into the `official` preset generator, in eval mode.

    Args:
        path_or_state_dict: the checkpoint file, or its state dict; a DataParallel `module.` prefix is
            removed, and checkpoints from torch < 0.4 (no `num_batches_tracked`) are accepted.
        stage: 1 (Stage-I G, 64x64) or 2 (Stage-II G with its Stage-I inside, 256x256).
        use_mean: set every conditioning block's `use_mean` switch (code = mean, no sampling).
        **overrides: keywords for `build_generator` when the checkpoint was trained with another config
            (e.g. `text_dim=300`, `num_residual=2`, `out_size=128`); the defaults are the official ones.

    Returns:
        The Stage-I or Stage-II generator (`ganblocks.models.stage1.Stage1Generator` / `Stage2Generator`).
    """
    if stage not in (1, 2):
        raise ValueError(f"load_official: stage={stage!r}; expected 1 (Stage-I G) or 2 (Stage-II G)")
    state = read_state_dict(path_or_state_dict)
    has_stage1 = any(k.startswith("STAGE1_G.") for k in state)
    if has_stage1 != (stage == 2):
        found = "a Stage-II" if has_stage1 else "a Stage-I"
        raise ValueError(f"load_official: stage={stage} but the checkpoint looks like {found} generator "
                         f"({'has' if has_stage1 else 'has no'} STAGE1_G.* keys); pass stage={1 if stage == 2 else 2}")
    model = build_generator(stage, preset="official", **overrides)
    model.load_state_dict(state, strict=True)
    model.eval()
    set_use_mean(model, use_mean)
    return model
