"""Run state: status.json (the typed `RunStatus`), and every RNG state a resume must restore (checkpoint files: checkpoint.py).

RNG states are kept as tensors and plain Python values (no numpy arrays, no tuples of objects), so a
checkpoint holding them loads with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from dataclasses import dataclass, field
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


@dataclass
class RunStatus:
    """run_dir/status.json as a typed record: what a run is doing, and its per-stage facts.

    Written by the trainer (`write_status`), read by the harness (ablations/) and the tools, always through
    this record, so every field has one name. Per-stage dicts are keyed by stage name in training order.

    JSON form (`to_json`): the fields below at top level, plus `extra`'s keys (fields a trainer adds that
    this record does not name, kept as they are). `from_json` reads every status.json written so far: keys
    it does not name go to `extra`.
    """

    status: str  # running | finished | diverged | failed (STATUSES)
    reason: str | None = None  # why it diverged/failed, or a note (e.g. paused after stop_after)
    step: int = 0  # optimiser steps done in `stage`
    stage: str | None = None  # the stage training now, or the last one trained
    pipeline: str | None = None  # registered pipeline name (stage1, two_stage, ...)
    profile: str | None = None  # compute profile (smoke, cpu, small, paper)
    params: dict[str, dict[str, int]] = field(default_factory=dict)  # stage -> {"G", "G_total", "D"} counts
    images_per_sec: dict[str, float] = field(default_factory=dict)  # stage -> training images per second
    precision: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage -> PrecisionPlan.to_json()
    device: str | None = None  # the device trained on ("cpu", "cuda:0")
    world_size: int | None = None  # processes (DDP ranks) that trained
    updated: str | None = None  # local time of the last write, %Y-%m-%dT%H:%M:%S
    extra: dict[str, Any] = field(default_factory=dict)  # fields this record does not name

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r}; expected one of {STATUSES}")

    def to_json(self) -> dict[str, Any]:
        """A plain dict for json.dump: the named fields, then `extra`'s keys beside them."""
        record = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**self.extra, **record}

    @classmethod
    def from_json(cls, record: dict[str, Any], source: str = "status record") -> "RunStatus":
        """The record of a status.json's content; keys it does not name are kept in `extra`.

        Raises:
            ValueError: `record` is not a dict, has no `status`, or a named field has the wrong type; the
                message names `source`, the key, its value and what is accepted.
        """
        if not isinstance(record, dict):
            raise ValueError(f"{source}: holds {type(record).__name__}, expected a JSON object with a 'status'")
        if "status" not in record:
            raise ValueError(f"{source}: no 'status' key; expected one of {STATUSES} (keys: {sorted(record)})")
        named = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        for key, value in record.items():
            if key in named:
                _check_field(key, value, source)
        return cls(**{k: v for k, v in record.items() if k in named},
                   extra={k: v for k, v in record.items() if k not in named})

    @classmethod
    def read(cls, run_dir: Path) -> "RunStatus | None":
        """run_dir/status.json as a record, or None before the first write.

        Raises:
            ValueError: the file is not JSON, or not a status record (see `from_json`); names the file.
        """
        path = Path(run_dir) / "status.json"
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not JSON ({err}); it is written by write_status") from None
        return cls.from_json(record, source=str(path))

    def generator_params(self) -> int | None:
        """Parameters of the generator that draws the final images: the last stage's `G_total` (a frozen
        Stage-I inside Stage-II counted), else its `G`; None when no stage recorded them."""
        if not self.params:
            return None
        last = list(self.params.values())[-1]
        count = last.get("G_total", last.get("G"))
        return int(count) if count is not None else None

    def run_images_per_sec(self) -> float | None:
        """Images per second of the whole run: the harmonic mean of the stages' rates (the run's rate when
        its stages train on equally many images, as every profile's schedule does); None when unmeasured."""
        rates = [float(r) for r in self.images_per_sec.values() if r > 0]
        return len(rates) / sum(1.0 / r for r in rates) if rates else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_FIELD_TYPES = {  # key -> (check, what is accepted)
    "status": (lambda v: isinstance(v, str), "a string"),
    "reason": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "step": (_is_int, "an integer"),
    "stage": (lambda v: v is None or isinstance(v, str), "a stage name or null"),
    "pipeline": (lambda v: v is None or isinstance(v, str), "a pipeline name or null"),
    "profile": (lambda v: v is None or isinstance(v, str), "a profile name or null"),
    "params": (lambda v: isinstance(v, dict) and all(isinstance(c, dict) and all(_is_int(n) for n in c.values())
                                                     for c in v.values()),
               'an object {stage: {"G": int, "G_total": int, "D": int}}'),
    "images_per_sec": (lambda v: isinstance(v, dict) and all(_is_number(r) for r in v.values()),
                       "an object {stage: number}"),
    "precision": (lambda v: isinstance(v, dict) and all(isinstance(p, dict) for p in v.values()),
                  "an object {stage: {...}}"),
    "device": (lambda v: v is None or isinstance(v, str), "a device name or null"),
    "world_size": (lambda v: v is None or _is_int(v), "an integer or null"),
    "updated": (lambda v: v is None or isinstance(v, str), "a time string or null"),
}


def _check_field(key: str, value: Any, source: str) -> None:
    check, accepted = _FIELD_TYPES[key]
    if not check(value):
        raise ValueError(f"{source}: {key}={value!r} ({type(value).__name__}); expected {accepted}")


def read_status(run_dir: Path) -> dict[str, Any] | None:
    """The run's status.json as a plain dict (`RunStatus.to_json()`), or None before the first write.

    For callers that index the JSON; `RunStatus.read(run_dir)` gives the typed record.

    Raises:
        ValueError: the file is not a status record (names the file and key).
    """
    record = RunStatus.read(run_dir)
    return None if record is None else record.to_json()


def write_status(run_dir: Path, status: str, reason: str | None = None, **fields: Any) -> dict[str, Any]:
    """Atomically (re)write run_dir/status.json, keeping earlier fields that `fields` does not replace.

    Args:
        status: one of STATUSES. reason: why (None clears an earlier reason).
        **fields: `RunStatus` fields (step, stage, params, images_per_sec, ...); other names are kept as
            extra keys. A field given replaces the stored one whole (merge per-stage dicts before).
    Returns:
        The record written, as a plain dict (`RunStatus.to_json()`).
    Raises:
        ValueError: an unknown status, or a field of the wrong type (nothing is written then).
    """
    if status not in STATUSES:
        raise ValueError(f"status {status!r}; expected one of {STATUSES}")
    record = read_status(run_dir) or {}
    record.update(fields)
    record.update(status=status, reason=reason, updated=time.strftime("%Y-%m-%dT%H:%M:%S"))
    typed = RunStatus.from_json(record, source=f"write_status({Path(run_dir) / 'status.json'})")
    atomic_write_json(Path(run_dir) / "status.json", typed.to_json())
    return typed.to_json()
