"""AttnGAN (Xu et al., CVPR 2018) as registered blocks: the attentional generator tree and its per-scale discriminators.

Generator (`generator` "attngan", official G_NET): conditioning (CA) on the sentence vector; the initial stage
(the registered `stage` "glu_init" of StackGAN++, as INIT_STAGE_G: FC + GLU to 4x4, four GLU up-sampling
blocks -> gf_dim x 64 x 64); then per further branch an attention stage (word-context attention over the
previous features, concatenated with them, GLU residual blocks, GLU up-sampling: x2) and an image head per
scale (`stage` "image": 3x3 conv + tanh). Discriminator (`discriminator` "attngan",
official D_NET64/128/256 by `image_size`): down-sampling to 4x4 x 8 df_dim, then a registered `d_head`; the
default `attngan` head is D_GET_LOGITS (COND_DNET on the sentence vector, UNCOND_DNET), raw logits.

Names, shapes and concatenation orders follow taoxugit/AttnGAN code/model.py (`ca_net`, `h_net1`,
`img_net1`, `h_net2.att.conv_context`, `h_net2.residual.0.block.0`, `img_code_s16`, `COND_DNET.jointConv`,
...), so the released netG loads with strict=True (`ganblocks.compat_attngan`). Official birds widths:
gf_dim 32, df_dim 64, condition_dim 100, noise_dim 100, text_dim 256, num_residual 2 (COCO: 48, 96, 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
from torch import Tensor, nn

from ganblocks.blocks.attention import WordAttention
from ganblocks.blocks.upsample import conv3x3
from ganblocks.models._common import (build_conditioning, check_input, check_positive,
                                      discriminator_conditions, doublings, flat)
from ganblocks.registry import build, register
from ganblocks.types import DiscriminatorOutput, GeneratorOutput


def attngan_init_(model: nn.Module) -> nn.Module:
    """AttnGAN's weights_init (code/miscc/utils.py), in place: conv and linear weights orthogonal (gain 1), linear
    biases 0, BatchNorm weights N(1, 0.02) and biases 0; conv biases keep PyTorch's default. Returns `model`."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.orthogonal_(m.weight, 1.0)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return model


@dataclass
class AttnGeneratorOutput(GeneratorOutput):
    """GeneratorOutput (with `images`, every branch's image, lowest resolution first) plus the attention maps
    of each attention stage ((B, T, H, W) at 64, 128, ... x the words)."""

    attention: tuple[Tensor, ...] = ()


