"""Train one variant: `python -m experiments.train [group=option ...] [key=value ...]`.

Writes the run folder `run_dir` (default outputs/<date>/<time>): config.yaml, status.json, log.jsonl,
samples/, checkpoints/. Running it again with the same `run_dir` resumes (refused, exit 2, when the
config differs in a key that changes the result). Exit code 0 when finished, 3 when the run diverged,
2 for an invalid config or a device this machine lacks (checked before anything is written: no folder is
left), 1 for bad or missing data, a bad or unsafe checkpoint file or a full disk (one line naming the file).
Under torchrun, rank 0 chooses the run folder for every rank and prints the run's status; the other ranks
print `rank K: done`.

Examples:
  python -m experiments.train profile=smoke                       # CPU: proves the pipeline in ~1 min
  python -m experiments.train profile=smoke model.conditioning=mixture loss.name=hinge seed=1
  python -m experiments.train pipeline=stage1 run_dir=outputs/s1  # run again to resume
  python -m experiments.train profile=small --cfg job             # print the composed config, train nothing
  torchrun --nproc_per_node=2 -m experiments.train profile=small  # DDP: batch per GPU, a data shard per rank
"""

from __future__ import annotations

import os
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
        from experiments.launch import remove_if_empty

        remove_if_empty(HydraConfig.get().runtime.output_dir)  # Hydra made it; a refused config leaves none
        print(f"experiments.train: {error}", file=sys.stderr)
        sys.exit(2)
    from experiments.launch import remove_if_empty
    from ganblocks.data.dataset import DatasetError
    from ganblocks.io import NoSpaceError, UnsafeFileError
    from ganblocks.training import train
    from ganblocks.training.checkpoint import CheckpointError
    from ganblocks.training.build import DeviceError
    from ganblocks.training.runconfig import ConfigMismatchError

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        status = train(cfg, run_dir)
    except (ConfigMismatchError, DeviceError) as error:
        remove_if_empty(run_dir)  # a device this machine lacks is refused before anything is written
        print(f"experiments.train: {error}", file=sys.stderr)
        sys.exit(2)
    except (CheckpointError, UnsafeFileError, NoSpaceError, DatasetError) as error:
        print(f"experiments.train: {error}", file=sys.stderr)
        sys.exit(1)
    line, code = outcome(status, run_dir, int(os.environ.get("RANK", "0")))
    print(line)
    if code:
        sys.exit(code)
    return 0


def outcome(status: dict, run_dir: Path, rank: int = 0) -> tuple[str, int]:
    """The closing line and exit code of a run: `finished: RUN (...)` 0, `diverged: ...` 3, `running: ...` 0
    (paused by stop_after).

    Under torchrun only rank 0 writes status.json, so only it reports the status; another rank may read
    the file before rank 0 has written its end (a stale `running`) or hold no status at all, and says so.
    """
    if rank > 0:
        return f"rank {rank}: done; rank 0 reports the status of {run_dir}", 0
    line = (f"{status['status']}: {run_dir} (status.json, log.jsonl, samples/, checkpoints/)"
            + (f" -- {status['reason']}" if status.get("reason") else ""))
    return line, 3 if status["status"] == "diverged" else 0


def usage() -> str:
    from experiments.usage import CONF_DIR, config_groups, render, yaml_options

    return render(__doc__, [
        ("Config groups (group=option)", config_groups()),
        ("Options (key=value; the defaults before a profile or preset changes them)",
         yaml_options(CONF_DIR / "config.yaml")),
        ("Hydra", "  --cfg job prints the composed config; --hydra-help lists Hydra's own flags"),
    ])


def cli(argv: list[str] | None = None) -> None:
    """Answer --help, refuse a bad config before Hydra makes a folder, agree on run_dir under torchrun."""
    from experiments.launch import prepare_argv
    from experiments.usage import wants_help
    from ganblocks.io import NoSpaceError

    argv = list(sys.argv[1:] if argv is None else argv)
    if wants_help(argv):
        print(usage(), end="")
        sys.exit(0)
    try:
        sys.argv[1:] = prepare_argv(argv)
    except ConfigError as error:
        print(f"experiments.train: {error}", file=sys.stderr)
        sys.exit(2)
    except NoSpaceError as error:  # the disk for run_dir is full, found before Hydra writes there
        print(f"experiments.train: {error}", file=sys.stderr)
        sys.exit(1)
    main()


if __name__ == "__main__":
    cli()
