"""Up-sampling blocks: each doubles the spatial size and maps `in_channels` to `out_channels`.

Contract (every registered `upsample`): keyword construction `(in_channels, out_channels)`;
`(B, C_in, H, W) -> (B, C_out, 2H, 2W)`.

The resize blocks are `nn.Sequential`s laid out as the official `upBlock` (index 0 the resize, 1 the 3x3
conv without bias, 2 the BatchNorm, 3 the ReLU), so a model holding one as `upsample1` has the official
state-dict names (`upsample1.1.weight`, `upsample1.2.running_mean`, ...).
"""

from __future__ import annotations

from torch import nn

from ganblocks.registry import register


def conv3x3(in_channels: int, out_channels: int, bias: bool = False) -> nn.Conv2d:
    """3x3 stride-1 convolution with padding 1 (no bias by default, as the official `conv3x3`)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=bias)


def _check_channels(block: str, in_channels: int, out_channels: int) -> None:
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"upsample {block!r}: {name}={value!r}; expected a positive int")


class _ResizeConvUp(nn.Sequential):
    """x2 resize with `mode`, 3x3 conv (no bias), BatchNorm, ReLU."""

    mode: str = "nearest"

    def __init__(self, *, in_channels: int, out_channels: int) -> None:
        _check_channels(self.mode, in_channels, out_channels)
        resize = nn.Upsample(scale_factor=2, mode=self.mode)
        if self.mode != "nearest":
            resize = nn.Upsample(scale_factor=2, mode=self.mode, align_corners=False)
        super().__init__(resize, conv3x3(in_channels, out_channels), nn.BatchNorm2d(out_channels), nn.ReLU(True))


@register("upsample", "nearest")
class NearestUp(_ResizeConvUp):
    """Nearest-neighbour x2, 3x3 conv, BN, ReLU (the paper's and official block): (B, Ci, H, W) -> (B, Co, 2H, 2W)."""

    mode = "nearest"


@register("upsample", "bilinear")
class BilinearUp(_ResizeConvUp):
    """Bilinear x2, 3x3 conv, BN, ReLU: (B, C_in, H, W) -> (B, C_out, 2H, 2W)."""

    mode = "bilinear"


@register("upsample", "bicubic")
class BicubicUp(_ResizeConvUp):
    """Bicubic x2, 3x3 conv, BN, ReLU: (B, C_in, H, W) -> (B, C_out, 2H, 2W)."""

    mode = "bicubic"


@register("upsample", "glu")
class GLUUp(nn.Sequential):
    """StackGAN++ block: nearest x2, 3x3 conv to 2*C_out, BN, GLU: (B, C_in, H, W) -> (B, C_out, 2H, 2W)."""

    def __init__(self, *, in_channels: int, out_channels: int) -> None:
        _check_channels("glu", in_channels, out_channels)
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"),
            conv3x3(in_channels, 2 * out_channels),
            nn.BatchNorm2d(2 * out_channels),
            nn.GLU(dim=1),
        )


@register("upsample", "deconv")
class DeconvUp(nn.Sequential):
    """4x4 stride-2 transposed conv (no bias), BN, ReLU (DCGAN): (B, C_in, H, W) -> (B, C_out, 2H, 2W)."""

    def __init__(self, *, in_channels: int, out_channels: int) -> None:
        _check_channels("deconv", in_channels, out_channels)
        super().__init__(
            nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(True),
        )


@register("upsample", "pixelshuffle")
class PixelShuffleUp(nn.Sequential):
    """3x3 conv to 4*C_out, pixel shuffle x2, BN, ReLU: (B, C_in, H, W) -> (B, C_out, 2H, 2W)."""

    def __init__(self, *, in_channels: int, out_channels: int) -> None:
        _check_channels("pixelshuffle", in_channels, out_channels)
        super().__init__(
            conv3x3(in_channels, 4 * out_channels),
            nn.PixelShuffle(2),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(True),
        )
