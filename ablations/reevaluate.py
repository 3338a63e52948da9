"""`python -m ablations.reevaluate out_dir=DIR [only=a,b] [force=true] [collect=false] [plots=false] [evaluate_fn=MOD:FN]`.

Score a grid's trained runs again with today's evaluator, without training them again: the path from "the
judge improved" to tables that use it. For each (variant, seed) whose latest complete attempt is `ok`, it
calls the grid's `evaluate_fn` (default `ganblocks.evaluation.evaluate_run`) on the run folder with the run's
own config.yaml, and appends the new metrics to DIR/results.jsonl as a new complete attempt of that run;
then it rebuilds the tables (`ablations.collect`), whose rank proxy recomputes because the attempts changed.

What stays true:
- Nothing is lost: the old rows stay in results.jsonl; the new attempt's rows copy the training facts of the
  old one (git_sha of the code that trained, wall_s, params, images/s, config_key) and add `reevaluated`:
  {from_attempt, git_sha (the code that scored), time}. The tables name that code beside the training code,
  and DIR/reevaluated.md gives, per variant and metric, the mean before and after.
- A run already scored by the evaluator it would get now is skipped (force=true scores it anyway), so a
  second call, or a call after a kill, does only what is left; a kill mid-append leaves an incomplete
  attempt, which readers ignore.
- A run whose re-evaluation raises keeps its old attempt (a `failed` row would make `ablations.run` train it
  again); the error goes to the log and RUN_DIR/reevaluate_error.txt, and the exit status is 1.
- evaluate_fn=MOD:FN scores with a function of your own instead of the one launch.json names (a name there
  other than the default is imported only when $GANBLOCKS_TRUSTED_FNS lists it); every run is then scored again.
- Diverged and failed runs have no metrics to redo: they are left as they are and listed.
- Refused before anything is scored, with exit status 2 and one line naming the value: a folder without
  results.jsonl, an unknown key, an `only=` variant the grid does not have, and an `ok` run whose folder
  lacks config.yaml (a grid copied without its run folders, e.g. docs/results/grids/*: re-evaluate the
  folder that holds the checkpoints, then publish it).

Example (issue 12's detail reader reaching the committed grids):
    python -m ablations.reevaluate out_dir=ablation_runs/upsampling-cpu
"""

from __future__ import annotations

import json
import sys
import time
import traceback
import uuid
from pathlib import Path, PurePath
from typing import Callable

from ganblocks.io import append_jsonl, atomic_write_text, read_jsonl

from ablations.lock import DirLock
from ablations.results import RESULTS, complete_attempts, metric_rows, repair_results
from ablations.settings import _DEFAULTS, LAUNCH, git_sha, load_fn

USAGE = ("usage: python -m ablations.reevaluate out_dir=DIR [only=a,b] [force=true|false] [collect=true|false] "
         "[plots=true|false] [evaluate_fn=MOD:FN]")
CHANGES = "reevaluated.md"  # per variant and metric: the mean before and after the latest re-evaluation
DEFAULT_JUDGE_FN = "ganblocks.evaluation.run:current_judge"
_FACTS = ("grid", "variant", "variant_index", "seed", "profile", "overrides", "config_key", "run_dir", "git_sha",
          "wall_s", "status", "reason", "params", "images_per_s")


class ReevaluateError(ValueError):
    """A bad folder, key or variant: the message names it and what is accepted."""


def plan(out_dir: Path, only: list[str] | None = None) -> tuple[list[list[dict]], list[str]]:
    """The latest complete attempts to score again (ok runs, in grid order) and lines on those left as they are.

    Raises:
        ReevaluateError: no results.jsonl, an unknown `only` variant, an ok run folder without config.yaml, or
            a run_dir outside out_dir (absolute, or with '..').
    """
    if not (out_dir / RESULTS).is_file():
        raise ReevaluateError(f"no {RESULTS} in {out_dir.resolve()} (from out_dir=); expected a folder written by "
                              "`python -m ablations.run grid=...`")
    latest = complete_attempts(read_jsonl(out_dir / RESULTS))
    variants = sorted({v for v, _ in latest})
    unknown = sorted(set(only or ()) - set(variants))
    if unknown:
        raise ReevaluateError(f"only={','.join(only or ())}: {', '.join(unknown)} not in this grid; it has "
                              f"{', '.join(variants)}")
    todo, left = [], []
    for (variant, seed), rows in sorted(latest.items(), key=lambda kv: (kv[1][0].get("variant_index", 0), kv[0][1])):
        if only and variant not in only:
            continue
        if rows[0]["status"] != "ok":
            left.append(f"{variant} seed {seed}: {rows[0]['status']}, no metrics to score again")
            continue
        where = PurePath(str(rows[0]["run_dir"]))
        if where.is_absolute() or ".." in where.parts:  # scoring writes into the run folder: only under out_dir
            raise ReevaluateError(f"{variant} seed {seed}: run_dir {str(where)!r} in {out_dir / RESULTS} is outside "
                                  f"{out_dir}; expected a path below it, as `ablations.run` writes (runs/VARIANT/seedN)")
        config = out_dir / where / "config.yaml"
        if not config.is_file():
            raise ReevaluateError(f"{config} does not exist: {variant} seed {seed} has no run folder here (a grid "
                                  "copied without its run folders?); re-evaluate the folder that holds the checkpoints")
        todo.append(rows)
    return todo, left


