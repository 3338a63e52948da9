"""Adversarial losses of the StackGAN family, over `DiscriminatorOutput` logits.

Every loss combines the same matching-aware terms (GAN-INT-CLS): a discriminator sees (real image, right
text) as real, and (real image, wrong text) and (generated image, its text) as fake. What a head returns
decides which terms exist: a conditional head (`cond_logits`) gives the real/wrong/fake terms, an
unconditional head (`uncond_logits`) gives real/fake terms; the loss branches on `None`, never on names.

Weights follow the official StackGAN-Pytorch code (`compute_discriminator_loss`):
    conditional head only:   real + 0.5 * (wrong + fake)
    both heads:              (real + uncond_real) / 2 + (fake + wrong + uncond_fake) / 3
    unconditional head only: uncond_real + uncond_fake
and the generator adds `kl_weight * regulariser` of its conditioning block (paper 1.0, official 2.0).

A loss family only defines three per-logit terms (`real_term`, `fake_term`, `generator_term`); the
weighting above is shared. Losses are computed in float32 even under bf16 autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ganblocks.registry import register
from ganblocks.types import DiscriminatorOutput

__all__ = ["GANLoss", "BCELoss", "MinimaxLoss", "HingeLoss"]


def _probability_mean(logits: Tensor) -> Tensor:
    """Mean of sigmoid(logits), detached: what D 'believes' on average, for logging."""
    return torch.sigmoid(logits.detach().float()).mean()


class GANLoss:
    """Base of the registered GAN losses: shared matching-aware weighting over per-logit terms.

    Args:
        kl_weight: weight of the conditioning block's regulariser in the generator loss
            (paper 1.0, official COEFF.KL 2.0). Must be >= 0.
    """

    def __init__(self, kl_weight: float = 1.0) -> None:
        kl_weight = float(kl_weight)
        if not kl_weight >= 0.0:
            raise ValueError(f"loss kl_weight must be >= 0 (paper 1.0, official 2.0); got {kl_weight}")
        self.kl_weight = kl_weight

    # Per-logit terms: (B,) logits -> () scalar. Subclasses define them.
    def real_term(self, logits: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define real_term")

    def fake_term(self, logits: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define fake_term")

    def generator_term(self, logits: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define generator_term")

    def discriminator(
        self,
        real: DiscriminatorOutput,
        wrong: DiscriminatorOutput | None,
        fake: DiscriminatorOutput,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Discriminator loss and detached diagnostics.

        Args:
            real:  D on (real image, right text).
            wrong: D on (real image, wrong text); None when the run has no mismatched pairs. Only its
                `cond_logits` are used (an unconditional score of a real image is not a negative).
            fake:  D on (generated image, its text).

        Returns:
            (loss () float32, stats {"d_real", "d_wrong", "d_fake", ...: () tensors, detached}).
        """
        stats: dict[str, Tensor] = {}
        has_cond = real.cond_logits is not None
        has_uncond = real.uncond_logits is not None
        if has_cond != (fake.cond_logits is not None) or has_uncond != (fake.uncond_logits is not None):
            raise ValueError("discriminator outputs for real and fake images fill different heads")
        if not (has_cond or has_uncond):
            raise ValueError("a DiscriminatorOutput has neither cond_logits nor uncond_logits")

        if has_cond:
            real_c = self.real_term(real.cond_logits.float())
            fake_c = self.fake_term(fake.cond_logits.float())
            stats["d_real"] = _probability_mean(real.cond_logits)
            stats["d_fake"] = _probability_mean(fake.cond_logits)
            wrong_c = None
            if wrong is not None and wrong.cond_logits is not None:
                wrong_c = self.fake_term(wrong.cond_logits.float())
                stats["d_wrong"] = _probability_mean(wrong.cond_logits)
        if has_uncond:
            real_u = self.real_term(real.uncond_logits.float())
            fake_u = self.fake_term(fake.uncond_logits.float())
            stats["d_real_uncond"] = _probability_mean(real.uncond_logits)
            stats["d_fake_uncond"] = _probability_mean(fake.uncond_logits)

        if has_cond and has_uncond:
            negatives = [fake_c, fake_u] + ([wrong_c] if wrong_c is not None else [])
            loss = (real_c + real_u) / 2 + sum(negatives) / len(negatives)
        elif has_cond:
            loss = real_c + (0.5 * (wrong_c + fake_c) if wrong_c is not None else fake_c)
        else:
            loss = real_u + fake_u
            stats["d_real"] = stats["d_real_uncond"]
            stats["d_fake"] = stats["d_fake_uncond"]
        stats["loss_d"] = loss.detach()
        return loss, stats

    def generator(self, fake: DiscriminatorOutput, regulariser: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Generator loss: the adversarial term of every head D filled, plus the weighted regulariser.

        Args:
            fake: D on (generated image, its text), computed with gradients flowing to G.
            regulariser: () the conditioning block's regulariser (the CA KL term; 0 for `none`).

        Returns:
            (loss () float32, stats {"loss_g_adv", "kl", "loss_g"}, detached).
        """
        terms = [self.generator_term(l.float()) for l in (fake.cond_logits, fake.uncond_logits) if l is not None]
        if not terms:
            raise ValueError("a DiscriminatorOutput has neither cond_logits nor uncond_logits")
        adversarial = sum(terms)
        regulariser = regulariser.float()
        loss = adversarial + self.kl_weight * regulariser
        return loss, {"loss_g_adv": adversarial.detach(), "kl": regulariser.detach(), "loss_g": loss.detach()}


@register("loss", "bce")
class BCELoss(GANLoss):
    """Official StackGAN BCE: D log-loss; G the non-saturating BCE(D(fake), 1) the official code uses."""

    def real_term(self, logits: Tensor) -> Tensor:
        return F.softplus(-logits).mean()  # BCE(sigmoid(x), 1)

    def fake_term(self, logits: Tensor) -> Tensor:
        return F.softplus(logits).mean()  # BCE(sigmoid(x), 0)

    def generator_term(self, logits: Tensor) -> Tensor:
        return F.softplus(-logits).mean()  # non-saturating: -log D(G(z))


@register("loss", "minimax")
class MinimaxLoss(BCELoss):
    """The paper's equations literally: G minimises log(1 - D(G(z))), the saturating form."""

    def generator_term(self, logits: Tensor) -> Tensor:
        return -F.softplus(logits).mean()  # log(1 - sigmoid(x))


@register("loss", "hinge")
class HingeLoss(GANLoss):
    """Hinge loss (SAGAN/BigGAN): D relu(1 - real) + relu(1 + fake); G -D(G(z))."""

    def real_term(self, logits: Tensor) -> Tensor:
        return F.relu(1.0 - logits).mean()

    def fake_term(self, logits: Tensor) -> Tensor:
        return F.relu(1.0 + logits).mean()

    def generator_term(self, logits: Tensor) -> Tensor:
        return -logits.mean()
