"""Registered GAN losses (`loss` kind): bce (official, non-saturating G), minimax (paper, saturating G), hinge."""

from ganblocks.losses.gan import BCELoss, GANLoss, HingeLoss, MinimaxLoss  # noqa: F401
from ganblocks.losses import damsm  # noqa: F401  (DAMSM matching loss, registry kind `damsm`)