def changes(out_dir: str | Path) -> str:
    """DIR/reevaluated.md's text: per variant and metric, the mean over seeds of the scores the runs had before
    their latest re-evaluation and of the scores they have now, with the judges' names; '' when no run's
    latest attempt is a re-evaluation. What a table's numbers moved by when the judge changed."""
    rows = read_jsonl(Path(out_dir) / RESULTS)
    by_attempt: dict[str, list[dict]] = {}
    for row in rows:
        by_attempt.setdefault(str(row.get("attempt")), []).append(row)
    table: dict[tuple[int, str, str], list[tuple[float, float]]] = {}
    judges: set[tuple[str, str]] = set()
    for (variant, _seed), new in complete_attempts(rows).items():
        source = (new[0].get("reevaluated") or {}).get("from_attempt")
        old = {r["metric"]: r for r in by_attempt.get(str(source), []) if r.get("metric")}
        for row in new:
            before = old.get(row.get("metric"))
            if before is None or not _number(before.get("value")) or not _number(row.get("value")):
                continue
            table.setdefault((int(row.get("variant_index") or 0), variant, row["metric"]), []).append(
                (float(before["value"]), float(row["value"])))
            judges.add((str(before.get("evaluator")), str(row.get("evaluator"))))
    if not table:
        return ""
    lines = [f"# Scores before and after `ablations.reevaluate` ({Path(out_dir).name})", "",
             "Judges: " + "; ".join(f"{a} -> {b}" for a, b in sorted(judges)) + ". Mean over the seeds scored "
             "both times; the rows before stay in results.jsonl (attempt `reevaluated.from_attempt`).", "",
             "| variant | metric | seeds | before | after | after - before |", "|---|---|---|---|---|---|"]
    for (_, variant, metric), pairs in sorted(table.items()):
        a = sum(p[0] for p in pairs) / len(pairs)
        b = sum(p[1] for p in pairs) / len(pairs)
        lines.append(f"| {variant} | {metric} | {len(pairs)} | {a:.4g} | {b:.4g} | {b - a:+.4g} |")
    return "\n".join(lines) + "\n"


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and x == x  # not None, not NaN


