"""Discriminator heads: image features (+ condition) -> raw real/fake logits (no sigmoid).

Contract (every registered `d_head`): keyword construction `(feature_channels, condition_dim, ...)`;
`forward(features (B, C, M_d, M_d), condition (B, N_d)) -> DiscriminatorOutput` with (B,) logits. A head
that does not use text ignores `condition`.

A head keeps its parameters in the children `get_cond_logits` / `get_uncond_logits` (each with an
`outlogits` Sequential), the official names; a discriminator adopts these children, so its state dict reads
`get_cond_logits.outlogits.0.weight` as the official one does, and calls `head.score(discriminator,
features, condition)`, which reads the layers from the discriminator. The official Sigmoid is left out:
losses take logits.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganblocks.registry import register
from ganblocks.types import DiscriminatorOutput


def _check_features(head: str, features: Tensor, channels: int, spatial_size: int) -> None:
    expected = (channels, spatial_size, spatial_size)
    if features.dim() != 4 or tuple(features.shape[1:]) != expected:
        raise ValueError(
            f"d_head {head!r}: features of shape {tuple(features.shape)}; expected (B, {channels}, "
            f"{spatial_size}, {spatial_size}) (feature_channels, spatial_size, spatial_size)"
        )


class CondLogits(nn.Module):
    """Text-conditional logits: replicate condition to M_d x M_d, concat, k x k conv + BN + LeakyReLU, M_d x M_d conv.

    (B, C, M_d, M_d), (B, N_d) -> (B,)
    """

    def __init__(
        self, feature_channels: int, condition_dim: int, spatial_size: int, kernel_size: int, hidden_channels: int
    ) -> None:
        super().__init__()
        self.condition_dim, self.spatial_size = condition_dim, spatial_size
        self.outlogits = nn.Sequential(
            nn.Conv2d(
                feature_channels + condition_dim, hidden_channels, kernel_size, padding=kernel_size // 2, bias=False
            ),
            nn.BatchNorm2d(hidden_channels),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(hidden_channels, 1, kernel_size=spatial_size, stride=spatial_size),
        )

    def forward(self, features: Tensor, condition: Tensor) -> Tensor:
        if condition is None or condition.dim() != 2 or condition.shape[1] != self.condition_dim:
            shape = None if condition is None else tuple(condition.shape)
            raise ValueError(f"conditional d_head: condition of shape {shape}; expected (B, {self.condition_dim})")
        c = condition[:, :, None, None].expand(-1, -1, self.spatial_size, self.spatial_size)
        return self.outlogits(torch.cat([features, c], dim=1)).view(-1)


class ProjectionLogits(nn.Module):
    """Projection score (Miyato & Koyama, ICLR 2018, Eq. 3): psi(h) + <V c, h>, h = features summed over M_d x M_d.

    (B, C, M_d, M_d), (B, N_d) -> (B,). `outlogits` is psi (Linear C -> 1), `embed` is V (Linear N_d -> C, no
    bias). The text enters as an inner product with the pooled image features, so every feature channel of
    G's image gets a gradient along the caption's direction, where the concat head must first learn a conv
    that mixes text and image (the paper's Sec. 3 and its ImageNet comparison: projection over concat).
    """

    def __init__(self, feature_channels: int, condition_dim: int) -> None:
        super().__init__()
        self.condition_dim = condition_dim
        self.outlogits = nn.Sequential(nn.Linear(feature_channels, 1))
        self.embed = nn.Linear(condition_dim, feature_channels, bias=False)

    def forward(self, features: Tensor, condition: Tensor) -> Tensor:
        if condition is None or condition.dim() != 2 or condition.shape[1] != self.condition_dim:
            shape = None if condition is None else tuple(condition.shape)
            raise ValueError(f"d_head 'projection': condition of shape {shape}; expected (B, {self.condition_dim})")
        h = features.sum(dim=(2, 3))
        return self.outlogits(h).view(-1) + (self.embed(condition) * h).sum(dim=1)


class UncondLogits(nn.Module):
    """Unconditional logits: one M_d x M_d conv to a single node. (B, C, M_d, M_d) -> (B,)"""

    def __init__(self, feature_channels: int, spatial_size: int) -> None:
        super().__init__()
        self.outlogits = nn.Sequential(nn.Conv2d(feature_channels, 1, kernel_size=spatial_size, stride=spatial_size))

    def forward(self, features: Tensor) -> Tensor:
        return self.outlogits(features).view(-1)


class _Head(nn.Module):
    name = ""
    conditional = False
    unconditional = False

    def __init__(
        self,
        *,
        feature_channels: int,
        condition_dim: int | None = None,
        spatial_size: int = 4,
        kernel_size: int = 3,
        hidden_channels: int | None = None,
    ) -> None:
        super().__init__()
        for key, value in (("feature_channels", feature_channels), ("spatial_size", spatial_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"d_head {self.name!r}: {key}={value!r}; expected a positive int")
        if self.conditional and (not isinstance(condition_dim, int) or condition_dim < 1):
            raise ValueError(f"d_head {self.name!r}: condition_dim={condition_dim!r}; expected a positive int")
        if kernel_size not in (1, 3):
            raise ValueError(f"d_head {self.name!r}: kernel_size={kernel_size!r}; expected 1 (paper) or 3 (official)")
        self.feature_channels, self.condition_dim, self.spatial_size = feature_channels, condition_dim, spatial_size
        if self.conditional:
            hidden = hidden_channels or feature_channels
            self.get_cond_logits = self._cond_logits(feature_channels, condition_dim, spatial_size, kernel_size, hidden)
        if self.unconditional:
            self.get_uncond_logits = UncondLogits(feature_channels, spatial_size)

    def _cond_logits(self, feature_channels: int, condition_dim: int, spatial_size: int, kernel_size: int,
                     hidden_channels: int) -> nn.Module:
        """The conditional scorer this head keeps as `get_cond_logits` (the official concat + conv by default)."""
        return CondLogits(feature_channels, condition_dim, spatial_size, kernel_size, hidden_channels)

    def score(self, owner: nn.Module, features: Tensor, condition: Tensor | None) -> DiscriminatorOutput:
        """The logits computed with the layers held by `owner`: this head, or a discriminator that adopted them.

        Reading the layers from `owner` keeps a discriminator's replicas and copies on their own parameters.
        """
        _check_features(self.name, features, self.feature_channels, self.spatial_size)
        return DiscriminatorOutput(
            cond_logits=owner.get_cond_logits(features, condition) if self.conditional else None,
            uncond_logits=owner.get_uncond_logits(features) if self.unconditional else None,
        )

    def forward(self, features: Tensor, condition: Tensor | None = None) -> DiscriminatorOutput:
        return self.score(self, features, condition)


@register("d_head", "vanilla")
class VanillaHead(_Head):
    """Unconditional real/fake score; ignores the condition: (B, C, M_d, M_d) -> uncond_logits (B,)."""

    name, unconditional = "vanilla", True


@register("d_head", "matching_aware")
class MatchingAwareHead(_Head):
    """Text-conditional score (GAN-INT-CLS matching-aware): (B, C, M_d, M_d), (B, N_d) -> cond_logits (B,).

    kernel_size 3 is the official joint conv, 1 the paper's 1x1 conv.
    """

    name, conditional = "matching_aware", True


@register("d_head", "joint")
class JointHead(_Head):
    """Conditional and unconditional scores (official Stage-II D): -> cond_logits (B,), uncond_logits (B,)."""

    name, conditional, unconditional = "joint", True, True


@register("d_head", "projection")
class ProjectionHead(_Head):
    """Projection-discriminator score (Miyato & Koyama 2018): psi(sum-pooled h) + <V condition, h> -> cond_logits (B,).

    Trained by the matching-aware loss like `matching_aware` (real / wrong / fake pairs); not in any paper or
    official preset (the `cpu` profile may select it; the table caption names the head).
    """

    name, conditional = "projection", True

    def _cond_logits(self, feature_channels, condition_dim, spatial_size, kernel_size, hidden_channels):
        return ProjectionLogits(feature_channels, condition_dim)
