"""Run state: status.json, and every RNG state a resume must restore (checkpoint files: checkpoint.py).

RNG states are kept as tensors and plain Python values (no numpy arrays, no tuples of objects), so a
checkpoint holding them loads with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganblocks.io import atomic_write_json

STATUSES = ("running", "finished", "diverged", "failed")


def rng_state() -> dict[str, Any]:
    """Every global RNG state: torch CPU, torch CUDA (all devices), numpy, python; tensors and plain values.

    numpy's MT19937 keys and python's Mersenne state become int64 tensors (their values fit), the rest
    ints, floats, str and None: what `torch.load(weights_only=True)` accepts.
    """
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"name": str(np_name), "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "cached_gaussian": float(np_gauss)},
        "python": {"version": int(py_version), "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss_next": py_gauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state()` captured (CUDA states only when CUDA is present).

    RNG states are CPU byte tensors whatever device the checkpoint was mapped to (torch refuses others).
    """
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    n, p = state["numpy"], state["python"]
    np.random.set_state((n["name"], n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    random.setstate((p["version"], tuple(int(x) for x in p["state"].tolist()), p["gauss_next"]))


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and python from one integer."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


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
