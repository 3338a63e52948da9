"""The grid runner: train, evaluate and record each run of a grid; `run_grid` is the whole invocation.

One run is `experiments.config.compose(overrides)` -> `ganblocks.training.train(cfg, run_dir)` ->
`ganblocks.evaluation.evaluate_run(run_dir, cfg)` -> rows appended to `DIR/results.jsonl`. There is no
training loop here: a run is whatever `train` does, and `train` resumes a run folder it finds half done.

Never losing results rests on three things:
- Every row of one attempt at a run carries the attempt's id and its row count (`attempt`, `n_rows`); an
  attempt is complete only when all its rows are in the file (ablations/results.py), so a kill between two
  appends leaves an attempt that the next call simply redoes (training resumes from the run's last checkpoint).
- A run whose latest complete attempt is `ok` or `diverged` is skipped; a `failed` one (an exception) is
  tried again; the collector always reads the latest complete attempt of each (variant, seed).
- A `DirLock` on the output folder refuses a second runner; each run also holds a lock on its own folder,
  so launcher jobs never share one.

The parts: ablations/settings.py (what was asked; the seams `compose_fn`, `train_fn`, `evaluate_fn` and
which of them a launch.json may name), ablations/validate.py (compose everything and refuse mixed configs
before training), ablations/results.py (the results file). Their public names are importable from here too.
"""

from __future__ import annotations

import os
import time
import traceback
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

from ganblocks.io import append_jsonl, atomic_write_json, atomic_write_text, read_jsonl
from ganblocks.training.state import RunStatus, read_status

from ablations.grids import GridError, RunSpec, expand, load_grid  # noqa: F401 - GridError re-exported
from ablations.lock import DirLock
from ablations.results import FINAL_STATUSES, RESULTS, complete_attempts, failed_runs, metric_rows, repair_results  # noqa: F401
from ablations.settings import (  # noqa: F401 - re-exported: tests and docs name them as ablations.runner.*
    _DEFAULTS,
    LAUNCH,
    TRUSTED_FNS_ENV,
    ComposeFn,
    EvaluateFn,
    Settings,
    TrainFn,
    UntrustedCallableError,
    fn_name,
    git_sha,
    load_fn,
    make_settings,
    resolve_profile,
    trusted_env,
)
from ablations.validate import VOLATILE_KEYS, check_previous, compose_all, config_key, rescore_reasons  # noqa: F401


# ---------------------------------------------------------------------------------------------------------
# One run


def run_facts(run_dir: Path, result: dict | None) -> dict[str, Any]:
    """Parameter count and training images/s of a run, from its `RunStatus`: run_dir/status.json updated
    by what the trainer returned (`result`, the same record as a dict).

    `params` is `RunStatus.generator_params()` (the final generator, frozen Stage-I included: what draws
    the images); `images_per_s` is `RunStatus.run_images_per_sec()` (harmonic mean over stages), rounded.
    Both are None when the trainer recorded neither (or wrote no status at all). An unreadable status.json
    is passed over (the result alone counts), as the facts are only reported beside the metrics.

    Raises:
        ValueError: `result` (with status.json) is not a status record (names the key and what is accepted).
    """
    try:
        record = read_status(run_dir) or {}
    except ValueError:
        record = {}
    record.update(result or {})
    if not record:
        return {"params": None, "images_per_s": None}
    status = RunStatus.from_json(record, source=f"{Path(run_dir) / 'status.json'} with the trainer's result")
    rate = status.run_images_per_sec()
    return {"params": status.generator_params(), "images_per_s": None if rate is None else round(rate, 3)}


