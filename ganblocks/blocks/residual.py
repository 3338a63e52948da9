"""Residual blocks: channel- and size-preserving refinements used by the Stage-II generator.

Contract (every registered `residual`): keyword construction `(channels)`; `(B, C, H, W) -> (B, C, H, W)`.
The layers sit in `.block` so a model's `residual.0.block.0.weight` matches the official names.
"""

from __future__ import annotations

from torch import Tensor, nn

from ganblocks.blocks.upsample import conv3x3
from ganblocks.registry import register


def _check(block: str, channels: int) -> None:
    if not isinstance(channels, int) or channels < 1:
        raise ValueError(f"residual {block!r}: channels={channels!r}; expected a positive int")


@register("residual", "relu")
class ReLUResBlock(nn.Module):
    """Paper/official block: relu(x + BN(conv(relu(BN(conv(x)))))): (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, *, channels: int) -> None:
        super().__init__()
        _check("relu", channels)
        self.block = nn.Sequential(
            conv3x3(channels, channels),
            nn.BatchNorm2d(channels),
            nn.ReLU(True),
            conv3x3(channels, channels),
            nn.BatchNorm2d(channels),
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.block(x) + x)


@register("residual", "glu")
class GLUResBlock(nn.Module):
    """StackGAN++ block: x + BN(conv(GLU(BN(conv_2C(x))))), no output activation: (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, *, channels: int) -> None:
        super().__init__()
        _check("glu", channels)
        self.block = nn.Sequential(
            conv3x3(channels, 2 * channels),
            nn.BatchNorm2d(2 * channels),
            nn.GLU(dim=1),
            conv3x3(channels, channels),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x) + x