def reevaluate(
    out_dir: str | Path,
    *,
    only: list[str] | None = None,
    force: bool = False,
    evaluate_fn: Callable | str | None = None,
    judge_fn: Callable | str | None = None,
    collect: bool = True,
    plots: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, int]:
    """Score every ok run of a grid folder again (see the module doc); returns counts: scored, current
    (skipped, already scored by today's evaluator), failed (old attempt kept), left (not ok).

    `evaluate_fn` defaults to the one launch.json names (loaded only if it is the default or trusted, as in
    `ablations.collect`); `judge_fn(run_dir) -> evaluator name or None` tells which runs are current, and
    defaults to `ganblocks.evaluation.run.current_judge` with the default evaluate_fn (with another
    evaluate_fn and no judge_fn, every run is scored again).

    Raises:
        ReevaluateError: see `plan`.
        LockedError: a runner or another re-evaluation holds out_dir.
    """
    out_dir = Path(out_dir)
    todo, left = plan(out_dir, only)
    launch = out_dir / LAUNCH
    manifest_fn = None
    if launch.is_file():
        try:
            manifest = json.loads(launch.read_text())
        except ValueError:
            manifest = None
        if not isinstance(manifest, dict):
            raise ReevaluateError(f"{launch} is not a JSON object (cut or edited by hand?); restore it, or delete it "
                                  "to score with the default evaluate_fn")
        manifest_fn = manifest.get("evaluate_fn")
        if manifest_fn is not None and not isinstance(manifest_fn, str):
            raise ReevaluateError(f"{launch} names evaluate_fn={manifest_fn!r}: expected a 'module:function' "
                                  "string or null")
    name = evaluate_fn or manifest_fn or _DEFAULTS["evaluate_fn"]
    evaluate = load_fn(name, "evaluate_fn", source=None if evaluate_fn else launch)
    if judge_fn is None and (isinstance(name, str) and name == _DEFAULTS["evaluate_fn"]):
        judge_fn = DEFAULT_JUDGE_FN
    judge = load_fn(judge_fn, "judge_fn") if judge_fn is not None else None
    counts = {"scored": 0, "current": 0, "failed": 0, "left": len(left)}
    sha = git_sha()
    for line in left:
        log(f"left as it is: {line}")
    with DirLock(out_dir, what="re-evaluation"):
        repair_results(out_dir)
        for k, rows in enumerate(todo, start=1):
            old = rows[0]
            run_dir = out_dir / str(old["run_dir"])
            head = f"[{k}/{len(todo)}] {old['variant']} seed={old['seed']}"
            scored_by = {r.get("evaluator") for r in rows if r.get("evaluator")}
            t0 = time.perf_counter()
            try:  # the judge reads the run's config.yaml too: a corrupt one fails this run only
                if not force and judge is not None and scored_by and scored_by == {judge(run_dir)}:
                    log(f"{head}: already scored by {', '.join(scored_by)}, skipped")
                    counts["current"] += 1
                    continue
                metrics = evaluate(run_dir, None)
                if not metrics:
                    raise RuntimeError("evaluation returned no metrics")
            except Exception as err:  # noqa: BLE001 - the old attempt stays; the others go on
                atomic_write_text(run_dir / "reevaluate_error.txt", traceback.format_exc())
                log(f"{head}: failed ({type(err).__name__}: {' '.join(str(err).split())}); its earlier scores stay, traceback in "
                    f"{run_dir / 'reevaluate_error.txt'}")
                counts["failed"] += 1
                continue
            (run_dir / "reevaluate_error.txt").unlink(missing_ok=True)  # an earlier failure's traceback is stale now
            base = {k2: old.get(k2) for k2 in _FACTS}
            base.update(attempt=uuid.uuid4().hex, time=time.strftime("%Y-%m-%dT%H:%M:%S"),
                        reevaluated={"from_attempt": old["attempt"], "git_sha": sha, "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
            for row in metric_rows(base, metrics):
                append_jsonl(out_dir / RESULTS, row)
            judges = sorted({str(m.get("evaluator")) for m in metrics.values() if isinstance(m, dict) and m.get("evaluator")})
            log(f"{head}: scored by {', '.join(judges) or 'no judge'}, {time.perf_counter() - t0:.1f} s")
            counts["scored"] += 1
        if collect and counts["scored"]:
            from ablations.collect import collect as collect_tables

            paths = collect_tables(out_dir, plots=plots, log=log)
            log(f"table: {paths['table.md']}")
        text = changes(out_dir)
        if text:
            atomic_write_text(out_dir / CHANGES, text)
            log(f"before/after: {out_dir / CHANGES}")
    log(f"re-evaluated {counts['scored']}, already current {counts['current']}, failed {counts['failed']}, "
        f"left as they were {counts['left']}: {out_dir / RESULTS}")
    return counts


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip())
        return 0
    args = dict(a.split("=", 1) if "=" in a else (a, "") for a in argv)
    unknown = sorted(set(args) - {"out_dir", "only", "force", "collect", "plots", "evaluate_fn"})
    if unknown or not args.get("out_dir"):  # an empty out_dir= would mean the current folder
        print(f"ablations.reevaluate: {'unknown key ' + ', '.join(unknown) if unknown else 'out_dir= is required'}\n{USAGE}",
              file=sys.stderr)
        return 2
    flags = {}
    for key, default in (("force", "false"), ("collect", "true"), ("plots", "true")):
        value = args.get(key, default).lower()
        if value not in ("true", "false"):
            print(f"ablations.reevaluate: {key}={args[key]!r}: accepted true or false\n{USAGE}", file=sys.stderr)
            return 2
        flags[key] = value == "true"
    only = [v for v in args.get("only", "").split(",") if v] or None
    from ablations.lock import LockedError
    from ablations.settings import UntrustedCallableError

    try:
        counts = reevaluate(args["out_dir"], only=only, evaluate_fn=args.get("evaluate_fn") or None, **flags)
    except (ReevaluateError, LockedError) as err:
        print(f"ablations.reevaluate: {err}", file=sys.stderr)
        return 2
    except (UntrustedCallableError, ImportError) as err:
        print(f"ablations.reevaluate: {err}", file=sys.stderr)
        return 1
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
