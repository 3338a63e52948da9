"""Checkpoints on disk: written atomically with a size + sha256 sidecar, read without running code.

    save_checkpoint(path, state)           # path (atomic), then path.json = {"size", "sha256"} (atomic)
    state = load_checkpoint(path)          # verified against the sidecar; weights_only=True
    state, used = load_latest([last, previous], warn)   # the newest good one, warning about bad ones

A checkpoint holds only tensors and plain containers (RNG states as tensors, see `state.rng_state`), so
it is read with `torch.load(weights_only=True)`: a crafted file cannot run code (`UnsafeFileError`). A
file that does not match its sidecar, or that torch cannot read, is `CheckpointError` naming the file;
the loop then falls back to the previous checkpoint (`last.pt` -> `previous.pt`) with a warning.

Stage-level: `stage_state(stage, rng_per_rank)` is what the loop saves (`write_stage_checkpoint`: last.pt
rotated to previous.pt first), `restore_stage` puts it back.
Run-level: `finals_present` (a finished run's final.pt files are all good), `cut_log` (log.jsonl back to a
resumed step), `load_generator` (a run's final generator).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from ganblocks.io import (
    CorruptFileError,
    UnsafeFileError,
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    load_torch_bytes,
    read_jsonl,
)
from ganblocks.training import assemble
from ganblocks.training.state import rng_state, set_rng_state

__all__ = ["CheckpointError", "UnsafeFileError", "save_checkpoint", "load_checkpoint", "load_latest",
           "remove_checkpoint", "sidecar", "stage_state", "write_stage_checkpoint", "restore_stage", "finals_present", "cut_log",
           "load_generator"]


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, empty or does not match its sidecar; the message names it."""