def run_spec(
    spec: RunSpec,
    cfg: Any,
    settings: Settings,
    train_fn: TrainFn,
    evaluate_fn: EvaluateFn,
    sha: str,
) -> str:
    """Train (or resume) and evaluate one run, append its rows, and return its status (ok|diverged|failed).

    A trainer that returns status "running" paused on purpose: nothing is recorded and "paused" is
    returned; the next call resumes the run.

    Exceptions from training or evaluation become a `failed` row with the reason (traceback in
    run_dir/error.txt); KeyboardInterrupt and SystemExit pass through, leaving the run to be resumed.
    """
    run_dir = Path(spec.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    metrics: dict[str, dict] = {}
    facts: dict[str, Any] = {"params": None, "images_per_s": None}
    reason = None
    with DirLock(run_dir, what="ablation run"):
        try:
            result = train_fn(cfg, run_dir) or {}
            state = result.get("status", "failed")
            facts = run_facts(run_dir, result)
            if state == "finished":
                status = "ok"
                metrics = evaluate_fn(run_dir, cfg)
                if not metrics:
                    status, reason = "failed", "evaluation returned no metrics"
            elif state == "running":  # the trainer paused (e.g. stop_after): not a result yet
                return "paused"
            elif state == "diverged":
                status, reason = "diverged", result.get("reason") or "diverged"
            else:
                status, reason = "failed", result.get("reason") or f"training ended with status {state!r}"
        except Exception as err:  # noqa: BLE001 - a failed run is recorded and the grid goes on
            status, reason, metrics = "failed", f"{type(err).__name__}: {err}", {}
            atomic_write_text(run_dir / "error.txt", traceback.format_exc())
        wall = time.perf_counter() - t0
        base = {
            "grid": spec.grid,
            "variant": spec.variant,
            "variant_index": spec.variant_index,
            "seed": spec.seed,
            "profile": settings.profile,
            "overrides": list(spec.overrides),
            "config_key": config_key(cfg),
            "run_dir": os.path.relpath(run_dir, settings.out_dir),
            "git_sha": sha,
            "wall_s": round(wall, 3),
            "status": status,
            "reason": reason,
            **facts,
            "attempt": uuid.uuid4().hex,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        for row in metric_rows(base, metrics if status == "ok" else {}):
            append_jsonl(Path(settings.out_dir) / RESULTS, row)
        record_metrics_settings(run_dir, cfg)
    return status


def record_metrics_settings(run_dir: Path, cfg: Any) -> None:
    """Make run_dir/config.yaml hold the `metrics` its newest rows were made with, once they are written.

    The trainer returns a finished (or diverged) run untouched, config.yaml included, so after a re-score
    (`rescore_reasons`: only `metrics.*` changed) that file would keep the first settings, and a later change
    back to them would look like no change at all beside rows of another config_key: refused. Only `metrics`
    is rewritten (it never changes training, `NON_COMPUTING_KEYS`), and only when nothing else differs.
    """
    import yaml

    from ganblocks.training.runconfig import config_differences, stored_config, to_plain

    old = stored_config(run_dir)
    new = to_plain(cfg)
    if not isinstance(old, dict) or not isinstance(new, dict) or "metrics" not in new:
        return
    if old.get("metrics") == new["metrics"] or config_differences(old, new):
        return
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump({**old, "metrics": new["metrics"]}, sort_keys=False))


# ---------------------------------------------------------------------------------------------------------
# The grid


def prepare(settings: Settings) -> tuple[list[RunSpec], list[Any]]:
    """Expand the grid and compose (validate) every run; raises before anything is trained."""
    grid = load_grid(settings.grid)
    specs = expand(grid, settings.out_dir, settings.profile, settings.seeds, settings.only, settings.overrides)
    cfgs = compose_all(specs, load_fn(settings.compose_fn, "compose_fn"))
    return specs, cfgs


def write_manifest(settings: Settings, specs: Sequence[RunSpec]) -> None:
    """DIR/launch.json: the settings and run list, read by launcher jobs and by the collector."""
    grid = load_grid(settings.grid)
    manifest = {
        **settings.to_json(),
        "description": grid.description,
        "variants": grid.labels,
        "baseline": grid.baseline,
        "claim": grid.claim,
        "expect": [asdict(e) for e in grid.expect],
        "runs": [{"variant": s.variant, "seed": s.seed, "run_dir": os.path.relpath(s.run_dir, settings.out_dir)} for s in specs],
    }
    atomic_write_json(Path(settings.out_dir) / LAUNCH, manifest)


def run_grid(
    grid: str,
    profile: str | None = "auto",
    seeds: int | None = None,
    out_dir: str | os.PathLike | None = None,
    only: str | Sequence[str] | None = None,
    overrides: Sequence[str] = (),
    *,
    compose_fn: ComposeFn | str | None = None,
    train_fn: TrainFn | str | None = None,
    evaluate_fn: EvaluateFn | str | None = None,
    rank_fn: Callable | str | None = None,
    collect: bool = True,
    plots: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """Run every (variant, seed) of a grid in this process, then build the tables; returns out_dir.

    Args:
        grid: a grid name (ablations/conf/grid/<grid>.yaml).
        profile: smoke | small | paper | auto (small on CUDA, smoke on CPU).
        seeds: number of seeds; None takes the grid's default for the profile.
        out_dir: output folder; default ablation_runs/<grid>-<profile>.
        only: variant labels to run (list, or "a,b").
        overrides: extra `experiments` overrides applied to every variant (e.g. "data.text_encoder=bow").
        compose_fn, train_fn, evaluate_fn, rank_fn: seams; callables or "module:function" (None = the real
            ones: experiments.config.compose, ganblocks.training.train, ganblocks.evaluation.evaluate_run,
            ganblocks.evaluation.rank_proxy).
        collect: build table.md/.tex/.csv (and samples/) at the end.
        plots: also draw plots/ (seaborn) when collecting.
        log: where progress lines go.

    Raises:
        GridError: bad grid, profile, seeds, only= or override (before anything is trained).
        LockedError: another runner holds out_dir.
    """
    settings = make_settings(grid, profile, seeds, out_dir, only, overrides, compose_fn, train_fn, evaluate_fn, rank_fn)
    specs, cfgs = prepare(settings)
    with DirLock(settings.out_dir):
        check_previous(specs, cfgs, settings.out_dir, settings)
        repair_results(settings.out_dir)
        write_manifest(settings, specs)
        execute(specs, cfgs, settings, log=log)
        if collect:
            from ablations.collect import collect as collect_tables

            paths = collect_tables(settings.out_dir, rank_fn=settings.rank_fn, plots=plots, log=log)
            log(f"table: {paths['table.md']}" + (f"\nreport: {paths['report.html']}" if "report.html" in paths else ""))
    return settings.out_dir


def execute(specs: Sequence[RunSpec], cfgs: Sequence[Any], settings: Settings, log: Callable[[str], None] = print) -> dict[str, int]:
    """Run each spec not yet done, one after another; returns counts per status (and 'skipped')."""
    train_fn = load_fn(settings.train_fn, "train_fn")
    evaluate_fn = load_fn(settings.evaluate_fn, "evaluate_fn")
    sha = git_sha()
    counts: dict[str, int] = {}
    done = complete_attempts(read_jsonl(Path(settings.out_dir) / RESULTS))
    n = len(specs)
    for k, (spec, cfg) in enumerate(zip(specs, cfgs), start=1):
        head = f"[{k}/{n}] {spec.grid} {spec.variant} seed={spec.seed}"
        previous = done.get((spec.variant, spec.seed))
        rescore = rescore_reasons(spec, cfg, settings.out_dir, done) if previous else []
        if previous and previous[0]["status"] in FINAL_STATUSES and not rescore:
            log(f"{head}: {previous[0]['status']} earlier, skipped")
            counts["skipped"] = counts.get("skipped", 0) + 1
            continue
        if rescore:  # finished, scored with other metrics settings: train returns at once, evaluate scores anew
            log(f"{head}: scoring again from its checkpoint ({'; '.join(rescore)})")
        else:
            log(f"{head}: running in {spec.run_dir}")
        t0 = time.perf_counter()
        status = run_spec(spec, cfg, settings, train_fn, evaluate_fn, sha)
        row = complete_attempts(read_jsonl(Path(settings.out_dir) / RESULTS)).get((spec.variant, spec.seed), [{}])[0]
        why = f" ({row.get('reason')})" if status != "ok" and row.get("reason") else ""
        log(f"{head}: {status}{why}, {time.perf_counter() - t0:.1f} s")
        counts[status] = counts.get(status, 0) + 1
    return counts
