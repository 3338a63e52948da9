"""The joint conditional + unconditional BCE loss of StackGAN++, weighted as hanzhanggit/StackGAN-v2 does it.

Applied per scale (one D per branch; the tree's generator loss is the sum over scales). With a head that
fills both logits (`joint`), code/trainer.py `train_Dnet` / `train_Gnet` compute

    D: [real_c + u * real_u] + [wrong_c + u * wrong_u] + [fake_c + u * fake_u]
    G: gen_c + u * gen_u  (+ kl_weight * regulariser)

with u = TRAIN.COEFF.UNCOND_LOSS (1.0 in birds_3stages.yml) and every term a BCE over sigmoid logits. The
unconditional logit of a wrong pair is labelled *real*: that image is a real one, only its pairing with the
text is wrong. Unlike StackGAN-v1's weighting (`bce`: (real + uncond_real) / 2 + (fake + wrong +
uncond_fake) / 3), nothing is averaged. A conditional-only head gets real + 0.5 * (wrong + fake), an
unconditional-only head real + fake, as that code does when a D returns one logit (or u = 0).
"""

from __future__ import annotations

from torch import Tensor

from ganblocks.losses.gan import BCELoss, _probability_mean
from ganblocks.registry import register
from ganblocks.types import DiscriminatorOutput


@register("loss", "bce_v2")
class JointBCELoss(BCELoss):
    """StackGAN++ joint BCE: D real + wrong + fake, each conditional + u * unconditional (wrong's unconditional as real).

    Args:
        kl_weight: weight of the conditioning regulariser (official COEFF.KL 2.0).
        uncond_weight: u, the unconditional terms' weight (official COEFF.UNCOND_LOSS 1.0).
    """

    def __init__(self, kl_weight: float = 1.0, uncond_weight: float = 1.0) -> None:
        super().__init__(kl_weight)
        uncond_weight = float(uncond_weight)
        if not uncond_weight >= 0.0:
            raise ValueError(f"loss 'bce_v2': uncond_weight must be >= 0 (official 1.0); got {uncond_weight}")
        self.uncond_weight = uncond_weight

    def discriminator(
        self, real: DiscriminatorOutput, wrong: DiscriminatorOutput | None, fake: DiscriminatorOutput
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """As `GANLoss.discriminator`, with the StackGAN-v2 weighting when both logits are filled."""
        if real.cond_logits is None or real.uncond_logits is None or fake.uncond_logits is None:
            return super().discriminator(real, wrong, fake)  # one head: the v2 code weights it as v1 does
        u = self.uncond_weight
        if u == 0:  # the v2 code then takes the conditional logits only: real + 0.5 * (wrong + fake)
            cond = lambda out: None if out is None else DiscriminatorOutput(cond_logits=out.cond_logits)  # noqa: E731
            return super().discriminator(cond(real), cond(wrong), cond(fake))
        loss = self.real_term(real.cond_logits.float()) + u * self.real_term(real.uncond_logits.float())
        loss = loss + self.fake_term(fake.cond_logits.float()) + u * self.fake_term(fake.uncond_logits.float())
        stats = {"d_real": _probability_mean(real.cond_logits), "d_fake": _probability_mean(fake.cond_logits),
                 "d_real_uncond": _probability_mean(real.uncond_logits),
                 "d_fake_uncond": _probability_mean(fake.uncond_logits)}
        if wrong is not None and wrong.cond_logits is not None:
            loss = loss + self.fake_term(wrong.cond_logits.float())
            stats["d_wrong"] = _probability_mean(wrong.cond_logits)
            if wrong.uncond_logits is not None:
                loss = loss + u * self.real_term(wrong.uncond_logits.float())
        stats["loss_d"] = loss.detach()
        return loss, stats

    def generator(self, fake: DiscriminatorOutput, regulariser: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """gen_c + u * gen_u + kl_weight * regulariser (a head's missing logits contribute nothing)."""
        terms = []
        if fake.cond_logits is not None:
            terms.append(self.generator_term(fake.cond_logits.float()))
        if fake.uncond_logits is not None:
            terms.append(self.uncond_weight * self.generator_term(fake.uncond_logits.float()))
        if not terms:
            raise ValueError("a DiscriminatorOutput has neither cond_logits nor uncond_logits")
        adversarial = sum(terms)
        regulariser = regulariser.float()
        loss = adversarial + self.kl_weight * regulariser
        return loss, {"loss_g_adv": adversarial.detach(), "kl": regulariser.detach(), "loss_g": loss.detach()}
