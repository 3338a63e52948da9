"""The training loop: every stage of a pipeline in order, `step.train_step` per batch, with checkpoints and logs.

    status = training_loop(run_dir=..., stages=["stage1", "stage2"], build_stage=make, log_every=50, ...)

The loop takes explicit arguments (NVlabs/edm's training_loop is the model); `build.train(cfg, run_dir)`
fills them from a composed config, so the library trains without Hydra. It never asks which variant it
trains: a stage is a `step.Stage` (a generator and its (scale, discriminator, loss) pairs), built by the
caller's `build_stage(index)`, which also restores it from its newest good checkpoint.

Run folder: config.yaml (written by `build.train`), status.json, log.jsonl, samples/<stage>_<step>.png
(captioned sheets), checkpoints/<stage>/{last,previous,final,diverged}.pt (each with a .pt.json size +
sha256 sidecar), tensorboard/ (when a TensorBoard logger is given). A resume cuts log.jsonl back to the
restored step, so the log holds each (stage, step) once, as an uninterrupted run's. On CUDA the loop reads
the device's sums only every `log_every` steps (its only host syncs); on CPU it checks every step.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from ganblocks.io import append_jsonl
from ganblocks.training.checkpoint import cut_log, remove_checkpoint, write_stage_checkpoint
from ganblocks.training.distributed import Distributed
from ganblocks.training.samples import write_samples
from ganblocks.training.state import read_status, write_status
from ganblocks.training.step import Stage, train_step


def training_loop(
    *,
    run_dir: str | os.PathLike,                 # Run folder: status.json, log.jsonl, samples/, checkpoints/<stage>/.
    stages: Sequence[str],                      # The pipeline's stage names, trained in this order.
    build_stage: Callable[[int], Stage],        # Builds stage `index` (data, models, optimizers), restored from run_dir.
    dist: Distributed | None = None,            # This process under torchrun; None: a single process.
    log_every: int = 50,                        # Steps between log.jsonl records (and host syncs on CUDA).
    sample_every: int = 2000,                   # Steps between sample sheets (one is always written at a stage's end).
    checkpoint_every: int = 2000,               # Steps between checkpoints (one is always written at a stage's end).
    progress: bool = True,                      # Show a tqdm bar of images seen (rank 0).
    tensorboard: Callable[[], Any] | None = None,  # Opens a TensorBoard logger (scalars, sheets) per stage; None: none.
    stop_after: int | None = None,              # Pause (checkpoint, status "running") after this many steps in this call.
    status_fields: Mapping[str, Any] | None = None,  # Extra fields of the first status record (pipeline, profile).
) -> dict:
    """Train every stage without a final.pt into `run_dir` and return the status.

    Returns:
        The content of run_dir/status.json: {"status": "finished" | "diverged" | "running", "reason",
        "step", "stage", "images_per_sec": {stage: float}, "params": {stage: {"G", "G_total", "D"}},
        "precision": {stage: plan}, ...}. A "failed" status is written before an exception propagates.
    """
    run_dir = Path(run_dir)
    dist = dist if dist is not None else Distributed()
    if dist.main:
        write_status(run_dir, "running", None, **dict(status_fields or {}))
    budget = stop_after if stop_after is not None else math.inf  # steps this call may still take
    try:
        for index, name in enumerate(stages):
            if (run_dir / "checkpoints" / name / "final.pt").is_file():
                continue
            # Construct the stage (restored from its last checkpoint, if any).
            stage = build_stage(index)
            if dist.main:
                cut_log(run_dir / "log.jsonl", list(stages), stage.name, stage.step)
                previous = read_status(run_dir) or {}
                write_status(run_dir, "running", None, stage=stage.name, step=stage.step,
                             params={**previous.get("params", {}), stage.name: stage.params},
                             precision={**previous.get("precision", {}), stage.name: stage.plan.to_json()})
            board = tensorboard() if dist.main and tensorboard is not None else None
            try:
                outcome, budget = _train_stage(stage, run_dir, dist, budget, log_every, sample_every,
                                               checkpoint_every, progress, board)
            finally:
                if board is not None:
                    board.close()
            if outcome is not None:  # diverged or paused
                return outcome
    except BaseException as error:
        if dist.main:
            write_status(run_dir, "failed", f"{type(error).__name__}: {error}")
        raise
    return write_status(run_dir, "finished", None, stage=stages[-1]) if dist.main else read_status(run_dir) or {}


def _train_stage(s: Stage, run_dir: Path, dist: Distributed, budget: float, log_every: int, sample_every: int,
                 checkpoint_every: int, progress: bool, board: Any) -> tuple[dict | None, float]:
    """Train one stage to its end (outcome None), or until it diverges or the budget runs out (the status).

    Returns (outcome, the steps left in this call's budget).
    """
    stage_dir = run_dir / "checkpoints" / s.name
    check_every = 1 if s.device.type == "cpu" else log_every  # host syncs only at log points on CUDA
    batch_images = s.batch_size * dist.world_size
    bar = None
    if dist.main and progress:
        from ganblocks.progress import progress_bar

        bar = progress_bar(total=s.total_steps * batch_images, initial=s.step * batch_images, unit="img",
                           unit_scale=True, desc=s.name, dynamic_ncols=True, leave=False)
    batches = iter(s.loader)
    t_start, step_start = None, s.step
    t_log, step_log = time.perf_counter(), s.step
    # Train.
    while s.step < s.total_steps:
        if budget <= 0:
            write_stage_checkpoint(s, stage_dir / "last.pt", dist)
            if bar is not None:
                bar.close()
            return (write_status(run_dir, "running", "paused after this call's steps (stop_after)", stage=s.name,
                                 step=s.step) if dist.main else {}), budget
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(s.loader)
            batch = next(batches)
        train_step(s, batch)
        s.step += 1
        budget -= 1
        if t_start is None:  # images/s excludes the first step (allocation, compilation)
            t_start, step_start = time.perf_counter(), s.step
        if bar is not None:
            bar.update(batch_images)

        # Diverged? Log, samples, checkpoint.
        if (s.step % check_every == 0 or s.step == s.total_steps) and bool(s.nonfinite):
            if bar is not None:
                bar.close()
            return _diverged(s, run_dir, stage_dir, dist), budget
        if s.step % log_every == 0 or s.step == s.total_steps:
            now = time.perf_counter()
            record = log_record(s, (s.step - step_log) * batch_images / max(now - t_log, 1e-9))
            t_log, step_log = now, s.step
            if dist.main:
                append_jsonl(run_dir / "log.jsonl", record)
                if board is not None:
                    board.scalars(record)
                if bar is not None:
                    bar.set_postfix(d=f"{record['loss_d']:.3f}", g=f"{record['loss_g']:.3f}", refresh=False)
        if dist.main and (s.step % sample_every == 0 or s.step == s.total_steps):
            sheet = write_samples(s, run_dir / "samples" / f"{s.name}_{s.step:07d}.png")
            if board is not None:
                board.sheet(s.name, s.step, sheet)
        if s.step % checkpoint_every == 0 and s.step < s.total_steps:
            write_stage_checkpoint(s, stage_dir / "last.pt", dist)
            if dist.main:
                write_status(run_dir, "running", None, stage=s.name, step=s.step)
    if bar is not None:
        bar.close()

    # Finish: the final checkpoint, the measured speed.
    elapsed = time.perf_counter() - t_start if t_start is not None else 0.0
    measured = (s.step - step_start) * batch_images / elapsed if elapsed > 0 and s.step > step_start else None
    write_stage_checkpoint(s, stage_dir / "final.pt", dist)
    if dist.main:
        remove_checkpoint(stage_dir / "last.pt")
        remove_checkpoint(stage_dir / "previous.pt")
        speeds = {**(read_status(run_dir) or {}).get("images_per_sec", {})}
        if measured is not None:
            speeds[s.name] = round(measured, 2)
        write_status(run_dir, "running", None, stage=s.name, step=s.step, images_per_sec=speeds,
                     device=str(s.device), world_size=dist.world_size)
    return None, budget


def log_record(s: Stage, rate: float) -> dict:
    """Mean of every summed statistic since the last record (the only host sync of the loop); resets sums."""
    count = s.sums.pop("_count", None)
    values = {k: v for k, v in s.sums.items()}
    s.sums = {}
    if count is None:
        means = {}
    else:
        stacked = torch.stack([count] + list(values.values())).cpu()
        means = {k: float(x) / float(stacked[0]) for k, x in zip(values, stacked[1:])}
    return {"stage": s.name, "step": s.step, "epoch": s.step / s.steps_per_epoch, "lr": s.opt_g.param_groups[0]["lr"],
            "images_per_sec": round(rate, 2), **means}


def _diverged(s: Stage, run_dir: Path, stage_dir: Path, dist: Distributed) -> dict:
    values = {k: float(v) / float(s.sums.get("_count", torch.ones(()))) for k, v in s.sums.items() if k in ("loss_d", "loss_g")}
    reason = f"non-finite loss in stage {s.name} by step {s.step} ({', '.join(f'{k}={v}' for k, v in values.items())})"
    write_stage_checkpoint(s, stage_dir / "diverged.pt", dist, every_rank=False)
    return write_status(run_dir, "diverged", reason, stage=s.name, step=s.step) if dist.main else {}
