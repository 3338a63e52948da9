"""The grid runner: compose and validate every run of a grid, then train, evaluate and record each one.

One run is `experiments.config.compose(overrides)` -> `ganblocks.training.train(cfg, run_dir)` ->
`ganblocks.evaluation.evaluate_run(run_dir, cfg)` -> rows appended to `DIR/results.jsonl`. There is no
training loop here: a run is whatever `train` does, and `train` resumes a run folder it finds half done.

Never losing results rests on three things:
- Every row of one attempt at a run carries the attempt's id and its row count (`attempt`, `n_rows`); an
  attempt is complete only when all its rows are in the file, so a kill between two appends leaves an
  attempt that the next call simply redoes (training resumes from the run's last checkpoint).
- A run whose latest complete attempt is `ok` or `diverged` is skipped; a `failed` one (an exception) is
  tried again; the collector always reads the latest complete attempt of each (variant, seed).
- A `DirLock` on the output folder refuses a second runner; each run also holds a lock on its own folder,
  so launcher jobs never share one.

Seams for tests and other engines: `run_grid` and `run_spec` take `compose_fn`, `train_fn` and
`evaluate_fn` (callables, or "module:function" strings so that launcher jobs in other processes can load
them), defaulting to the real ones. A name read from a file in an output folder (launch.json) is code
chosen by whoever wrote that folder: it is loaded only when it is the default, or the user allowed it
($GANBLOCKS_TRUSTED_FNS, which the launcher sets for its own jobs from the names it was given).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import time
import traceback
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ganblocks.io import append_jsonl, atomic_write_json, atomic_write_text, read_jsonl, stable_hash

from ablations.grids import GridError, RunSpec, expand, load_grid, parse_only
from ablations.lock import DirLock

TRUSTED_FNS_ENV = "GANBLOCKS_TRUSTED_FNS"  # comma-separated "module:function" names the user allows
RESULTS = "results.jsonl"
LAUNCH = "launch.json"
FINAL_STATUSES = ("ok", "diverged")  # a run in one of these is never run again

ComposeFn = Callable[[list[str]], Any]
TrainFn = Callable[[Any, Path], dict]
EvaluateFn = Callable[..., dict]

_DEFAULTS = {
    "compose_fn": "experiments.config:compose",
    "train_fn": "ganblocks.training:train",
    "evaluate_fn": "ganblocks.evaluation:evaluate_run",
    "rank_fn": "ganblocks.evaluation:rank_proxy",
}


# ---------------------------------------------------------------------------------------------------------
# Settings of one grid invocation


@dataclass
class Settings:
    """What one `python -m ablations.run` was asked for, after defaults; saved as DIR/launch.json."""

    grid: str
    profile: str  # concrete: smoke | small | paper
    out_dir: Path
    seeds: int | None = None
    only: list[str] | None = None
    overrides: tuple[str, ...] = ()
    compose_fn: Callable | str | None = None  # seams: callables or "module:function"; None = the real ones
    train_fn: Callable | str | None = None
    evaluate_fn: Callable | str | None = None
    rank_fn: Callable | str | None = None  # cross-run rank proxy, used by the collector

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["out_dir"] = str(self.out_dir)
        d["overrides"] = list(self.overrides)
        for role in _DEFAULTS:
            d[role] = fn_name(d[role])
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Settings":
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        d["out_dir"] = Path(d["out_dir"])
        d["overrides"] = tuple(d.get("overrides") or ())
        return cls(**d)


def resolve_profile(profile: str | None) -> str:
    """`auto` -> `small` when CUDA is available, else `smoke`; other names are checked and returned."""
    profile = profile or "auto"
    if profile == "auto":
        import torch

        return "small" if torch.cuda.is_available() else "smoke"
    if profile not in ("smoke", "cpu", "small", "paper"):
        raise GridError(f"unknown profile {profile!r} (from profile=); accepted: smoke, cpu, small, paper, auto")
    return profile


def default_out_dir(grid: str, profile: str) -> Path:
    return Path("ablation_runs") / f"{grid}-{profile}"


def fn_name(fn: Callable | str | None) -> str | None:
    """"module:function" for an importable callable (what launch.json stores); None stays None."""
    if fn is None or isinstance(fn, str):
        return fn
    qual = getattr(fn, "__qualname__", "")
    if "<" in qual or not getattr(fn, "__module__", None):
        return None  # a local function: usable in this process only
    return f"{fn.__module__}:{qual}"


class UntrustedCallableError(GridError):
    """A file in an output folder names code to run that the user did not allow."""


def trusted_fns() -> set[str]:
    """The "module:function" names the user allowed through $GANBLOCKS_TRUSTED_FNS."""
    return {n.strip() for n in os.environ.get(TRUSTED_FNS_ENV, "").split(",") if n.strip()}


def trusted_env(settings: "Settings") -> dict[str, str]:
    """os.environ plus the settings' own seam names in $GANBLOCKS_TRUSTED_FNS (for the launcher's jobs,
    which read those names back from launch.json)."""
    names = trusted_fns() | {n for n in (fn_name(getattr(settings, role)) for role in _DEFAULTS) if n}
    return {**os.environ, TRUSTED_FNS_ENV: ",".join(sorted(names))}


def load_fn(fn: Callable | str | None, role: str, *, source: str | os.PathLike | None = None) -> Callable:
    """A callable, or one named "module:function" (None = the real one for `role`).

    Args:
        source: the file `fn` was read from, when it was read from one (launch.json). Such a name is
            imported only when it is `role`'s default or listed in $GANBLOCKS_TRUSTED_FNS.

    Raises:
        UntrustedCallableError: `fn` came from `source` and is neither the default nor allowed.
        ImportError: the name cannot be imported.
    """
    if callable(fn):
        return fn
    spec = fn or _DEFAULTS[role]
    if source is not None and spec != _DEFAULTS[role] and spec not in trusted_fns():
        raise UntrustedCallableError(
            f"{source} names {role}={spec!r}: a file in an output folder cannot choose code to run. Pass it "
            f"yourself ({role}= as an argument or on the command line), or allow it with "
            f"{TRUSTED_FNS_ENV}={spec}; the default is {_DEFAULTS[role]!r}."
        )
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ImportError(f"{role}={spec!r} cannot be loaded ({err}); expected 'package.module:function'") from err


def git_sha() -> str:
    """The checked-out commit of this source tree (suffix '-dirty' when it has local changes), or 'unknown'."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# ---------------------------------------------------------------------------------------------------------
