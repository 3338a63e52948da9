"""Train one variant: `python -m experiments.train [overrides]`, e.g.

    python -m experiments.train profile=smoke model.conditioning=mixture loss.name=hinge seed=1

Writes the run folder `run_dir` (default outputs/<date>/<time>): config.yaml, status.json, log.jsonl,
samples/, checkpoints/. Running it again with the same `run_dir` resumes (refused, exit 2, when the
config differs in a key that changes the result). Exit code 0 when finished, 3 when the run diverged,
2 for an invalid config, 1 for a bad or unsafe checkpoint file or a full disk (one line naming the file).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from experiments.config import ConfigError, compose


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(hydra_cfg: DictConfig) -> int:
    overrides = list(HydraConfig.get().overrides.task)
    try:
        cfg = compose(overrides)  # validates every name and range; resolves profile=auto
    except ConfigError as error:
        print(f"experiments.train: {error}", file=sys.stderr)
        sys.exit(2)
    from ganblocks.io import NoSpaceError, UnsafeFileError
    from ganblocks.training import train
    from ganblocks.training.checkpoint import CheckpointError
    from ganblocks.training.runconfig import ConfigMismatchError

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        status = train(cfg, run_dir)
    except ConfigMismatchError as error:
        print(f"experiments.train: {error}", file=sys.stderr)
        sys.exit(2)
    except (CheckpointError, UnsafeFileError, NoSpaceError) as error:
        print(f"experiments.train: {error}", file=sys.stderr)
        sys.exit(1)
    print(f"{status['status']}: {run_dir} (status.json, log.jsonl, samples/, checkpoints/)"
          + (f" -- {status['reason']}" if status.get("reason") else ""))
    if status["status"] == "diverged":
        sys.exit(3)
    return 0


if __name__ == "__main__":
    main()
