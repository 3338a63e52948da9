"""Run state on disk: status.json, checkpoints (atomic), and every RNG state a resume must restore.

A checkpoint is one dict saved with `ganblocks.io.atomic_torch_save` (write beside, fsync, rename), so a
process killed at any moment leaves the previous checkpoint or the new one, never half a file.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganblocks.io import atomic_torch_save, atomic_write_json

STATUSES = ("running", "finished", "diverged", "failed")


def rng_state() -> dict[str, Any]:
    """Every global RNG state: torch CPU, torch CUDA (all devices), numpy, python."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state()` captured (CUDA states only when CUDA is present).

    RNG states are CPU byte tensors whatever device the checkpoint was mapped to (torch refuses others).
    """
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and python from one integer."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomically save a checkpoint dict (models, optimizers, schedules, EMA, RNG, loader, step)."""
    atomic_torch_save(path, state)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` (it holds numpy/python RNG states, so not weights_only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; a finished stage writes checkpoints/<stage>/final.pt")
    return torch.load(path, map_location=map_location, weights_only=False)


def read_status(run_dir: Path) -> dict[str, Any] | None:
    """The run's status.json, or None before the first write."""
    import json

    path = Path(run_dir) / "status.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def write_status(run_dir: Path, status: str, reason: str | None = None, **fields: Any) -> dict[str, Any]:
    """Atomically (re)write run_dir/status.json, keeping earlier fields that `fields` does not replace."""
    if status not in STATUSES:
        raise ValueError(f"status {status!r}; expected one of {STATUSES}")
    record = read_status(run_dir) or {}
    record.update(fields)
    record.update(status=status, reason=reason, updated=time.strftime("%Y-%m-%dT%H:%M:%S"))
    record.setdefault("step", 0)
    atomic_write_json(Path(run_dir) / "status.json", record)
    return record