def sidecar(path: Path) -> Path:
    """`last.pt` -> `last.pt.json`: the checkpoint's size and sha256, written after it."""
    return path.with_name(path.name + ".json")


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically write `state` to `path`, then its sidecar (size + sha256) beside it, atomically too.

    A kill between the two leaves a checkpoint whose sidecar is missing or stale: `load_checkpoint`
    then treats the checkpoint as unverified (missing) or bad (stale), never as good by mistake.
    """
    path = Path(path)
    sidecar(path).unlink(missing_ok=True)  # a stale sidecar must not vouch for the new file
    data = atomic_torch_save(path, state)
    atomic_write_json(sidecar(path), {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()})


def remove_checkpoint(path: str | Path) -> None:
    """Delete a checkpoint and its sidecar (missing ones are fine)."""
    path = Path(path)
    path.unlink(missing_ok=True)
    sidecar(path).unlink(missing_ok=True)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`, checked against its sidecar when there is one.

    Raises:
        CheckpointError: missing, empty, truncated, not matching its sidecar, or unreadable.
        UnsafeFileError: the file holds Python objects a ganblocks checkpoint never holds (refused unread).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; a finished stage writes checkpoints/<stage>/final.pt")
    data = path.read_bytes()
    record = _read_sidecar(path)
    if record is not None:
        if len(data) != record.get("size"):
            raise CheckpointError(f"checkpoint {path} has {len(data)} bytes but {sidecar(path).name} says "
                                  f"{record.get('size')}: it is truncated or was replaced")
        if hashlib.sha256(data).hexdigest() != record.get("sha256"):
            raise CheckpointError(f"checkpoint {path} does not match the sha256 in {sidecar(path).name}: it is "
                                  "corrupt or was replaced")
    try:
        state = load_torch_bytes(data, path, map_location)
    except CorruptFileError as error:
        raise CheckpointError(str(error)) from None
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"checkpoint {path} is not a ganblocks checkpoint (no 'step' entry)")
    return state


def _read_sidecar(path: Path) -> dict | None:
    try:
        record = json.loads(sidecar(path).read_text())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckpointError(f"{sidecar(path)} (the sidecar of {path.name}) is unreadable") from None
    return record if isinstance(record, dict) else None


def load_latest(paths: Sequence[Path], warn: Callable[[str], None],
                map_location: str | torch.device = "cpu") -> tuple[dict[str, Any] | None, Path | None]:
    """The first of `paths` (newest first) that exists and loads; bad ones are reported through `warn`.

    Returns (None, None) when none of them exists.

    Raises:
        CheckpointError: every existing one is bad (the message lists each file and why).
        UnsafeFileError: one of them holds Python objects (never fallen back from: it was crafted).
    """
    problems = []
    for path in paths:
        if not Path(path).is_file():
            continue
        try:
            state = load_checkpoint(path, map_location)
        except CheckpointError as error:
            problems.append(str(error))
            continue
        if problems:
            warn(f"warning: {'; '.join(problems)}. Falling back to {path} (step {state['step']}).")
        return state, Path(path)
    if problems:
        raise CheckpointError(f"no usable checkpoint: {'; '.join(problems)}. Delete the bad file(s) to restart "
                              "that stage from its first step, or restore them from a backup.")
    return None, None


# ----------------------------------------------------------------------------------------------------------
# What a stage saves and restores
# ----------------------------------------------------------------------------------------------------------
def stage_state(s: Any, rng_per_rank: list[dict] | None) -> dict[str, Any]:
    """Everything a `step.Stage` needs to continue bit for bit: weights, optimizers, schedules, EMA, loader
    position, RNG states, and the statistics summed since the last log record."""
    return {
        "stage": s.name,
        "step": s.step,
        "text_dim": s.text_dim,
        "generator": s.G.state_dict(),
        "discriminator": s.D.state_dict(),
        "ema": s.ema.state_dict() if s.ema is not None else None,
        "opt_g": s.opt_g.state_dict(),
        "opt_d": s.opt_d.state_dict(),
        "sched_g": s.sched_g.state_dict(),
        "sched_d": s.sched_d.state_dict(),
        "loader": s.loader.state_dict(),
        "rng": rng_state(),
        "rng_per_rank": rng_per_rank,
        "log_sums": {k: v.detach().cpu() for k, v in s.sums.items()},
    }


def write_stage_checkpoint(s: Any, path: Path, dist: Any, *, every_rank: bool = True) -> None:
    """Rank 0 writes the stage's state (`stage_state`) to `path`.

    Under DDP every rank's RNG state goes in too (`rng_per_rank`; a collective, so all ranks call this at the
    same step), so that after a resume each rank draws its own noise again rather than all of them rank 0's.
    `every_rank=False` (the diverged state, which ranks may reach at different steps) skips the collective
    and keeps rank 0's RNG state only. A new `last.pt` first moves the old one (with its sidecar) to
    `previous.pt`, the fallback when the new one turns out bad; every moment of that sequence leaves files
    `load_latest` can verify.
    """
    from ganblocks.training.distributed import gather_rng_states

    per_rank = gather_rng_states(dist) if every_rank else None
    if not dist.main:
        return
    if path.name == "last.pt" and path.is_file():
        previous = path.with_name("previous.pt")
        sidecar(previous).unlink(missing_ok=True)
        os.replace(path, previous)
        if sidecar(path).is_file():
            os.replace(sidecar(path), sidecar(previous))
    save_checkpoint(path, stage_state(s, per_rank))


def restore_stage(s: Any, state: dict[str, Any], rank: int = 0) -> None:
    """Put a `stage_state` back into a freshly built stage (weights move to where the models live)."""
    s.G.load_state_dict(state["generator"])
    s.D.load_state_dict(state["discriminator"])
    if s.ema is not None and state["ema"] is not None:
        s.ema.load_state_dict(state["ema"])
    s.opt_g.load_state_dict(state["opt_g"])
    s.opt_d.load_state_dict(state["opt_d"])
    s.sched_g.load_state_dict(state["sched_g"])
    s.sched_d.load_state_dict(state["sched_d"])
    s.loader.load_state_dict(state["loader"])  # checks the world size
    per_rank = state.get("rng_per_rank")
    set_rng_state(per_rank[rank] if per_rank else state["rng"])
    s.step = int(state["step"])
    device = next(s.G.parameters()).device
    s.sums = {k: v.to(device) for k, v in (state.get("log_sums") or {}).items()} if rank == 0 else {}


# ----------------------------------------------------------------------------------------------------------
# A run folder: finished stages, the log on resume
# ----------------------------------------------------------------------------------------------------------
def finals_present(cfg: DictConfig, run_dir: Path) -> bool:
    """Whether every stage's final.pt is there and good; a missing one means "train it again" (warned)."""
    for stage_cfg in cfg.pipeline.stages:
        final = run_dir / "checkpoints" / stage_cfg.name / "final.pt"
        if not final.is_file():
            warnings.warn(f"{run_dir} says finished but {final} is missing: training that stage again", RuntimeWarning)
            return False
        try:
            load_checkpoint(final)
        except CheckpointError as error:
            raise CheckpointError(f"{run_dir} says finished, but: {error}. Delete {final} and run again to "
                                  f"retrain stage {stage_cfg.name}, or restore it from a backup.") from None
    return True