class AttnNextStage(nn.Module):
    """NEXT_STAGE_G: context = WordAttention(h, words); cat(h, context) -> residual blocks (2C) -> up-sampling -> (C, 2H, 2W)."""

    def __init__(self, *, channels: int, word_dim: int, num_residual: int = 2, residual: str = "glu",
                 upsample: str = "glu") -> None:
        super().__init__()
        check_positive("AttnNextStage", channels=channels, word_dim=word_dim)
        if isinstance(num_residual, bool) or not isinstance(num_residual, int) or num_residual < 0:
            raise ValueError(f"AttnNextStage: num_residual={num_residual!r}; expected an int >= 0")
        self.att = WordAttention(channels=channels, word_dim=word_dim)
        self.residual = nn.Sequential(*(build("residual", residual, where="attngan.residual", channels=2 * channels)
                                        for _ in range(num_residual)))
        self.upsample = build("upsample", upsample, where="attngan.upsample", in_channels=2 * channels,
                              out_channels=channels)

    def forward(self, h: Tensor, words: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        context, attention = self.att(h, words, mask)
        return self.upsample(self.residual(torch.cat([h, context], dim=1))), attention


@register("generator", "attngan")
class AttnGenerator(nn.Module):
    """AttnGAN G_NET: sentence (B, D), noise (B, N_z), words (B, D, T), mask (B, T) -> images at 64, 128, 256 + attention maps.

    forward(text_embedding, noise, words, mask=None) -> AttnGeneratorOutput: `image` the last branch's,
    `images` all of them, `attention` each attention stage's (B, T, H, W) maps, `cond` the conditioning output
    (its `regulariser` is the KL the generator loss weights). `mask` is True at padded words.

    Args:
        text_dim: D, sentence and word feature size (official TEXT.EMBEDDING_DIM 256).
        noise_dim: N_z (100). condition_dim: N_g (official GAN.CONDITION_DIM 100).
        gf_dim: width unit (birds 32, COCO 48): the initial stage starts at 16 gf_dim x 4 x 4.
        num_branches: 1 (64 only), 2 (64, 128) or 3 (64, 128, 256; official TREE.BRANCH_NUM).
        num_residual: GLU residual blocks per attention stage (birds 2, COCO 3).
        conditioning: registered name; conditioning_kwargs its keywords (official CA_NET: "gaussian" with
            {"activation": "glu", "kl_reduction": "mean"}, as `ganblocks.compat_attngan.BIRDS` sets).
        upsample, residual: registered names (official "glu", "glu").
    """

    def __init__(self, *, text_dim: int = 256, noise_dim: int = 100, condition_dim: int = 100, gf_dim: int = 32,
                 num_branches: int = 3, num_residual: int = 2, conditioning: str = "gaussian",
                 conditioning_kwargs: Mapping[str, Any] | None = None, upsample: str = "glu",
                 residual: str = "glu") -> None:
        super().__init__()
        check_positive("AttnGenerator", text_dim=text_dim, noise_dim=noise_dim, condition_dim=condition_dim,
                       gf_dim=gf_dim)
        if num_branches not in (1, 2, 3):
            raise ValueError(f"AttnGenerator: num_branches={num_branches!r}; expected 1, 2 or 3 (64, 128, 256)")
        self.text_dim, self.noise_dim, self.condition_dim = text_dim, noise_dim, condition_dim
        self.num_branches, self.out_size = num_branches, 64 * 2 ** (num_branches - 1)
        self.ca_net = build_conditioning(conditioning, text_dim, condition_dim, conditioning_kwargs,
                                         "AttnGenerator.conditioning")
        self.h_net1 = build("stage", "glu_init", where="AttnGenerator.h_net1", noise_dim=noise_dim,
                            condition_dim=condition_dim, channels=16 * gf_dim, num_upsample=4, upsample=upsample)
        self.img_net1 = build("stage", "image", channels=gf_dim)
        for i in range(2, num_branches + 1):
            self.add_module(f"h_net{i}", AttnNextStage(channels=gf_dim, word_dim=text_dim, num_residual=num_residual,
                                                       residual=residual, upsample=upsample))
            self.add_module(f"img_net{i}", build("stage", "image", channels=gf_dim))
        attngan_init_(self)

    def forward(self, text_embedding: Tensor, noise: Tensor, words: Tensor, mask: Tensor | None = None
                ) -> AttnGeneratorOutput:
        check_input("AttnGenerator", "text_embedding (sentence)", text_embedding, self.text_dim)
        check_input("AttnGenerator", "noise", noise, self.noise_dim)
        if words.dim() != 3 or words.shape[:2] != (len(noise), self.text_dim):
            raise ValueError(f"AttnGenerator: words of shape {tuple(words.shape)}; expected ({len(noise)}, "
                             f"{self.text_dim}, T)")
        cond = self.ca_net(text_embedding)
        h = self.h_net1(noise, cond.code)
        images, maps = [self.img_net1(h)], []
        for i in range(2, self.num_branches + 1):
            h, attention = getattr(self, f"h_net{i}")(h, words, mask)
            images.append(getattr(self, f"img_net{i}")(h))
            maps.append(attention)
        return AttnGeneratorOutput(image=images[-1], cond=cond, images=tuple(images), attention=tuple(maps))


class GetLogits(nn.Module):
    """D_GET_LOGITS: [cat(h, code replicated to M x M) -> `jointConv` k x k conv + BN + LeakyReLU] -> `outlogits` M x M
    stride-M conv -> (B,). Official: k = 3, M = 4."""

    def __init__(self, feature_channels: int, condition_dim: int | None, spatial_size: int = 4,
                 kernel_size: int = 3) -> None:
        super().__init__()
        self.condition_dim = condition_dim
        if condition_dim:
            self.jointConv = nn.Sequential(
                nn.Conv2d(feature_channels + condition_dim, feature_channels, kernel_size, padding=kernel_size // 2,
                          bias=False),
                nn.BatchNorm2d(feature_channels), nn.LeakyReLU(0.2, inplace=True))
        self.outlogits = nn.Sequential(nn.Conv2d(feature_channels, 1, kernel_size=spatial_size, stride=spatial_size))

    def forward(self, h: Tensor, code: Tensor | None = None) -> Tensor:
        if self.condition_dim:
            if code is None or code.dim() != 2 or code.shape[1] != self.condition_dim:
                shape = None if code is None else tuple(code.shape)
                raise ValueError(f"d_head 'attngan': condition of shape {shape}; expected (B, {self.condition_dim})")
            h = self.jointConv(torch.cat([h, code[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])], dim=1))
        return self.outlogits(h).view(-1)


