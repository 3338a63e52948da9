"""Training: the two-stage loop with checkpoints, exact resume and divergence handling; load_generator()."""

from ganblocks.training.loop import load_generator, train  # noqa: F401
