"""Registered GAN losses (`loss` kind): bce (official, non-saturating G), minimax (paper, saturating G), hinge;
and generator regularisers (`regulariser` kind): color_consistency (StackGAN++).
"""

from ganblocks.losses import color  # noqa: F401
from ganblocks.losses.gan import BCELoss, GANLoss, HingeLoss, MinimaxLoss  # noqa: F401