# Results file: attempts, completion, repair


def repair_results(out_dir: Path) -> None:
    """Cut a torn last line (a write killed half way) so the next append starts on a line of its own."""
    path = Path(out_dir) / RESULTS
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        with open(path, "r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())


def complete_attempts(rows: list[dict]) -> dict[tuple[str, int], list[dict]]:
    """(variant, seed) -> the rows of its latest complete attempt (file order decides 'latest')."""
    by_attempt: dict[str, list[dict]] = {}
    order: list[str] = []
    for row in rows:
        a = row.get("attempt")
        if a is None:
            continue
        if a not in by_attempt:
            by_attempt[a] = []
            order.append(a)
        by_attempt[a].append(row)
    latest: dict[tuple[str, int], list[dict]] = {}
    for a in order:
        group = by_attempt[a]
        if len(group) >= int(group[0].get("n_rows", 1)):
            latest[(group[0]["variant"], int(group[0]["seed"]))] = group
    return latest


def failed_runs(out_dir: Path) -> list[str]:
    """One line per run whose latest complete attempt failed: variant, seed, run folder, first line of the error."""
    out_dir = Path(out_dir)
    lines = []
    for (variant, seed), rows in sorted(complete_attempts(read_jsonl(out_dir / RESULTS)).items()):
        if rows[0].get("status") == "failed":
            reason = (str(rows[0].get("reason") or "no reason recorded").strip().splitlines() or ["?"])[0]
            run_dir = out_dir / str(rows[0].get("run_dir", ""))
            lines.append(f"{variant} seed {seed}: {reason} (run folder {run_dir}; traceback in error.txt when "
                         "training or evaluation raised)")
    return lines


# ---------------------------------------------------------------------------------------------------------
# Composing and validating


VOLATILE_KEYS = ("run_dir", "train.progress")  # differ between invocations without changing the run


def config_key(cfg: Any) -> str:
    """Hash of the resolved config minus VOLATILE_KEYS: rows count as done only for the same config."""
    try:
        from omegaconf import OmegaConf

        container = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else cfg
    except ImportError:
        container = cfg
    container = json.loads(json.dumps(container, default=str))
    for key in VOLATILE_KEYS:
        node, *path = key.split(".")
        parent = container
        for part in [node, *path][:-1]:
            parent = parent.get(part, {}) if isinstance(parent, dict) else {}
        if isinstance(parent, dict):
            parent.pop(key.split(".")[-1], None)
    return stable_hash(container)


def compose_all(specs: Sequence[RunSpec], compose_fn: ComposeFn) -> list[Any]:
    """Compose every run's config before anything is trained; the first bad one raises, naming its run."""
    cfgs = []
    for spec in specs:
        try:
            cfgs.append(compose_fn(list(spec.overrides)))
        except Exception as err:  # noqa: BLE001 - re-raised with the run named
            raise GridError(
                f"grid {spec.grid!r}, variant {spec.variant!r}, seed {spec.seed}: the config does not compose "
                f"({type(err).__name__}: {err}); overrides were {list(spec.overrides)}"
            ) from err
    return cfgs


def check_previous(specs: Sequence[RunSpec], cfgs: Sequence[Any], out_dir: Path, settings: Settings | None = None) -> None:
    """Refuse an out_dir that would mix runs of different configs, before anything is trained.

    Three places can hold an earlier config: the recorded rows of a (variant, seed) of this invocation
    (their `config_key`), its run folder's config.yaml (a run interrupted before any row; `train` would
    refuse it too, but only after the runs before it), and the rows of runs this invocation does not
    touch (another `only=` or fewer seeds; composed again from `settings` with the current overrides),
    which would land in the same table. Differences are named key by key where the run folder has its
    config.yaml (keys that never change a result, `NON_COMPUTING_KEYS`, are ignored there).

    Raises:
        GridError: lists every clashing run with what differs, and how to start afresh.
    """
    from ganblocks.training.runconfig import config_differences, stored_config

    out_dir = Path(out_dir)
    latest = complete_attempts(read_jsonl(out_dir / RESULTS))
    pairs = list(zip(specs, cfgs)) + _recorded_elsewhere(specs, latest, settings)
    clashes = []
    for spec, cfg in pairs:
        rows = latest.get((spec.variant, spec.seed))
        run_dir = out_dir / rows[0]["run_dir"] if rows and rows[0].get("run_dir") else Path(spec.run_dir)
        old = stored_config(run_dir) if run_dir.is_dir() else None
        keys = config_differences(old, cfg) if old is not None else []
        if old is not None and not keys and rows and rows[0].get("config_key") != config_key(cfg):
            keys = config_differences(old, cfg, ignore=VOLATILE_KEYS)  # e.g. metrics: they made the rows
        if rows and rows[0].get("config_key") != config_key(cfg) or keys:
            what = "; ".join(keys) if keys else f"recorded with overrides {rows[0].get('overrides')}"
            clashes.append(f"{spec.variant}/seed{spec.seed} ({what})")
    if clashes:
        raise GridError(
            f"{out_dir} already holds runs made with a different config (stored -> given): {'; '.join(clashes)}. "
            f"One table would mix them. Give another out_dir=, or remove that folder to start again."
        )


def _recorded_elsewhere(specs: Sequence[RunSpec], latest: dict, settings: Settings | None) -> list[tuple[RunSpec, Any]]:
    """(spec, config now) of every recorded (variant, seed) that `specs` leave out, composed as this
    invocation would compose it (variants no longer in the grid are skipped)."""
    chosen = {(s.variant, s.seed) for s in specs}
    extra = {key for key in latest if key not in chosen}
    if not extra or settings is None:
        return []
    grid = load_grid(settings.grid)
    every = expand(grid, settings.out_dir, settings.profile, max(seed for _, seed in extra) + 1, None, settings.overrides)
    pick = [s for s in every if (s.variant, s.seed) in extra]
    return list(zip(pick, compose_all(pick, load_fn(settings.compose_fn, "compose_fn"))))


# ---------------------------------------------------------------------------------------------------------
# One run


def _first(d: dict, keys: Sequence[str]) -> Any:
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def run_facts(run_dir: Path, status: dict) -> dict[str, Any]:
    """Parameter count and training images/s of a run, from the trainer's status (or run_dir/status.json).

    The trainer reports `params` per stage ({stage: {"G", "G_total", "D"}}) and `images_per_sec` per stage.
    The table's parameter count is the final generator's, frozen Stage-I included (`G_total` of the last
    stage): what draws the images. Images/s is the harmonic mean over stages, which is the whole run's
    rate when its stages train on equally many images (every profile's schedule).
    """
    merged: dict = {}
    path = Path(run_dir) / "status.json"
    if path.exists():
        try:
            merged.update(json.loads(path.read_text()))
        except json.JSONDecodeError:
            pass
    merged.update(status or {})
    params = _first(merged, ("params", "num_params", "n_params"))
    if isinstance(params, dict) and params:
        last = list(params.values())[-1]
        params = last.get("G_total", last.get("G")) if isinstance(last, dict) else last
    rate = _first(merged, ("images_per_sec", "images_per_s"))
    if isinstance(rate, dict):
        rates = [float(r) for r in rate.values() if isinstance(r, (int, float)) and r > 0]
        rate = len(rates) / sum(1.0 / r for r in rates) if rates else None
    return {
        "params": int(params) if isinstance(params, (int, float)) else None,
        "images_per_s": round(float(rate), 3) if isinstance(rate, (int, float)) else None,
    }


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
        rows = []
        if status == "ok":
            for name, m in sorted(metrics.items()):
                m = dict(m) if isinstance(m, dict) else {"value": m}
                row = {**base, "metric": name}
                for k in ("value", "std", "n_samples", "splits", "evaluator"):
                    row[k] = m.pop(k, None)
                row["extra"] = m
                rows.append(row)
        else:
            rows.append({**base, "metric": None, "value": None, "std": None, "n_samples": None, "splits": None, "evaluator": None, "extra": {}})
        for row in rows:
            row["n_rows"] = len(rows)
            append_jsonl(Path(settings.out_dir) / RESULTS, row)
    return status


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


def make_settings(
    grid: str,
    profile: str | None = "auto",
    seeds: int | str | None = None,
    out_dir: str | os.PathLike | None = None,
    only: str | Sequence[str] | None = None,
    overrides: Sequence[str] = (),
    compose_fn: ComposeFn | str | None = None,
    train_fn: TrainFn | str | None = None,
    evaluate_fn: EvaluateFn | str | None = None,
    rank_fn: Callable | str | None = None,
) -> Settings:
    """Settings with defaults filled in (profile resolved, default out_dir, only= parsed)."""
    concrete = resolve_profile(profile)
    try:
        n_seeds = None if seeds in (None, "", "null") else int(seeds)
    except (TypeError, ValueError):
        raise GridError(f"seeds={seeds!r} (from seeds=) must be a positive integer") from None
    return Settings(
        grid=grid,
        profile=concrete,
        out_dir=Path(out_dir) if out_dir else default_out_dir(grid, concrete),
        seeds=n_seeds,
        only=parse_only(only),
        overrides=tuple(overrides),
        compose_fn=compose_fn,
        train_fn=train_fn,
        evaluate_fn=evaluate_fn,
        rank_fn=rank_fn,
    )


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
        if previous and previous[0]["status"] in FINAL_STATUSES:
            log(f"{head}: {previous[0]['status']} earlier, skipped")
            counts["skipped"] = counts.get("skipped", 0) + 1
            continue
        log(f"{head}: running in {spec.run_dir}")
        t0 = time.perf_counter()
        status = run_spec(spec, cfg, settings, train_fn, evaluate_fn, sha)
        row = complete_attempts(read_jsonl(Path(settings.out_dir) / RESULTS)).get((spec.variant, spec.seed), [{}])[0]
        why = f" ({row.get('reason')})" if status != "ok" and row.get("reason") else ""
        log(f"{head}: {status}{why}, {time.perf_counter() - t0:.1f} s")
        counts[status] = counts.get(status, 0) + 1
    return counts
