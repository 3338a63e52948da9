"""Before Hydra starts a training run: check the overrides, and give every torchrun rank one run folder.

`@hydra.main` creates the run folder (`.hydra/` and a log file) before the task function runs, and each
process computes it from `run_dir: outputs/${now:%Y-%m-%d}/${now:%H-%M-%S}` on its own clock. Two things
follow, and `experiments.train` handles both here, before handing its arguments to Hydra:

- A refused config must leave no folder: `prepare_argv` composes and validates the overrides first (a
  `ConfigError` names the bad key and what is accepted), so Hydra never starts on a bad config.
- Under torchrun (WORLD_SIZE > 1) ranks that start a second apart would pick different folders: rank 0
  resolves `run_dir` and broadcasts it over the default process group (initialised here, then reused by
  training), and every rank passes `run_dir=<rank 0's folder>` to Hydra.

`remove_if_empty` is the fallback for the paths that skip the check (Hydra flags such as `--multirun`): a
run folder holding only what Hydra put there is removed when the config is refused inside the task.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Sequence

HYDRA_FILES = (".hydra",)  # plus the job's log file (<task>.log), when empty


def _key(arg: str) -> str:
    return arg.split("=", 1)[0].lstrip("+~")


def is_hydra_setting(arg: str) -> bool:
    """`hydra.run.dir=...`, `hydra/launcher=...`: settings of Hydra itself, not of the run's config."""
    key = _key(arg)
    return key.startswith("hydra.") or key.startswith("hydra/")


def prepare_argv(argv: Sequence[str], compose_fn: Callable | None = None) -> list[str]:
    """Validate `argv`'s overrides and, under torchrun, pin `run_dir` to rank 0's choice.

    Args:
        argv: the command's arguments (Hydra overrides). With any flag (`-m`, `--cfg job`, ...) they are
            returned unchanged: Hydra handles those itself.
        compose_fn: `experiments.config.compose` (a seam for tests).

    Returns:
        The arguments to hand to Hydra: `argv`, plus `run_dir=<folder>` when WORLD_SIZE > 1 and neither
        `run_dir=` nor `hydra.run.dir=` was given.

    Raises:
        experiments.config.ConfigError: an unknown key, group option or registry name, or a bad value; a
            run_dir that cannot be a folder (`check_run_dir`).
        ganblocks.io.NoSpaceError: the disk that would hold run_dir is full.
    """
    argv = list(argv)
    if any(a.startswith("-") for a in argv):
        return argv
    if compose_fn is None:
        from experiments.config import compose as compose_fn
    cfg = compose_fn([a for a in argv if not is_hydra_setting(a)])
    if not any(_key(a).startswith("hydra.run.dir") for a in argv):
        check_run_dir(str(cfg.run_dir))
    chosen = any(_key(a) in ("run_dir", "hydra.run.dir") for a in argv)
    if chosen or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return argv
    return argv + [f"run_dir={agree_across_ranks(str(cfg.run_dir))}"]


MIN_FREE_BYTES = 1 << 20  # Hydra writes ~10 kB (.hydra/) into run_dir before the task runs


def check_run_dir(run_dir: str) -> None:
    """Refuse a run_dir Hydra could not create, before Hydra tries (its error would be a raw traceback).

    Raises:
        experiments.config.ConfigError: a file stands where run_dir or one of its parents should be.
        ganblocks.io.NoSpaceError: the file system of its nearest existing folder has < 1 MiB free.
    """
    import errno

    from experiments.config import ConfigError
    from ganblocks.io import no_space_error

    path = Path(os.path.abspath(run_dir))
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"run_dir={run_dir!r} cannot be a folder: {existing} is a file; give another run_dir=")
    stat = os.statvfs(existing)
    if stat.f_bavail * stat.f_frsize < MIN_FREE_BYTES:
        raise no_space_error(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))


def agree_across_ranks(value: str) -> str:
    """Rank 0's `value` on every rank, broadcast over the default process group (created if missing).

    The group is the one training uses (`ganblocks.training.distributed`: nccl on CUDA, gloo on CPU, from the
    torchrun environment RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT); training finds it initialised.
    """
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))  # nccl objects travel on this GPU
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def remove_if_empty(run_dir: str | os.PathLike, stop_at: str | os.PathLike | None = None) -> bool:
    """Remove `run_dir` when it holds only Hydra's `.hydra/` and empty log files; then its empty parents.

    Parents are removed up to (not including) `stop_at` (default: the current folder), and only while empty,
    so `outputs/<date>/` goes when its one run was refused but stays beside other runs.

    Returns:
        True when `run_dir` was removed.
    """
    run_dir = Path(run_dir).resolve()
    if not run_dir.is_dir():
        return False
    for entry in run_dir.iterdir():
        if entry.name in HYDRA_FILES:
            continue
        if entry.suffix == ".log" and entry.is_file() and entry.stat().st_size == 0:
            continue
        return False
    shutil.rmtree(run_dir)
    stop = Path(stop_at or Path.cwd()).resolve()
    parent = run_dir.parent
    while parent != stop and stop in parent.parents and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent
    return True
