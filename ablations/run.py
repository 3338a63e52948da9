"""`python -m ablations.run grid=NAME [profile=P] [seeds=N] [out_dir=DIR] [only=a,b] [KEY=VALUE ...]`.

Runner settings are `grid`, `profile` (smoke | small | paper | auto), `seeds`, `out_dir`, `only`, and for
scale-out `launcher` (joblib | submitit_slurm | submitit_local), `jobs` (parallel jobs for joblib) and
`gpus` (GPUs to spread jobs over; default: all visible). Every other `KEY=VALUE` is an `experiments`
override applied to every variant (e.g. `data.text_encoder=bow`), and `hydra.*` settings go to the
launcher (e.g. `hydra.launcher.partition=gpu`). Every run is composed and validated before any is trained.

`jobs=auto` (or `jobs=K`, which imply `launcher=joblib`) packs several runs onto one machine at once:
as many as fit in the free GPU memory and the CPU cores, or one per core with one thread each on a CPU
(ablations/packing.py). Packed runs are separate processes with the same configs, so their results are
those of the runs one by one.

Without `launcher`, the runs go one after another in this process. With one, this process validates,
takes the out_dir lock, starts a Hydra multirun of `ablations.job` over the runs still to do (one job
per run, each on its own GPU), waits, and collects the table.

`--dry-run` (or `dry_run=true`) lists the runs the grid would make (variant, seed, run folder, whether it
is new, done, interrupted or failed, and a hash of its resolved config with its overrides) without
training, building data or writing anything; `--cfg job` also prints each run's resolved config.

Examples:
  python -m ablations.run grid=ca_variants                        # profile=auto: smoke on CPU, small on CUDA
  python -m ablations.run grid=ca_variants --dry-run              # what would run, and what is done already
  python -m ablations.run grid=upsampling profile=small seeds=3 only=nearest,bilinear
  python -m ablations.run grid=discriminator profile=small launcher=joblib gpus=4
  python -m ablations.run grid=ca_variants profile=small seeds=3 jobs=auto   # fill one GPU (or every core)
  python -m ablations.run grid=stages data.text_encoder=bow out_dir=runs/stages --cfg job

Exit status: 0 when every run is ok or diverged (a result), 1 when any run failed (each is named on stderr
with its seed, run folder and the first line of its error) or the disk is full (one line naming the device),
2 for a bad command line or config, or an out_dir that cannot be created (nothing ran).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from ablations.grids import GridError, list_grids
from ablations.lock import DirLock, LockedError, UnusableFolderError
from ablations.packing import choose_jobs, job_environment
from ablations.results import FINAL_STATUSES, RESULTS, complete_attempts, failed_runs, repair_results
from ablations.runner import prepare, run_grid, write_manifest
from ablations.settings import LAUNCH, make_settings, trusted_env
from ablations.validate import check_previous, rescore_reasons
from ganblocks.io import NoSpaceError, read_jsonl

RUNNER_KEYS = ("grid", "profile", "seeds", "out_dir", "only", "launcher", "jobs", "gpus", "dry_run")
LAUNCHERS = ("joblib", "submitit_slurm", "submitit_local")

USAGE = f"""usage: python -m ablations.run grid=NAME [profile=smoke|small|paper|auto] [seeds=N] [out_dir=DIR]
                              [only=LABEL,LABEL] [jobs=auto|K] [launcher={'|'.join(LAUNCHERS)} [gpus=G]]
                              [KEY=VALUE ...   experiments overrides, e.g. data.text_encoder=bow]
                              [hydra.KEY=VALUE ...   launcher settings]
                              [--dry-run | dry_run=true | --cfg job]   list the runs, train nothing
