"""Train one variant: `python -m experiments.train [overrides]`, e.g.

    python -m experiments.train profile=smoke model.conditioning=mixture loss.name=hinge seed=1

Writes the run folder `run_dir` (default outputs/<date>/<time>): config.yaml, status.json, log.jsonl,
samples/, checkpoints/. Running it again with the same `run_dir` resumes. Exit code 0 when finished,
3 when the run diverged, 2 for an invalid config.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from experiments.config import ConfigError, check_command_line, compose


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(hydra_cfg: DictConfig) -> int:
    overrides = list(HydraConfig.get().overrides.task)
    try:
        cfg = compose(overrides)  # validates every name and range; resolves profile=auto
    except ConfigError as error:
        print(f"experiments.train: {error}", file=sys.stderr)
        sys.exit(2)
    from ganblocks.training import train

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    status = train(cfg, run_dir)
    print(f"{status['status']}: {run_dir} (status.json, log.jsonl, samples/, checkpoints/)"
          + (f" -- {status['reason']}" if status.get("reason") else ""))
    if status["status"] == "diverged":
        sys.exit(3)
    return 0


if __name__ == "__main__":
    check_command_line(sys.argv[1:], "experiments.train")  # one clear line, not Hydra's raw error, then exit 2
    main()
