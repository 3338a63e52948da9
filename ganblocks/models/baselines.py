"""One-stage baselines: the "vanilla" one-stage generator of the paper's Figure 1c, and GAN-INT-CLS.

Both reuse the Stage-I generator and the shared discriminator with other numbers and names.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ganblocks.models.stage1 import Stage1Generator, TextImageDiscriminator
from ganblocks.registry import register


@register("generator", "onestage")
class OneStageGenerator(Stage1Generator):
    """Vanilla one-stage G (Figure 1c): the Stage-I G with more up-sampling blocks, (B, D), (B, N_z) -> (B, 3, S, S).

    Reaches S = 128 or 256 directly; channels halve at every block from 8 * gf_dim at 4x4.
    """

    def __init__(self, *, out_size: int = 256, **kwargs: Any) -> None:
        super().__init__(out_size=out_size, **kwargs)


@register("generator", "gan_int_cls")
class GanIntClsGenerator(Stage1Generator):
    """GAN-INT-CLS G (Reed et al. 2016): text FC + LeakyReLU ++ noise, DCGAN deconvs to (B, 3, 64, 64).

    The last up-sampling step is the image head itself: a 4x4 stride-2 transposed conv to 3 channels, tanh.
    Defaults: conditioning "none" (no augmentation), "deconv" up-sampling, gf_dim 64 (512 channels at 4x4).
    """

    def __init__(self, *, gf_dim: int = 64, upsample: str = "deconv", conditioning: str = "none", **kwargs: Any) -> None:
        super().__init__(gf_dim=gf_dim, upsample=upsample, conditioning=conditioning, **kwargs)

    def _num_upsample_blocks(self, num_up: int) -> int:
        return num_up - 1

    def _image_head(self, channels: int) -> nn.Sequential:
        """(B, C, S/2, S/2) -> (B, 3, S, S): 4x4 stride-2 transposed conv, tanh."""
        return nn.Sequential(nn.ConvTranspose2d(channels, 3, kernel_size=4, stride=2, padding=1), nn.Tanh())


@register("discriminator", "onestage")
class OneStageDiscriminator(TextImageDiscriminator):
    """One-stage D for the Figure 1c baseline: 256x256 (or 128) image -> 4x4 features -> matching-aware logits."""

    def __init__(self, *, image_size: int = 256, **kwargs: Any) -> None:
        super().__init__(image_size=image_size, **kwargs)


@register("discriminator", "gan_int_cls")
class GanIntClsDiscriminator(TextImageDiscriminator):
    """GAN-INT-CLS D: 64x64 image -> 4x4, text FC to 128 + LeakyReLU replicated, 1x1 conv, 4x4 conv -> logits (B,)."""

    def __init__(self, *, condition_input: str = "text", d_head_kwargs: dict | None = None, **kwargs: Any) -> None:
        super().__init__(condition_input=condition_input, d_head_kwargs=d_head_kwargs or {"kernel_size": 1}, **kwargs)
