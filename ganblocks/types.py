"""The records that pass between components: conditioning, generator, discriminator and batch outputs.

They are the only contract between blocks, models, losses and the training loop, so a loss asks a record
for what it needs (a regulariser, the conditional logits) instead of asking which variant produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class ConditioningOutput:
    """What a conditioning block returns for a batch of text embeddings.

    code:        (B, N_g) the condition fed to the generator (a sample, or the mean when the block's
                 `use_mean` switch is on).
    mean:        (B, N_g) the deterministic part; the official D is conditioned on `mean.detach()`.
    regulariser: () scalar the generator loss adds, weighted by the loss's KL weight (0 for `none`).
    stats:       scalar diagnostics to log, e.g. the mixture's component-mean separation.
    """

    code: Tensor
    mean: Tensor
    regulariser: Tensor
    stats: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class GeneratorOutput:
    """What a generator returns.

    image:        (B, 3, H, W) in [-1, 1] at the generator's output resolution.
    cond:         the output of this generator's own conditioning block.
    stage1_image: (B, 3, 64, 64) for a Stage-II generator, the image of its frozen Stage-I; else None.
    images:       for a tree generator (StackGAN-v2), the image of every branch, lowest resolution first
                  ((B, 3, 64, 64), (B, 3, 128, 128), ...; the last is `image`), all with gradients; None for
                  a single-output generator.
    """

    image: Tensor
    cond: ConditioningOutput
    stage1_image: Tensor | None = None
    images: tuple[Tensor, ...] | None = None


@dataclass
class DiscriminatorOutput:
    """Raw logits (no sigmoid) from a discriminator head; a head fills what it has.

    cond_logits:   (B,) text-conditional (matching-aware) logits, or None for an unconditional head.
    uncond_logits: (B,) unconditional real/fake logits, or None for a purely conditional head.
    """

    cond_logits: Tensor | None = None
    uncond_logits: Tensor | None = None


@dataclass
class Batch:
    """One training batch, already on the training device.

    images:           (B, 3, S, S) float in [-1, 1], randomly cropped and flipped.
    embeddings:       (B, D) text embedding of one caption of each image.
    wrong_embeddings: (B, D) embeddings of mismatched captions (other class, or the batch shifted by one).
    class_ids:        (B,) int64 class of each image.
    indices:          (B,) int64 dataset index of each image.
    caption_ids:      (B,) int64 which of the image's captions `embeddings` holds.
    """

    images: Tensor
    embeddings: Tensor
    wrong_embeddings: Tensor
    class_ids: Tensor
    indices: Tensor
    caption_ids: Tensor

    def to(self, device, non_blocking: bool = True) -> "Batch":
        return Batch(**{k: v.to(device, non_blocking=non_blocking) for k, v in self.__dict__.items()})

    def __len__(self) -> int:
        return int(self.images.shape[0])