grids: {', '.join(list_grids())}"""


def parse_args(argv: list[str]) -> tuple[dict[str, str], list[str], list[str]]:
    """Split `KEY=VALUE` arguments into runner settings, experiments overrides and hydra settings."""
    runner, overrides, hydra = {}, [], []
    for arg in argv:
        if "=" not in arg:
            raise GridError(f"argument {arg!r} is not KEY=VALUE; runner keys: {', '.join(RUNNER_KEYS)}\n{USAGE}")
        key, value = arg.split("=", 1)
        if key in RUNNER_KEYS:
            runner[key] = value
        elif key.lstrip("+~").startswith("hydra.") or key.startswith("hydra/"):
            hydra.append(arg)
        else:
            overrides.append(arg)
    if "grid" not in runner:
        raise GridError(f"grid= is required\n{USAGE}")
    if "launcher" in runner and runner["launcher"] not in LAUNCHERS:
        raise GridError(f"unknown launcher {runner['launcher']!r} (from launcher=); accepted: {', '.join(LAUNCHERS)}")
    if "jobs" in runner and not (runner["jobs"] == "auto" or runner["jobs"].isdigit() and int(runner["jobs"]) >= 1):
        raise GridError(f"jobs={runner['jobs']!r} (from jobs=); expected auto or a positive integer")
    if "jobs" in runner and "launcher" not in runner:
        runner["launcher"] = "joblib"  # jobs=auto|K packs runs as joblib processes on this machine
    if "jobs" in runner and runner["launcher"] != "joblib":
        raise GridError(f"jobs= applies to launcher=joblib only, not launcher={runner['launcher']}")
    stray = [k for k in ("gpus",) if k in runner and "launcher" not in runner]
    if stray:
        raise GridError(f"{', '.join(stray)}= only apply with launcher=; accepted launchers: {', '.join(LAUNCHERS)}")
    if hydra and "launcher" not in runner:
        raise GridError(f"hydra settings {hydra} only apply with launcher=; accepted launchers: {', '.join(LAUNCHERS)}")
    return runner, overrides, hydra


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def launch(
    runner: dict[str, str],
    overrides: list[str],
    hydra: list[str],
    log: Callable[[str], None] = print,
    **fns: str,
) -> Path:
    """Validate, lock, run the pending runs as a Hydra multirun of `ablations.job`, collect.

    `fns` (compose_fn, train_fn, evaluate_fn) are "module:function" seams the jobs load (tests use them).
    """
    settings = make_settings(runner["grid"], runner.get("profile"), runner.get("seeds"), runner.get("out_dir"), runner.get("only"), overrides, **fns)
    specs, cfgs = prepare(settings)
    out_dir = settings.out_dir.resolve()
    with DirLock(out_dir):
        check_previous(specs, cfgs, out_dir, settings)
        repair_results(out_dir)
        write_manifest(settings, specs)
        done = complete_attempts(read_jsonl(out_dir / RESULTS))
        rescore = {s.index for s, c in zip(specs, cfgs) if rescore_reasons(s, c, out_dir, done)}  # metrics.* changed
        pending = [s.index for s in specs if s.index in rescore
                   or done.get((s.variant, s.seed), [{}])[0].get("status") not in FINAL_STATUSES]
        log(f"{len(specs)} runs, {len(specs) - len(pending)} done earlier, {len(pending)} to launch with {runner['launcher']}"
            + (f" ({len(rescore)} finished, to score again: their metrics settings changed)" if rescore else ""))
        if pending:
            gpus = int(runner.get("gpus", visible_gpus()))
            stamp = time.strftime("%Y%m%d-%H%M%S")
            cmd = [
                sys.executable, "-m", "ablations.job", "--multirun",
                f"hydra/launcher={runner['launcher']}",
                f"launch={out_dir / LAUNCH}",
                f"index={','.join(str(i) for i in pending)}",
                f"gpus={gpus}",
                f"hydra.sweep.dir={out_dir / 'hydra' / stamp}",
            ]
            env = None
            if runner["launcher"] == "joblib":
                jobs, why = choose_jobs(runner.get("jobs", max(gpus, 1)), [cfgs[i] for i in pending], len(pending))
                log(f"jobs: {why}")
                cmd.append(f"hydra.launcher.n_jobs={jobs}")
                env = job_environment(jobs) if jobs > 1 else None
            cmd += hydra
            log("launching: " + " ".join(cmd))
            proc = subprocess.run(cmd, env={**trusted_env(settings), **(env or {})})  # jobs may load the seams given here
            if proc.returncode != 0:
                log(f"launcher exited with {proc.returncode}; collecting what finished (rerun to resume the rest)")
        from ablations.collect import collect

        paths = collect(out_dir, rank_fn=settings.rank_fn, log=log)
        log(f"table: {paths['table.md']}" + (f"\nreport: {paths['report.html']}" if "report.html" in paths else ""))
    return out_dir


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__.strip() + "\n\n" + USAGE)
        return 0 if argv else 2
    show_config = _pop_cfg_job(argv)
    try:
        runner, overrides, hydra = parse_args([a for a in argv if a != "--dry-run"])
        dry_run = runner.get("dry_run", "false").lower()
        if dry_run not in ("true", "false"):
            raise GridError(f"dry_run={runner['dry_run']!r}; expected true or false")
        if show_config or "--dry-run" in argv or dry_run == "true":
            from ablations.plan import describe, plan

            settings = make_settings(runner["grid"], runner.get("profile"), runner.get("seeds"), runner.get("out_dir"),
                                     runner.get("only"), overrides)
            print(describe(settings, plan(settings), show_config=show_config))
            return 0
        elif "launcher" in runner:
            out_dir = launch(runner, overrides, hydra)
        else:
            out_dir = run_grid(runner["grid"], runner.get("profile"), runner.get("seeds"), runner.get("out_dir"), runner.get("only"), overrides)
    except (GridError, LockedError, UnusableFolderError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except NoSpaceError as err:  # nothing already written is harmed (ganblocks.io)
        print(f"error: {err}", file=sys.stderr)
        return 1
    failed = failed_runs(out_dir)
    if failed:
        print(f"error: {len(failed)} run(s) failed (the table marks them; the same command retries them):\n  "
              + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0


def _pop_cfg_job(argv: list[str]) -> bool:
    """Remove `--cfg job` / `--cfg=job` (Hydra's "print the config") from argv; True when it was there."""
    for i, arg in enumerate(argv):
        if arg == "--cfg=job" or (arg == "--cfg" and argv[i + 1 : i + 2] == ["job"]):
            del argv[i : i + (1 if "=" in arg else 2)]
            return True
    return False


if __name__ == "__main__":
    sys.exit(main())
