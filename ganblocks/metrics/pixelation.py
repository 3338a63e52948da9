"""Pixelation: high-frequency artifacts of generated images relative to real ones at the same resolution.

Nearest-neighbour up-sampling leaves blocky edges (spectral replicas of the low frequencies) that put extra
energy in the top frequency band; bilinear and bicubic up-sampling are meant to reduce it. The measure is the
share of spectral energy above half the Nyquist frequency, generated over real (1 = like real images; above 1 =
more high-frequency artifacts; below 1 = over-smooth).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganblocks.metrics.base import EvalSamples, caption_se
from ganblocks.registry import register

LUMA = (0.299, 0.587, 0.114)


def high_frequency_share(images: Tensor, band: float = 0.5) -> Tensor:
    """Per image, the share of (mean-removed) luma power above `band` x Nyquist (on either axis).

    (N, 3, S, S) uint8 or float -> (N,).
    """
    x = images.double()
    luma = sum(w * x[:, c] for c, w in enumerate(LUMA))
    luma = luma - luma.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(luma).abs() ** 2
    size = luma.shape[-1]
    freq = torch.fft.fftfreq(size, dtype=torch.double).abs() / 0.5  # 0 .. 1 (Nyquist)
    radius = torch.maximum(freq[:, None], freq[None, :])
    total = power.sum(dim=(-2, -1)).clamp(min=1e-12)
    return (power * (radius > band)).sum(dim=(-2, -1)) / total


@register("metric", "pixelation")
class Pixelation:
    """High-frequency energy share of generated images over that of real images at the same resolution
    (1 = as real; > 1 = blocky artifacts; < 1 = over-smooth); its std is the standard error over captions."""

    def __init__(self, band: float = 0.5) -> None:
        if not 0 < band < 1:
            raise ValueError(f"pixelation: band={band} must be in (0, 1) (a fraction of the Nyquist frequency)")
        self.band = band

    def __call__(self, samples: EvalSamples) -> dict[str, dict]:
        if samples.real is None:
            raise ValueError("pixelation needs real images at the generated resolution (EvalSamples.real is None)")
        fake_high = high_frequency_share(samples.fake, self.band)
        real_high = high_frequency_share(samples.real, self.band)
        ratio = fake_high / real_high.mean().clamp(min=1e-12)
        se, n_captions = caption_se(ratio, samples.fake_caption_ids)
        return {"pixelation": samples.record(
            ratio.mean(), se, len(ratio), n_captions, accuracy=None, std_over="captions",
            n_real=len(samples.real), band=self.band, fake_high=float(fake_high.mean()),
            real_high=float(real_high.mean()))}