@register("d_head", "attngan")
class AttnGANHead(nn.Module):
    """AttnGAN's logits: COND_DNET on the sentence vector and (unconditional=True) UNCOND_DNET: -> cond_logits, uncond_logits (B,).

    Args:
        feature_channels: C (8 df_dim). condition_dim: D, the sentence size (no compression).
        spatial_size: M, the feature map's size (official 4). kernel_size: of the joint conv, 3 (official) or 1.
        unconditional: official b_jcu (True).
    """

    def __init__(self, *, feature_channels: int, condition_dim: int, spatial_size: int = 4, kernel_size: int = 3,
                 unconditional: bool = True) -> None:
        super().__init__()
        check_positive("d_head 'attngan'", feature_channels=feature_channels, condition_dim=condition_dim,
                       spatial_size=spatial_size)
        if kernel_size not in (1, 3):
            raise ValueError(f"d_head 'attngan': kernel_size={kernel_size!r}; expected 3 (official) or 1")
        self.feature_channels, self.spatial_size = feature_channels, spatial_size
        self.COND_DNET = GetLogits(feature_channels, condition_dim, spatial_size, kernel_size)
        self.UNCOND_DNET = GetLogits(feature_channels, None, spatial_size) if unconditional else None

    def score(self, owner: nn.Module, features: Tensor, condition: Tensor | None) -> DiscriminatorOutput:
        """Logits from the layers `owner` holds (this head, or a discriminator that adopted its children)."""
        m = self.spatial_size
        if features.dim() != 4 or tuple(features.shape[1:]) != (self.feature_channels, m, m):
            raise ValueError(f"d_head 'attngan': features of shape {tuple(features.shape)}; "
                             f"expected (B, {self.feature_channels}, {m}, {m})")
        uncond = owner.UNCOND_DNET
        return DiscriminatorOutput(cond_logits=owner.COND_DNET(features, condition),
                                   uncond_logits=None if uncond is None else uncond(features))

    def forward(self, features: Tensor, condition: Tensor | None = None) -> DiscriminatorOutput:
        return self.score(self, features, condition)