def cut_log(path: Path, stages: list[str], stage: str, step: int) -> None:
    """Keep only log.jsonl records before (`stage`, `step`): earlier stages, and this stage up to `step`.

    A resumed stage starts again from its checkpoint's step, so records written after that step (by the
    interrupted process) would come twice. Rewritten atomically, and only when something is cut.
    """
    if not path.is_file():
        return
    order = {name: i for i, name in enumerate(stages)}
    text = path.read_text()
    records = read_jsonl(path)
    keep = [r for r in records if order.get(r.get("stage"), len(stages)) < order[stage]
            or (r.get("stage") == stage and int(r.get("step", 0)) <= step)]
    if len(keep) != len(records) or (text and not text.endswith("\n")):
        atomic_write_text(path, "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in keep))


# ----------------------------------------------------------------------------------------------------------
# Loading a trained generator
# ----------------------------------------------------------------------------------------------------------
def load_generator(run_dir: str | os.PathLike, device: str | torch.device = "cpu", *, stage: str | None = None,
                   ema: bool = True) -> nn.Module:
    """The final generator of a run (EMA weights when kept and `ema`), in eval mode, frozen.

    Args:
        run_dir: a run folder written by `train`.
        device: where to put the generator.
        stage: which stage's generator (default: the last stage of the run's pipeline).
        ema: use the EMA weights when the run kept them.

    Returns:
        The generator (`forward(text (B, D), noise (B, N_z)) -> GeneratorOutput`); a Stage-II generator
        holds its Stage-I.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} does not exist; is {run_dir} a run folder written by ganblocks.training.train?")
    cfg = OmegaConf.load(config_path)
    stages = {st.name: (i, st) for i, st in enumerate(cfg.pipeline.stages)}
    name = stage if stage is not None else cfg.pipeline.stages[-1].name
    if name not in stages:
        raise ValueError(f"stage {name!r} is not in the run's pipeline; stages: {list(stages)}")
    state = load_checkpoint(run_dir / "checkpoints" / name / "final.pt", map_location="cpu")
    stage_cfg = stages[name][1]
    fixed = None
    if stage_cfg.fixed is not None:  # the structure only; the weights come with this stage's state dict
        fixed = assemble.build_stage_models(cfg, stages[stage_cfg.fixed][1], state["text_dim"], None)[0]
    G, _ = assemble.build_stage_models(cfg, stage_cfg, state["text_dim"], fixed)
    G.load_state_dict(state["ema"] if ema and state["ema"] is not None else state["generator"])
    return G.to(device).eval().requires_grad_(False)
