"""Text transforms (`text_transform` registry): what the generator is given besides the batch's own captions.

Contract (every registered `text_transform`): keyword construction; `__call__(text (B, D), noise (B, N_z))
-> (text (B', D), noise (B', N_z))` with B' >= B and the first B rows the inputs unchanged, so the training
step scores rows [:B] against real images and trains G on all B' rows. The step calls the transform the
same way whichever is configured (`loss.text_transform`), so GAN-INT is data, not a branch of the loop.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganblocks.registry import register


@register("text_transform", "none")
class NoTextTransform:
    """No transform: G draws from the batch's captions only (the default)."""

    def __call__(self, text: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
        return text, noise


@register("text_transform", "gan_int")
class GanInt:
    """GAN-INT (Reed et al., ICML 2016): G also draws from interpolations of caption pairs: (B, D) -> (2B, D).

    The extra rows are beta * t_i + (1 - beta) * t_{i-1} (the batch rolled by one), each with fresh noise,
    appended to the batch so that they share its forward pass and BatchNorm statistics, as Reed et al.'s
    released main_cls_int.lua batches them. They have no real image: D sees them only through G's loss.

    Args:
        beta: interpolation weight in [0, 1] (the paper's 0.5).
    """

    def __init__(self, *, beta: float = 0.5) -> None:
        beta = float(beta)
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"text_transform 'gan_int': beta={beta}; expected a number in [0, 1] (paper 0.5)")
        self.beta = beta

    def __call__(self, text: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
        mixed = self.beta * text + (1 - self.beta) * text.roll(1, dims=0)
        extra = torch.randn(text.shape[0], noise.shape[1], device=noise.device)
        return torch.cat([text, mixed]), torch.cat([noise, extra])
