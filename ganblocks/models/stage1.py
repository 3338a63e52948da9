"""Stage-I generator (text + noise -> 64x64 sketch) and the discriminator shared by every resolution.

Module names follow hanzhanggit/StackGAN-Pytorch (`ca_net.fc`, `fc.0`, `upsample1.1`, `img.0`,
`encode_img.0`, `get_cond_logits.outlogits.0`), so the `official` preset loads its checkpoints with
strict=True; every block is taken from the registry by name.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import Tensor, nn

from ganblocks.blocks.init import init_weights_
from ganblocks.blocks.upsample import conv3x3
from ganblocks.models._common import (build_conditioning, check_input, check_positive,
                                      discriminator_conditions, doublings, flat)
from ganblocks.registry import build, register
from ganblocks.types import DiscriminatorOutput, GeneratorOutput


@register("generator", "stage1")
class Stage1Generator(nn.Module):
    """Stage-I G: CA(text) ++ noise -> FC to 4x4 -> up-sampling blocks -> 3x3 conv + tanh: (B, D), (B, N_z) -> (B, 3, S, S).

    Args:
        text_dim: D, the text embedding size.
        noise_dim: N_z.
        condition_dim: N_g, the conditioning code size.
        gf_dim: width unit; the 4x4 map has 8 * gf_dim channels, halved by each up-sampling block.
        out_size: S, 64 for Stage-I (more gives the one-stage baseline of the paper's Figure 1c).
        upsample: registered `upsample` name.
        conditioning: registered `conditioning` name.
        conditioning_kwargs: extra keywords of that conditioning block (e.g. the official quirks).
    """

    def __init__(
        self,
        *,
        text_dim: int = 1024,
        noise_dim: int = 100,
        condition_dim: int = 128,
        gf_dim: int = 128,
        out_size: int = 64,
        upsample: str = "nearest",
        conditioning: str = "gaussian",
        conditioning_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        model = type(self).__name__
        check_positive(model, text_dim=text_dim, noise_dim=noise_dim, condition_dim=condition_dim, gf_dim=gf_dim)
        num_up = doublings(model, "out_size", out_size, 8) + 1
        ngf = gf_dim * 8
        if ngf >> num_up < 1:
            raise ValueError(f"{model}: gf_dim={gf_dim} too small for out_size={out_size} (channels reach 0)")
        self.text_dim, self.noise_dim, self.condition_dim, self.out_size = text_dim, noise_dim, condition_dim, out_size
        self.base_channels = ngf  # channels of the 4x4 map (official STAGE1_G.gf_dim)
        self.ca_net = build_conditioning(conditioning, text_dim, condition_dim, conditioning_kwargs, f"{model}.conditioning")
        self.fc = nn.Sequential(
            nn.Linear(noise_dim + condition_dim, ngf * 4 * 4, bias=False), nn.BatchNorm1d(ngf * 4 * 4), nn.ReLU(True)
        )
        channels = ngf
        for i in range(1, self._num_upsample_blocks(num_up) + 1):
            block = build("upsample", upsample, where=f"{model}.upsample", in_channels=channels, out_channels=channels // 2)
            self.add_module(f"upsample{i}", block)
            channels //= 2
        self.img = self._image_head(channels)
        self.num_upsample = num_up
        init_weights_(self)

    def _num_upsample_blocks(self, num_up: int) -> int:
        """Up-sampling blocks before the image head (all of them: the head keeps the size)."""
        return num_up

    def _image_head(self, channels: int) -> nn.Sequential:
        """(B, C, S, S) -> (B, 3, S, S) in [-1, 1]: 3x3 conv, tanh (official `img`)."""
        return nn.Sequential(conv3x3(channels, 3), nn.Tanh())

    def forward(self, text_embedding: Tensor, noise: Tensor) -> GeneratorOutput:
        model = type(self).__name__
        check_input(model, "text_embedding", text_embedding, self.text_dim)
        check_input(model, "noise", noise, self.noise_dim)
        cond = self.ca_net(text_embedding)
        h = self.fc(torch.cat([noise, cond.code], dim=1)).view(-1, self.base_channels, 4, 4)
        for i in range(1, self._num_upsample_blocks(self.num_upsample) + 1):
            h = getattr(self, f"upsample{i}")(h)
        return GeneratorOutput(image=self.img(h), cond=cond)


class TextImageDiscriminator(nn.Module):
    """Down-sample an image to M_d x M_d features, then score them (with a condition) by a registered head.

    encode: (B, 3, S, S) -> (B, C, M_d, M_d); head: features, condition -> DiscriminatorOutput; forward = both.
    After log2(S / M_d) down-sampling blocks (the first without BN), 3x3 conv + BN + LeakyReLU layers halve
    the channels until 8 * df_dim (the official Stage-II D). `condition_input="cond_mean"` (official): the
    condition is the generator's conditioning mean (N = condition_dim); `"text"` (paper): the raw text
    embedding, compressed by `text_fc` (FC + LeakyReLU) to N_d = condition_dim inside `head`. The head's
    children (`get_cond_logits`, `get_uncond_logits`) are adopted as this module's own, for the official names,
    and `head` runs the head's `score(self, ...)` on them.

    Args:
        image_size: S.
        df_dim: width unit; the first block has df_dim channels, doubled by each later one.
        text_dim: D (used when condition_input is "text").
        condition_dim: N_g (cond_mean) or N_d (text).
        condition_input: "cond_mean" or "text".
        d_head: registered `d_head` name; d_head_kwargs its extra keywords.
        downsample: registered `downsample` name.
        spatial_size: M_d.
    """

    CONDITION_INPUTS = ("cond_mean", "text")

    def __init__(
        self,
        *,
        image_size: int = 64,
        df_dim: int = 64,
        text_dim: int = 1024,
        condition_dim: int = 128,
        condition_input: str = "text",
        d_head: str = "matching_aware",
        d_head_kwargs: Mapping[str, Any] | None = None,
        downsample: str = "conv",
        spatial_size: int = 4,
    ) -> None:
        super().__init__()
        model = type(self).__name__
        check_positive(model, df_dim=df_dim, text_dim=text_dim, condition_dim=condition_dim, spatial_size=spatial_size)
        if condition_input not in self.CONDITION_INPUTS:
            raise ValueError(f"{model}: condition_input={condition_input!r}; expected one of {self.CONDITION_INPUTS}")
        num_down = doublings(model, "image_size", image_size, 2 * spatial_size) + 1
        self.image_size, self.text_dim, self.condition_dim = image_size, text_dim, condition_dim
        self.condition_input, self.spatial_size = condition_input, spatial_size
        blocks, channels = [], 3
        for i in range(num_down):
            out = df_dim * 2**i
            blocks.append(build("downsample", downsample, where=f"{model}.downsample", in_channels=channels,
                                out_channels=out, batchnorm=i > 0))
            channels = out
        while channels > df_dim * 8:
            blocks.append(nn.Sequential(conv3x3(channels, channels // 2), nn.BatchNorm2d(channels // 2),
                                        nn.LeakyReLU(0.2, inplace=True)))
            channels //= 2
        self.encode_img = nn.Sequential(*flat(*blocks))
        self.feature_channels = channels
        if condition_input == "text":
            self.text_fc = nn.Sequential(nn.Linear(text_dim, condition_dim), nn.LeakyReLU(0.2, inplace=True))
        head = build("d_head", d_head, where=f"{model}.d_head", feature_channels=channels,
                     condition_dim=condition_dim, spatial_size=spatial_size, **dict(d_head_kwargs or {}))
        if any(True for _ in head.parameters(recurse=False)) or any(True for _ in head.buffers(recurse=False)):
            raise ValueError(f"{model}: d_head {d_head!r} keeps parameters outside its children; move them into one")
        for name, child in head.named_children():
            self.add_module(name, child)
        object.__setattr__(self, "_d_head", head)  # its logic; its layers are this module's children now
        init_weights_(self)

    def encode(self, images: Tensor) -> Tensor:
        """(B, 3, S, S) -> (B, C, M_d, M_d)."""
        s = self.image_size
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, s, s):
            raise ValueError(f"{type(self).__name__}: images of shape {tuple(images.shape)}; expected (B, 3, {s}, {s})")
        return self.encode_img(images)

    def head(self, features: Tensor, condition: Tensor | None) -> DiscriminatorOutput:
        """features (B, C, M_d, M_d), condition (B, N) -> logits (B,)."""
        if condition is not None and self.condition_input == "text":
            check_input(type(self).__name__, "condition (text embedding)", condition, self.text_dim)
            condition = self.text_fc(condition)
        score = getattr(self._d_head, "score", None)
        if score is None:  # a head without `score` runs on its own (shared) children
            return self._d_head(features, condition)
        return score(self, features, condition)

    def forward(self, images: Tensor, condition: Tensor | None = None) -> DiscriminatorOutput:
        return self.head(self.encode(images), condition)

    def conditions(self, text: Tensor, wrong_text: Tensor, cond: Any,
                   encode: Callable[[Tensor], Any]) -> tuple[Tensor, Tensor]:
        """This D's condition for the matching and mismatched captions (`_common.discriminator_conditions`):
        text (B, D), wrong_text (B, D), the generator's `ConditioningOutput` and its conditioning block."""
        return discriminator_conditions(self.condition_input, text, wrong_text, cond, encode)


@register("discriminator", "stage1")
class Stage1Discriminator(TextImageDiscriminator):
    """Stage-I D: 64x64 image -> 4x4 features -> matching-aware logits (B,)."""
