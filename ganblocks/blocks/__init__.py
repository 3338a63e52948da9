"""Registered building blocks: up-sampling, residual, down-sampling, conditioning, discriminator heads, tree stages.

Importing this package registers them all (see `ganblocks.registry`).
"""

from ganblocks.blocks import conditioning, d_heads, downsample, glu_stages, init, residual, upsample  # noqa: F401
from ganblocks.blocks.conditioning import gaussian_kl, set_use_mean  # noqa: F401
from ganblocks.blocks.init import init_weights_  # noqa: F401
