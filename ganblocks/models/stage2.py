"""Stage-II generator (Stage-I image + text -> 128 or 256) and its discriminator.

The Stage-I generator is held frozen as `STAGE1_G` (the official name; `.stage1` is the documented
alias): no gradients, always in eval mode, given the same noise.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from ganblocks.blocks.init import init_weights_
from ganblocks.blocks.upsample import conv3x3
from ganblocks.models._common import build_conditioning, check_input, check_positive, doublings, flat
from ganblocks.models.stage1 import Stage1Generator, TextImageDiscriminator
from ganblocks.registry import build, register
from ganblocks.types import ConditioningOutput, GeneratorOutput


def strip_prefix(state_dict: Mapping[str, Tensor], prefix: str = "module.") -> dict[str, Tensor]:
    """The state dict with a DataParallel `module.` prefix removed from keys that have it."""
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state_dict.items()}


def read_state_dict(source: str | os.PathLike | Mapping[str, Tensor] | nn.Module) -> dict[str, Tensor]:
    """A state dict from a path (`torch.load`, CPU), a mapping, or a module; `module.` prefixes removed."""
    if isinstance(source, nn.Module):
        return dict(source.state_dict())
    if isinstance(source, (str, os.PathLike)):
        source = torch.load(os.fspath(source), map_location="cpu", weights_only=True)
    if not isinstance(source, Mapping):
        raise TypeError(f"expected a path, a state dict or a module; got {type(source).__name__}")
    return strip_prefix(source)


@register("generator", "stage2")
class Stage2Generator(nn.Module):
    """Stage-II G: encode the Stage-I image to M_g x M_g, join the CA code, residual blocks, up-sample: -> (B, 3, S, S).

    forward(text (B, D), noise (B, N_z)) runs the frozen Stage-I on the same inputs, then refines its image.

    Args:
        text_dim, noise_dim, condition_dim: D, N_z, N_g (shared with Stage-I).
        gf_dim: width unit; the encoder reaches gf_dim * 64 / M_g channels (4 * gf_dim at M_g 16).
        out_size: S, 128 or 256.
        num_residual: residual blocks; None gives the paper's 4 at 256 and 2 at 128.
        upsample, residual, conditioning, downsample: registered names.
        conditioning_kwargs: extra keywords of the conditioning block.
        text_twice: join the text code to the encoded image (True, the paper) or not; without it Stage-II
            has no conditioning block of its own and reports Stage-I's code with a zero regulariser.
        encoder_size: M_g.
        stage1: the Stage-I generator, or its constructor keywords (default: `stage1` with the shared dims).
    """

    def __init__(
        self,
        *,
        text_dim: int = 1024,
        noise_dim: int = 100,
        condition_dim: int = 128,
        gf_dim: int = 128,
        out_size: int = 256,
        num_residual: int | None = None,
        upsample: str = "nearest",
        residual: str = "relu",
        conditioning: str = "gaussian",
        conditioning_kwargs: Mapping[str, Any] | None = None,
        downsample: str = "conv",
        text_twice: bool = True,
        encoder_size: int = 16,
        stage1: Stage1Generator | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        model = type(self).__name__
        num_residual = (4 if out_size >= 256 else 2) if num_residual is None else num_residual
        check_positive(model, text_dim=text_dim, noise_dim=noise_dim, condition_dim=condition_dim, gf_dim=gf_dim,
                       encoder_size=encoder_size)
        if isinstance(num_residual, bool) or not isinstance(num_residual, int) or num_residual < 0:
            raise ValueError(f"{model}: num_residual={num_residual!r}; expected an int >= 0 or None")
        if not isinstance(stage1, nn.Module):
            stage1 = build("generator", "stage1", where=f"{model}.stage1", **{
                "text_dim": text_dim, "noise_dim": noise_dim, "condition_dim": condition_dim, **dict(stage1 or {})})
        for name, value in (("text_dim", text_dim), ("noise_dim", noise_dim)):
            if getattr(stage1, name) != value:
                raise ValueError(f"{model}: {name}={value} but its Stage-I generator has {getattr(stage1, name)}")
        num_down = doublings(model, f"Stage-I out_size over encoder_size={encoder_size}", stage1.out_size, encoder_size)
        num_up = doublings(model, "out_size", out_size, 2 * encoder_size) + 1
        self.text_dim, self.noise_dim, self.condition_dim, self.out_size = text_dim, noise_dim, condition_dim, out_size
        self.text_twice, self.encoder_size, self.num_residual = bool(text_twice), encoder_size, num_residual

        self.STAGE1_G = stage1
        for p in self.STAGE1_G.parameters():
            p.requires_grad_(False)
        if self.text_twice:
            self.ca_net = build_conditioning(conditioning, text_dim, condition_dim, conditioning_kwargs,
                                             f"{model}.conditioning")
        downs, channels = [], gf_dim
        for _ in range(num_down):
            downs.append(build("downsample", downsample, where=f"{model}.downsample", in_channels=channels,
                               out_channels=2 * channels, activation="relu"))
            channels *= 2
        self.encoder = nn.Sequential(conv3x3(3, gf_dim), nn.ReLU(True), *flat(*downs))
        joint_in = channels + (condition_dim if self.text_twice else 0)
        self.hr_joint = nn.Sequential(conv3x3(joint_in, channels), nn.BatchNorm2d(channels), nn.ReLU(True))
        self.residual = nn.Sequential(*(build("residual", residual, where=f"{model}.residual", channels=channels)
                                        for _ in range(num_residual)))
        if channels >> num_up < 1:
            raise ValueError(f"{model}: gf_dim={gf_dim} too small for out_size={out_size} (channels reach 0)")
        for i in range(1, num_up + 1):
            self.add_module(f"upsample{i}", build("upsample", upsample, where=f"{model}.upsample",
                                                  in_channels=channels, out_channels=channels // 2))
            channels //= 2
        self.img = nn.Sequential(conv3x3(channels, 3), nn.Tanh())
        self.num_upsample = num_up
        for name, child in self.named_children():
            if name != "STAGE1_G":
                init_weights_(child)
        self.STAGE1_G.eval()

    @property
    def stage1(self) -> Stage1Generator:
        """The frozen Stage-I generator."""
        return self.STAGE1_G

    def train(self, mode: bool = True) -> "Stage2Generator":
        super().train(mode)
        self.STAGE1_G.eval()
        return self

    def load_stage1(self, source: str | os.PathLike | Mapping[str, Tensor] | nn.Module) -> None:
        """Load trained Stage-I weights (a state dict, a path to one, or a Stage-I module), strict; stays frozen."""
        self.STAGE1_G.load_state_dict(read_state_dict(source), strict=True)
        for p in self.STAGE1_G.parameters():
            p.requires_grad_(False)
        self.STAGE1_G.eval()

    def forward(self, text_embedding: Tensor, noise: Tensor) -> GeneratorOutput:
        check_input(type(self).__name__, "text_embedding", text_embedding, self.text_dim)
        with torch.no_grad():
            first = self.STAGE1_G(text_embedding, noise)
        stage1_image = first.image.detach()
        h = self.encoder(stage1_image)
        if self.text_twice:
            cond = self.ca_net(text_embedding)
            c = cond.code[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
            h = torch.cat([h, c], dim=1)
        else:
            s1 = first.cond
            cond = ConditioningOutput(code=s1.code, mean=s1.mean, regulariser=s1.regulariser.new_zeros(()))
        h = self.residual(self.hr_joint(h))
        for i in range(1, self.num_upsample + 1):
            h = getattr(self, f"upsample{i}")(h)
        return GeneratorOutput(image=self.img(h), cond=cond, stage1_image=stage1_image)


@register("discriminator", "stage2")
class Stage2Discriminator(TextImageDiscriminator):
    """Stage-II D: 256x256 (or 128) image -> 4x4 features -> conditional (+ unconditional) logits (B,)."""

    def __init__(self, *, image_size: int = 256, d_head: str = "joint", **kwargs: Any) -> None:
        super().__init__(image_size=image_size, d_head=d_head, **kwargs)