@register("discriminator", "attngan")
class AttnDiscriminator(nn.Module):
    """AttnGAN D_NET64 / D_NET128 / D_NET256 (by image_size): (B, 3, S, S) -> (B, 8 df, 4, 4) -> a registered d_head.

    encode: `img_code_s16` (4 down-sampling blocks, the first without BN), then for S > 64 one down-sampling
    block per doubling (`img_code_s32`, `img_code_s64`) and as many 3x3 conv + BN + LeakyReLU halving the
    channels back to 8 df (`img_code_s32_1`; `img_code_s64_1`, `img_code_s64_2`). head: the d_head's
    logits; its children are adopted (official names `COND_DNET`, `UNCOND_DNET`). `condition_input` is
    "text": D takes the sentence vector as it is (condition size = text_dim, nothing compressed).

    Args:
        image_size: S, 64, 128 or 256. df_dim: width unit (birds 64, COCO 96). text_dim: D (256).
        d_head: registered name (default "attngan"); d_head_kwargs its keywords. downsample: registered name.
    """

    condition_input = "text"

    def __init__(self, *, image_size: int = 64, df_dim: int = 64, text_dim: int = 256, d_head: str = "attngan",
                 d_head_kwargs: Mapping[str, Any] | None = None, downsample: str = "conv") -> None:
        super().__init__()
        check_positive("AttnDiscriminator", df_dim=df_dim, text_dim=text_dim)
        extra = doublings("AttnDiscriminator", "image_size", image_size, 64)
        self.image_size, self.text_dim, self.condition_dim = image_size, text_dim, text_dim
        where = "AttnDiscriminator.downsample"
        blocks = [build("downsample", downsample, where=where, in_channels=c_in, out_channels=c_out, batchnorm=i > 0)
                  for i, (c_in, c_out) in enumerate([(3, df_dim)] + [(df_dim * 2**i, df_dim * 2 ** (i + 1))
                                                                     for i in range(3)])]
        self.img_code_s16 = nn.Sequential(*flat(*blocks))
        channels = 8 * df_dim
        for j in range(1, extra + 1):
            self.add_module(f"img_code_s{16 * 2**j}", build("downsample", downsample, where=where,
                                                            in_channels=channels, out_channels=2 * channels))
            channels *= 2
        for m in range(1, extra + 1):
            self.add_module(f"img_code_s{16 * 2**extra}_{m}", nn.Sequential(
                conv3x3(channels, channels // 2), nn.BatchNorm2d(channels // 2), nn.LeakyReLU(0.2, inplace=True)))
            channels //= 2
        self._encoders = [name for name, _ in self.named_children()]
        self.feature_channels = channels
        head = build("d_head", d_head, where="AttnDiscriminator.d_head", feature_channels=channels,
                     condition_dim=text_dim, spatial_size=4, **dict(d_head_kwargs or {}))
        for name, child in head.named_children():
            self.add_module(name, child)
        if isinstance(head, AttnGANHead) and head.UNCOND_DNET is None:
            self.UNCOND_DNET = None
        object.__setattr__(self, "_d_head", head)
        attngan_init_(self)

    def encode(self, images: Tensor) -> Tensor:
        """(B, 3, S, S) -> (B, 8 df_dim, 4, 4)."""
        s = self.image_size
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, s, s):
            raise ValueError(f"AttnDiscriminator: images of shape {tuple(images.shape)}; expected (B, 3, {s}, {s})")
        h = images
        for name in self._encoders:
            h = getattr(self, name)(h)
        return h

    def head(self, features: Tensor, condition: Tensor | None) -> DiscriminatorOutput:
        """features (B, C, 4, 4), sentence (B, D) -> logits."""
        score = getattr(self._d_head, "score", None)
        return self._d_head(features, condition) if score is None else score(self, features, condition)

    def forward(self, images: Tensor, condition: Tensor | None = None) -> DiscriminatorOutput:
        return self.head(self.encode(images), condition)

    def conditions(self, text: Tensor, wrong_text: Tensor, cond: Any,
                   encode: Callable[[Tensor], Any]) -> tuple[Tensor, Tensor]:
        """This D's condition for the matching and mismatched captions (`_common.discriminator_conditions`):
        text (B, D), wrong_text (B, D), the generator's `ConditioningOutput` and its conditioning block."""
        return discriminator_conditions(self.condition_input, text, wrong_text, cond, encode)
