"""Generator stages of a StackGAN++ (StackGAN-v2) tree: the initial stage, the next stages and the image heads.

Contract (every registered `stage`): keyword construction; `forward(x, code (B, N_g)) -> Tensor` and an
attribute `out_channels`. The three kinds of stage take different `x`:
    glu_init:  x = noise (B, N_z)        -> features (B, C / 2^n, 4 * 2^n, 4 * 2^n)  (n up-sampling blocks)
    glu_next:  x = features (B, C, H, W) -> features (B, C / 2, 2H, 2W)
    image:     x = features (B, C, H, W) -> image (B, 3, H, W) in [-1, 1]; `code` is ignored
A tree generator holds one `glu_init`, then one `glu_next` per further branch, and an `image` head after
each (`ganblocks.models.stackgan_v2`).

Module names and layer indices follow hanzhanggit/StackGAN-v2 code/model.py (INIT_STAGE_G: `fc.0`,
`fc.1`, `upsample1.1`; NEXT_STAGE_G: `jointConv.0`, `residual.0.block.0`, `upsample.1`; GET_IMAGE_G:
`img.0`), so the official checkpoints load with strict=True. As in that code the text code comes first in
every concatenation: cat(code, noise) and cat(code, features).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganblocks.blocks.upsample import conv3x3
from ganblocks.registry import build, register


def _check_positive(stage: str, **values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"stage {stage!r}: {name}={value!r}; expected a positive int")


def _check_code(stage: str, code: Tensor, condition_dim: int, batch: int) -> None:
    if code.dim() != 2 or code.shape[1] != condition_dim or code.shape[0] != batch:
        raise ValueError(f"stage {stage!r}: code of shape {tuple(code.shape)}; expected ({batch}, {condition_dim})")


def glu_conv3x3(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 conv to 2 * out_channels, BN, GLU (official `Block3x3_relu`): (B, C_in, H, W) -> (B, C_out, H, W)."""
    return nn.Sequential(conv3x3(in_channels, 2 * out_channels), nn.BatchNorm2d(2 * out_channels), nn.GLU(dim=1))


@register("stage", "glu_init")
class GLUInitStage(nn.Module):
    """StackGAN++ initial stage: FC(code ++ noise) + BN + GLU to 4x4, then x2 up-sampling blocks: -> (B, C/2^n, 4*2^n, 4*2^n).

    Args:
        noise_dim: N_z.
        condition_dim: N_g (0 for an unconditional tree: only the noise enters).
        channels: C, the channels of the 4x4 map (official INIT_STAGE_G's ngf = 16 * GF_DIM).
        num_upsample: n, up-sampling blocks (4: 4x4 -> 64x64), each halving the channels.
        upsample: registered `upsample` name (official "glu").
    """

    def __init__(
        self, *, noise_dim: int, condition_dim: int, channels: int, num_upsample: int = 4, upsample: str = "glu"
    ) -> None:
        super().__init__()
        _check_positive("glu_init", noise_dim=noise_dim, channels=channels, num_upsample=num_upsample)
        if isinstance(condition_dim, bool) or not isinstance(condition_dim, int) or condition_dim < 0:
            raise ValueError(f"stage 'glu_init': condition_dim={condition_dim!r}; expected an int >= 0")
        if channels >> num_upsample < 1:
            raise ValueError(f"stage 'glu_init': channels={channels} too few for num_upsample={num_upsample} "
                             f"(halved {num_upsample} times they reach 0)")
        self.noise_dim, self.condition_dim = noise_dim, condition_dim
        self.channels, self.num_upsample = channels, num_upsample
        self.fc = nn.Sequential(
            nn.Linear(condition_dim + noise_dim, 2 * channels * 4 * 4, bias=False),
            nn.BatchNorm1d(2 * channels * 4 * 4),
            nn.GLU(dim=1),
        )
        for i in range(1, num_upsample + 1):
            self.add_module(f"upsample{i}", build("upsample", upsample, where="stage 'glu_init'.upsample",
                                                  in_channels=channels >> (i - 1), out_channels=channels >> i))
        self.out_channels = channels >> num_upsample

    def forward(self, noise: Tensor, code: Tensor | None) -> Tensor:
        if noise.dim() != 2 or noise.shape[1] != self.noise_dim:
            raise ValueError(f"stage 'glu_init': noise of shape {tuple(noise.shape)}; expected (B, {self.noise_dim})")
        if self.condition_dim:
            _check_code("glu_init", code, self.condition_dim, noise.shape[0])
            noise = torch.cat([code, noise], dim=1)
        h = self.fc(noise).view(-1, self.channels, 4, 4)
        for i in range(1, self.num_upsample + 1):
            h = getattr(self, f"upsample{i}")(h)
        return h


@register("stage", "glu_next")
class GLUNextStage(nn.Module):
    """StackGAN++ next stage: join the code again, 3x3 conv + BN + GLU, residual blocks, x2 up-sampling: (B, C, H, W) -> (B, C/2, 2H, 2W).

    Args:
        channels: C, the channels of the previous stage's features (official NEXT_STAGE_G's ngf).
        condition_dim: N_g, replicated over H x W and joined before the joint conv.
        num_residual: residual blocks (official R_NUM, 2).
        residual: registered `residual` name (official "glu").
        upsample: registered `upsample` name (official "glu").
    """

    def __init__(
        self, *, channels: int, condition_dim: int, num_residual: int = 2, residual: str = "glu", upsample: str = "glu"
    ) -> None:
        super().__init__()
        _check_positive("glu_next", channels=channels, condition_dim=condition_dim)
        if isinstance(num_residual, bool) or not isinstance(num_residual, int) or num_residual < 0:
            raise ValueError(f"stage 'glu_next': num_residual={num_residual!r}; expected an int >= 0")
        if channels < 2:
            raise ValueError(f"stage 'glu_next': channels={channels}; expected >= 2 (the up-sampling halves them)")
        self.channels, self.condition_dim, self.num_residual = channels, condition_dim, num_residual
        self.jointConv = glu_conv3x3(channels + condition_dim, channels)
        self.residual = nn.Sequential(*(build("residual", residual, where="stage 'glu_next'.residual",
                                              channels=channels) for _ in range(num_residual)))
        self.upsample = build("upsample", upsample, where="stage 'glu_next'.upsample", in_channels=channels,
                              out_channels=channels // 2)
        self.out_channels = channels // 2

    def forward(self, h: Tensor, code: Tensor) -> Tensor:
        if h.dim() != 4 or h.shape[1] != self.channels:
            raise ValueError(f"stage 'glu_next': features of shape {tuple(h.shape)}; "
                             f"expected (B, {self.channels}, H, W)")
        _check_code("glu_next", code, self.condition_dim, h.shape[0])
        c = code[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        return self.upsample(self.residual(self.jointConv(torch.cat([c, h], dim=1))))


@register("stage", "image")
class ImageHead(nn.Module):
    """Per-scale image head: 3x3 conv (no bias) + tanh (official GET_IMAGE_G): (B, C, H, W) -> (B, 3, H, W) in [-1, 1].

    Args:
        channels: C.
    """

    def __init__(self, *, channels: int) -> None:
        super().__init__()
        _check_positive("image", channels=channels)
        self.channels, self.out_channels = channels, 3
        self.img = nn.Sequential(conv3x3(channels, 3), nn.Tanh())

    def forward(self, h: Tensor, code: Tensor | None = None) -> Tensor:
        if h.dim() != 4 or h.shape[1] != self.channels:
            raise ValueError(f"stage 'image': features of shape {tuple(h.shape)}; expected (B, {self.channels}, H, W)")
        return self.img(h)
