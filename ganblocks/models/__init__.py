"""Registered generators and discriminators (Stage-I, Stage-II, one-stage baselines, the StackGAN++ tree) and
their presets.

Importing this package registers them all (see `ganblocks.registry`).
"""

from ganblocks.models import attngan, attngan_packed, baselines, presets, stackgan_v2, stage1, stage2  # noqa: F401
from ganblocks.models.presets import (  # noqa: F401
    PRESETS,
    build_discriminator,
    build_generator,
    build_tree_discriminators,
    discriminator_kwargs,
    generator_kwargs,
    regulariser_kwargs,
)
