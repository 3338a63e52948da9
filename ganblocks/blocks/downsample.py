"""Down-sampling blocks: each halves the spatial size (discriminator encoders, the Stage-II image encoder).

Contract (every registered `downsample`): keyword construction `(in_channels, out_channels,
batchnorm=True)`; `(B, C_in, H, W) -> (B, C_out, H/2, W/2)`.

A block is an `nn.Sequential` of plain layers, so a model can lay several out flat in one Sequential
(`nn.Sequential(*block_a, *block_b)`) and get the official names (`encode_img.0`, `encode_img.2`, ...).
"""

from __future__ import annotations

from torch import nn

from ganblocks.registry import register

ACTIVATIONS = ("leaky_relu", "relu")


@register("downsample", "conv")
class ConvDown(nn.Sequential):
    """4x4 stride-2 conv (no bias), BN unless batchnorm=False, LeakyReLU(0.2): (B, Ci, H, W) -> (B, Co, H/2, W/2).

    Args:
        in_channels: C_in.
        out_channels: C_out.
        batchnorm: False for the first block of a discriminator (the paper and official code).
        activation: "leaky_relu" (discriminators) or "relu" (the official Stage-II image encoder).
        negative_slope: slope of the LeakyReLU.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        batchnorm: bool = True,
        activation: str = "leaky_relu",
        negative_slope: float = 0.2,
    ) -> None:
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"downsample 'conv': {name}={value!r}; expected a positive int")
        if activation not in ACTIVATIONS:
            raise ValueError(f"downsample 'conv': activation={activation!r}; expected one of {ACTIVATIONS}")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False)]
        if batchnorm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.LeakyReLU(negative_slope, inplace=True) if activation == "leaky_relu" else nn.ReLU(True))
        super().__init__(*layers)
