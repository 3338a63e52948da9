"""The dry run: which runs a grid would make, where, in what state, with which config; nothing is trained.

    python -m ablations.run grid=ca_variants --dry-run          # (or dry_run=true) one line per run
    python -m ablations.run grid=ca_variants --cfg job          # ... and each run's resolved config

Every run is composed and validated as a real invocation would (a bad override fails the same way), but no
data is built, no lock is taken and nothing is written. Each run's state comes from DIR/results.jsonl (its
latest complete attempt) and its run folder's status.json:

    to run               nothing recorded, no folder
    resumes at step N    an interrupted run: training continues from its last checkpoint
    resumes from ...     a run folder without status.json (a trainer that writes none): resumed from it
    retried (failed)     the last attempt failed; the next invocation tries again
    done: ok / diverged  recorded; skipped
    scored again         finished, recorded with other `metrics.*` settings only: evaluated anew, not trained
    refused              recorded with another config: the invocation would stop (give another out_dir=)

A last line says when the invocation would stop before training anything, with `check_previous`'s message:
also for runs it leaves out (`only=`, fewer seeds) that were recorded with another config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganblocks.io import read_jsonl
from ganblocks.training.state import RunStatus

from ablations.results import FINAL_STATUSES, RESULTS, complete_attempts
from ablations.runner import prepare
from ablations.settings import Settings
from ablations.grids import GridError
from ablations.validate import check_previous, config_key, metrics_changes, rescore_reasons


@dataclass(frozen=True)
class PlannedRun:
    """One (variant, seed) of the grid as a dry run sees it."""

    index: int
    variant: str
    seed: int
    run_dir: Path
    state: str
    config_key: str  # hash of the resolved config without run_dir (what results.jsonl rows carry)
    overrides: tuple[str, ...]
    config: Any  # the composed config


def run_state(out_dir: Path, variant: str, seed: int, run_dir: Path, key: str, latest: dict) -> str:
    """What the next invocation would do with this run (see the module docstring)."""
    rows = latest.get((variant, seed))
    if rows:
        status = rows[0].get("status")
        if rows[0].get("config_key") != key:
            return f"refused: recorded ({status}) with another config"
        if status in FINAL_STATUSES:
            return f"done: {status} (skipped)"
        return f"retried (last attempt {status}: {rows[0].get('reason') or '?'})"
    try:
        status = RunStatus.read(run_dir)
    except ValueError:  # not JSON, or not a status record
        return "resumes (unreadable status.json)"
    if status is not None:
        return f"resumes at step {status.step} ({status.status}, not yet recorded)"
    if run_dir.is_dir() and any(run_dir.iterdir()):
        return "resumes from what its folder holds (not yet recorded)"
    return "to run"


def plan(settings: Settings) -> list[PlannedRun]:
    """Expand and compose every run of `settings` (raises GridError on a bad one) and read its state."""
    specs, cfgs = prepare(settings)
    out_dir = Path(settings.out_dir)
    latest = complete_attempts(read_jsonl(out_dir / RESULTS))
    runs = []
    for spec, cfg in zip(specs, cfgs):
        key = config_key(cfg)
        rescore = rescore_reasons(spec, cfg, out_dir, latest)
        retry = [] if rescore else metrics_changes(spec, cfg, out_dir, latest)  # a failed run, other metrics
        rows = latest.get((spec.variant, spec.seed)) or [{}]
        state = (f"scored again from its checkpoint ({'; '.join(rescore)})" if rescore else
                 f"retried (last attempt failed: {rows[0].get('reason') or '?'}; {'; '.join(retry)})" if retry else
                 run_state(out_dir, spec.variant, spec.seed, Path(spec.run_dir), key, latest))
        runs.append(PlannedRun(spec.index, spec.variant, spec.seed, Path(spec.run_dir), state, key,
                               tuple(spec.overrides), cfg))
    return runs


def describe(settings: Settings, runs: list[PlannedRun], show_config: bool = False) -> str:
    """The dry run's text: a header, one block per run, and (show_config) each run's resolved config."""
    todo = sum(not r.state.startswith(("done", "refused")) for r in runs)
    lines = [f"dry run: grid {settings.grid}, profile {settings.profile}, {len(runs)} runs "
             f"({todo} to train or retry), out_dir {settings.out_dir}; nothing is trained or written"]
    for k, r in enumerate(runs, start=1):
        lines.append(f"[{k}/{len(runs)}] {r.variant} seed={r.seed}  {r.run_dir}  {r.state}")
        lines.append(f"    config {r.config_key}: {' '.join(r.overrides)}")
        if show_config:
            lines.append(_indent(_yaml(r.config, r.run_dir), "    | "))
    stop = refusal(settings, runs)
    if stop:
        lines.append(f"the invocation would stop before training anything: {stop}")
    return "\n".join(lines)


def refusal(settings: Settings, runs: list[PlannedRun]) -> str | None:
    """Why the invocation would refuse out_dir (`check_previous`'s message), or None. It also reads the runs
    this invocation leaves out (`only=`, fewer seeds), which no line of the dry run shows."""
    try:
        check_previous(runs, [r.config for r in runs], Path(settings.out_dir), settings)  # type: ignore[arg-type]
    except GridError as err:  # PlannedRun has the fields check_previous reads (variant, seed, run_dir)
        return str(err)
    return None


def _yaml(cfg: Any, run_dir: Path) -> str:
    from omegaconf import OmegaConf

    if not OmegaConf.is_config(cfg):
        return json.dumps(cfg, indent=2, default=str)
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    if "run_dir" in cfg:
        cfg.run_dir = str(run_dir)  # where the runner trains it, not the one-run default
    return OmegaConf.to_yaml(cfg).rstrip()


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())
