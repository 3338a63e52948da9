"""Registered GAN losses (`loss` kind): bce (official, non-saturating G), minimax (paper, saturating G), hinge,
bce_v2 (StackGAN++'s joint weighting); and generator regularisers (`regulariser` kind): color_consistency, damsm_sentence.
"""

from ganblocks.losses import color  # noqa: F401
from ganblocks.losses import damsm_sentence  # noqa: F401  (regulariser: AttnGAN's sentence DAMSM term)
from ganblocks.losses.gan import BCELoss, GANLoss, HingeLoss, MinimaxLoss  # noqa: F401
from ganblocks.losses.gan_v2 import JointBCELoss  # noqa: F401
from ganblocks.losses import damsm  # noqa: F401  (DAMSM matching loss, registry kind `damsm`)
