"""Training: `train(cfg, run_dir)` (build.py) fills `training_loop` (loop.py), which runs `train_step` (step.py)
over every stage; checkpoints, exact resume and divergence handling; load_generator()."""

from ganblocks.training.build import train  # noqa: F401
from ganblocks.training.checkpoint import load_generator  # noqa: F401
