"""One launcher job: `python -m ablations.job launch=DIR/launch.json index=K [gpus=G]` runs run K of a grid.

`python -m ablations.run ... launcher=joblib|submitit_slurm|submitit_local` starts these as a Hydra
multirun (`--multirun hydra/launcher=... index=0,1,...`), after it validated every run and while it
holds the out_dir lock. The seams named in launch.json are loaded only when they are the defaults or
allowed by $GANBLOCKS_TRUSTED_FNS (the launcher sets it from the names it was given). Each job holds its own run folder's lock, trains and evaluates its run, and appends
its rows to DIR/results.jsonl, so jobs on any machine sharing the folder add up to one table.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

from ablations.grids import expand, load_grid
from ablations.runner import run_spec
from ablations.settings import Settings, git_sha, load_fn


def assign_gpu(job_num: int, gpus: int) -> str | None:
    """Pin this job to GPU `job_num % gpus` through CUDA_VISIBLE_DEVICES (before CUDA starts).

    In a process where CUDA already started (a launcher worker reused for a second job), the variable no
    longer has an effect; the job keeps the GPU the worker was pinned to, which is still one job per GPU
    when the launcher runs at most `gpus` jobs at a time.
    """
    if gpus <= 0:
        return None
    import torch

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if torch.cuda.is_initialized() or os.environ.get("GANBLOCKS_JOB_GPU_PINNED"):
        return visible
    ids = visible.split(",") if visible else [str(i) for i in range(gpus)]
    chosen = ids[job_num % min(gpus, len(ids))]
    os.environ["CUDA_VISIBLE_DEVICES"] = chosen
    os.environ["GANBLOCKS_JOB_GPU_PINNED"] = "1"
    return chosen


def run_job(launch_path: str | Path, index: int, job_num: int = 0, gpus: int = 0) -> str:
    """Run run `index` of the grid in `launch_path`; returns its status."""
    manifest = json.loads(Path(launch_path).read_text())
    settings = Settings.from_json(manifest)
    specs = expand(load_grid(settings.grid), settings.out_dir, settings.profile, settings.seeds, settings.only, settings.overrides)
    if not 0 <= index < len(specs):
        raise IndexError(f"index={index} (from index=) is outside the grid's runs 0..{len(specs) - 1}")
    spec = specs[index]
    gpu = assign_gpu(job_num, gpus)
    fns = {role: load_fn(getattr(settings, role), role, source=launch_path)  # names from a file: checked
           for role in ("compose_fn", "train_fn", "evaluate_fn")}
    cfg = fns["compose_fn"](list(spec.overrides))
    head = f"[job {job_num}{'' if gpu is None else f', GPU {gpu}'}] {spec.grid} {spec.variant} seed={spec.seed}"
    print(f"{head}: running in {spec.run_dir}", flush=True)
    status = run_spec(spec, cfg, settings, fns["train_fn"], fns["evaluate_fn"], git_sha())
    print(f"{head}: {status}", flush=True)
    return status


@hydra.main(version_base="1.3", config_path="conf", config_name="job")
def main(cfg: DictConfig) -> str:
    from hydra.core.hydra_config import HydraConfig

    num = HydraConfig.get().job.get("num", 0) or 0
    return run_job(cfg.launch, int(cfg.index), job_num=int(num), gpus=int(cfg.gpus))


if __name__ == "__main__":
    main()
