"""Colour-consistency regulariser of StackGAN++ (StackGAN-v2): the pixels of adjacent scales keep their colours.

For each pair of adjacent branch images (lower scale s-1, higher scale s), the per-image channel mean
mu (B, 3) and the channel covariance Sigma (B, 3, 3) over pixels are matched:

    L = weight * sum_s [ mean_weight * MSE(mu_s, mu_{s-1}) + covariance_weight * MSE(Sigma_s, Sigma_{s-1}) ]

with MSE the mean over all elements and the lower scale detached (it is the target; only the higher branch
is pulled). Weights as hanzhanggit/StackGAN-v2 code/trainer.py (`train_Gnet`, `compute_mean_covariance`):
mean_weight 1, covariance_weight 5, and `weight` = TRAIN.COEFF.COLOR_LOSS (50.0 in its *_color configs,
0.0, i.e. off, in birds_3stages.yml). That code matches the pairs (last, second last) and (second last,
third last), i.e. every adjacent pair of a tree with up to three branches; so does this one, for any count.
"""

from __future__ import annotations

from typing import Sequence

import torch.nn.functional as F
from torch import Tensor

from ganblocks.registry import register


def mean_covariance(images: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image channel mean (B, C) and channel covariance over pixels (B, C, C) of (B, C, H, W) images.

    The covariance divides by the number of pixels H * W (not H * W - 1), as the official code does.
    """
    if images.dim() != 4:
        raise ValueError(f"mean_covariance: images of shape {tuple(images.shape)}; expected (B, C, H, W)")
    flat = images.flatten(2)  # (B, C, H*W)
    mu = flat.mean(dim=2)
    centred = flat - mu.unsqueeze(2)
    return mu, centred @ centred.transpose(1, 2) / flat.shape[2]


@register("regulariser", "color_consistency")
class ColorConsistency:
    """StackGAN++ colour consistency: match pixel mean and covariance of each branch image to the one below it.

    Contract (every registered `regulariser`): keyword construction (plus the run's objects named in a class's
    `context_keys`, e.g. the text encoder); `__call__(images: sequence of (B, 3, S_k, S_k) tensors, lowest
    scale first, text=G's text (B, D), class_ids=(B,)) -> (loss () float32, stats {name: () detached})`.
    This one ignores text and classes. Fewer than two images give a zero loss.

    Args:
        weight: overall weight (official TRAIN.COEFF.COLOR_LOSS: 50.0 when on).
        mean_weight: weight of the mean term (official 1.0).
        covariance_weight: weight of the covariance term (official 5.0).
    """

    def __init__(self, *, weight: float = 50.0, mean_weight: float = 1.0, covariance_weight: float = 5.0) -> None:
        for name, value in (("weight", weight), ("mean_weight", mean_weight), ("covariance_weight", covariance_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"regulariser 'color_consistency': {name}={value!r}; expected a number >= 0")
        self.weight, self.mean_weight = float(weight), float(mean_weight)
        self.covariance_weight = float(covariance_weight)

    def __call__(self, images: Sequence[Tensor], text: Tensor | None = None,
                 class_ids: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        if len(images) == 0:
            raise ValueError("regulariser 'color_consistency': no images; expected the branch images, lowest first")
        mean_term = cov_term = images[0].new_zeros((), dtype=images[0].dtype).float()
        for lower, higher in zip(images[:-1], images[1:]):
            if lower.shape[:2] != higher.shape[:2]:
                raise ValueError(f"regulariser 'color_consistency': images of shapes {tuple(lower.shape)} and "
                                 f"{tuple(higher.shape)}; expected the same batch and channels at every scale")
            mu_low, cov_low = mean_covariance(lower.detach().float())
            mu_high, cov_high = mean_covariance(higher.float())
            mean_term = mean_term + F.mse_loss(mu_high, mu_low)
            cov_term = cov_term + F.mse_loss(cov_high, cov_low)
        mean_term = self.weight * self.mean_weight * mean_term
        cov_term = self.weight * self.covariance_weight * cov_term
        loss = mean_term + cov_term
        return loss, {"color_mean": mean_term.detach(), "color_cov": cov_term.detach(), "loss_color": loss.detach()}
