"""The collector: DIR/results.jsonl (whatever ran where) -> table.md, table.tex, table.csv, table_diff.*,
findings.md, plots/, samples/, and last report.html (ablations.report: all of it on one self-contained page).

    python -m ablations.collect out_dir=ablation_runs/ca_variants-smoke

It reads the latest complete attempt of each (variant, seed), computes the cross-run rank proxy per seed
over the grid's finished runs (cached in DIR/rank_proxy.jsonl, keyed by the attempts it ranked and the rank
proxy's protocol version), and
compares every variant with the grid's baseline seed by seed (`ablations.findings`: table_diff.md/.tex/.csv,
bold only where significant, findings.md for the grid's expected effects), and writes everything
atomically, so running it again, or after more runs landed, is always safe.

Options (key=value):
  out_dir=DIR           # required: a folder written by `python -m ablations.run`
  plots=true            # draw plots/ (seaborn; tens of seconds)
  samples=true          # draw the side-by-side sample sheets in samples/
  interval=t            # the paired-difference interval: t (over seed pairs) or bootstrap (percentile)
  rank_fn=MOD:FN        # a rank-proxy function of your own (a name in launch.json is imported only if trusted)

Examples:
  python -m ablations.collect out_dir=ablation_runs/ca_variants-smoke
  python -m ablations.collect out_dir=ablation_runs/upsampling-small plots=false samples=false
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ganblocks.evaluation.rank import PROTOCOL
from ganblocks.io import UnsafeFileError, append_jsonl, atomic_write_text, read_jsonl, stable_hash
from ganblocks.progress import long_step

from ablations import findings, tables
from ablations.captions import SMOKE_NOTE, caption, recipe, references  # noqa: F401 - re-exported
from ablations.grids import GridError, load_grid
from ablations.results import RESULTS, complete_attempts
from ablations.settings import LAUNCH, UntrustedCallableError, load_fn

RANKS = "rank_proxy.jsonl"
RankFn = Callable[[dict[str, Path]], dict[str, dict]]


def runs_frame(out_dir: Path) -> pd.DataFrame:
    """One row per (variant, seed): status, reason, each metric's value, params, images/s, run_dir, attempt, and
    `reevaluated_sha` (the code that scored the run again, `ablations.reevaluate`; None when scored by the code that trained)."""
    latest = complete_attempts(read_jsonl(Path(out_dir) / RESULTS))
    records = []
    for (variant, seed), rows in latest.items():
        first = rows[0]
        rec: dict[str, Any] = {k: first.get(k) for k in ("variant", "variant_index", "seed", "status", "reason", "params", "images_per_s", "run_dir", "attempt", "profile", "git_sha", "wall_s")}
        rec["reevaluated_sha"] = (first.get("reevaluated") or {}).get("git_sha")
        for row in rows:
            if row.get("metric"):
                rec[row["metric"]] = row.get("value")
                rec[f"{row['metric']}:n_samples"] = row.get("n_samples")
                rec[f"{row['metric']}:evaluator"] = row.get("evaluator")
                rec[f"{row['metric']}:splits"] = row.get("splits")
                extra = row.get("extra") or {}
                rec[f"{row['metric']}:real"] = extra.get("real")  # the real row under the same protocol
                rec[f"{row['metric']}:chance"] = extra.get("chance")  # text metrics' chance level
        records.append(rec)
    frame = pd.DataFrame(records)
    if not frame.empty:
        frame = frame.sort_values(["variant_index", "seed"], kind="stable").reset_index(drop=True)
    return frame


def add_rank_proxy(frame: pd.DataFrame, out_dir: Path, rank_fn: RankFn | str | None, log: Callable[[str], None],
                   source: Path | None = None) -> pd.DataFrame:
    """Add a `rank_proxy` column: per seed, the finished runs ranked against each other (lower is better).

    `rank_fn({variant: run_dir}) -> {variant: {"value": mean rank, ...}}`; default
    `ganblocks.evaluation:rank_proxy`. Results are cached in DIR/rank_proxy.jsonl by the ranked attempts and
    `ganblocks.evaluation.rank.PROTOCOL`, so a change in how the proxy scores images recomputes it.
    `source`: the file `rank_fn` was read from (launch.json), if it was: see `ablations.settings.load_fn`.

    Raises:
        UntrustedCallableError: `rank_fn` came from `source` and was not allowed.
        UnsafeFileError: a run's checkpoint holds Python objects (never unpickled; never skipped quietly).
    """
    if frame.empty or "rank_proxy" in frame.columns and frame["rank_proxy"].notna().all():
        return frame
    try:
        fn = load_fn(rank_fn, "rank_fn", source=source)
    except ImportError as err:
        log(f"rank proxy skipped: {err}")
        return frame
    cache = {r["key"]: r for r in read_jsonl(Path(out_dir) / RANKS)}
    frame = frame.copy()
    if "rank_proxy" not in frame.columns:
        frame["rank_proxy"] = math.nan
    for seed, sub in frame[frame["status"] == "ok"].groupby("seed"):
        if len(sub) < 2:
            continue
        key = stable_hash([PROTOCOL, *sorted(sub["attempt"])])
        if key not in cache:
            run_dirs = {r.variant: Path(out_dir) / r.run_dir for r in sub.itertuples()}
            try:
                with long_step(f"rank proxy of seed {seed} ({len(run_dirs)} runs)", f"ranked seed {seed}") as step:
                    ranks = fn(run_dirs)
                    step.result = Path(out_dir) / RANKS
            except UnsafeFileError:
                raise
            except Exception as err:  # noqa: BLE001 - a table without ranks beats no table
                log(f"rank proxy for seed {seed} failed: {type(err).__name__}: {err}")
                continue
            cache[key] = {"key": key, "seed": int(seed), "ranks": {v: (r["value"] if isinstance(r, dict) else r) for v, r in ranks.items()}}
            append_jsonl(Path(out_dir) / RANKS, cache[key])
        for variant, value in cache[key]["ranks"].items():
            frame.loc[(frame["seed"] == seed) & (frame["variant"] == variant), "rank_proxy"] = value
    return frame


def grid_design(manifest: dict, log: Callable[[str], None] = print) -> dict:
    """The grid's baseline, claim and expected effects: from launch.json when it holds them, else from the
    grid file it names (a grid file that no longer parses leaves them empty, logged)."""
    if "baseline" in manifest:
        from ablations.grids import Expectation

        return {"baseline": manifest["baseline"], "claim": manifest.get("claim", ""),
                "expect": [Expectation(**e) for e in manifest.get("expect", [])]}
    try:
        grid = load_grid(str(manifest.get("grid", "")))
    except GridError as err:
        log(f"no baseline: {err}")
        return {"baseline": None, "claim": "", "expect": []}
    return {"baseline": grid.baseline, "claim": grid.claim, "expect": list(grid.expect)}


def write_statistics(frame: pd.DataFrame, agg: pd.DataFrame, manifest: dict, out_dir: Path, interval: str,
                     log: Callable[[str], None]) -> tuple[str, tables.Marks, dict[str, Path]]:
    """Compare every variant with the grid's baseline; write DIR/table_diff.{md,tex,csv} (removed when there
    is nothing to compare, so none is left stale) and DIR/findings.md.

    Returns:
        the main table caption's sentence on bold, the marks (bold/italics) for the main table, and the paths.
    """
    design = grid_design(manifest, log)
    baseline = design["baseline"] if design["baseline"] in set(frame["variant"]) else None
    comparisons = findings.compare(frame, baseline, manifest.get("variants"), interval) if baseline else []
    profiles = frame["profile"].dropna() if "profile" in frame else pd.Series(dtype=str)
    profile = str(profiles.iloc[0]) if len(profiles) else str(manifest.get("profile", "?"))
    label = f"tab:{manifest.get('grid', 'ablation')}-diff"
    paths = {"findings.md": out_dir / "findings.md"}
    bodies = {"md": lambda: findings.diff_markdown(comparisons, agg, baseline, interval),
              "tex": lambda: findings.diff_latex(comparisons, agg, baseline, interval, label=label),
              "csv": lambda: findings.diff_csv(comparisons)}
    for ext, body in bodies.items():
        path = out_dir / f"table_diff.{ext}"
        if comparisons:
            paths[path.name] = path
            atomic_write_text(path, body())
        else:
            path.unlink(missing_ok=True)
    judged = findings.judge(frame, baseline, design["expect"], interval) if baseline else []
    atomic_write_text(paths["findings.md"], findings.findings_markdown(
        judged, grid=str(manifest.get("grid", "?")), profile=profile, baseline=baseline, claim=design["claim"],
        method=interval))
    return findings.significance_note(comparisons, baseline, interval, profile), findings.marks(comparisons), paths


def collect(
    out_dir: str | Path,
    *,
    rank_fn: RankFn | str | None = None,
    plots: bool = True,
    samples: bool = True,
    interval: str = "t",
    log: Callable[[str], None] = print,
) -> dict[str, Path]:
    """Build DIR/table.md, table.tex, table.csv, table_diff.*, findings.md (+ runs.csv, plots/, samples/,
    report.html) from DIR/results.jsonl; `interval` ("t" | "bootstrap") is the paired-difference interval.

    `rank_fn`: a callable or "module:function" given by the caller; without one, the name launch.json
    holds is used only when it is the default or allowed by $GANBLOCKS_TRUSTED_FNS.

    Returns:
        name -> path of everything written.

    Raises:
        UntrustedCallableError: launch.json names a rank_fn the user did not allow.
        UnsafeFileError: a run's checkpoint holds Python objects (a crafted file); nothing is unpickled.
    """
    out_dir = Path(out_dir)
    if not (out_dir / RESULTS).exists():
        raise FileNotFoundError(f"no {RESULTS} in {out_dir} (from out_dir=); run `python -m ablations.run grid=...` first")
    manifest = json.loads((out_dir / LAUNCH).read_text()) if (out_dir / LAUNCH).exists() else {}
    if "grid" not in manifest:  # results copied without launch.json: the rows name their grid
        manifest["grid"] = next((r["grid"] for r in read_jsonl(out_dir / RESULTS) if r.get("grid")), "?")
    frame = runs_frame(out_dir)
    if frame.empty:
        raise ValueError(f"{out_dir / RESULTS} holds no complete run yet")
    source = None if rank_fn is not None else out_dir / LAUNCH
    frame = add_rank_proxy(frame, out_dir, rank_fn or manifest.get("rank_fn"), log, source=source)
    agg = tables.aggregate(frame, manifest.get("variants"))
    note, marks, paths = write_statistics(frame, agg, manifest, out_dir, interval, log)
    shown = tables.with_real_row(agg, tables.real_values(frame))
    text = caption(frame, manifest, out_dir) + " " + note
    label = f"tab:{manifest.get('grid', 'ablation')}"
    paths.update({name: out_dir / name for name in ("table.md", "table.tex", "table.csv", "runs.csv")})
    atomic_write_text(paths["table.md"], tables.to_markdown(shown, text, marks))
    atomic_write_text(paths["table.tex"], tables.to_latex(shown, text, label=label, marks=marks))
    atomic_write_text(paths["table.csv"], tables.to_csv(shown))
    atomic_write_text(paths["runs.csv"], frame.to_csv(index=False, float_format="%.6g"))
    if plots:
        from ablations import plots as plotting

        try:
            with long_step("drawing plots", "drew plots") as step:
                paths.update(plotting.plot_all(frame, agg, out_dir))
                step.result = out_dir / "plots"
        except Exception as err:  # noqa: BLE001 - tables are the product; plots are a bonus
            log(f"plots skipped: {type(err).__name__}: {err}")
    if samples:
        from ablations import samples as sampling

        try:
            with long_step("drawing sample sheets", "drew sample sheets") as step:
                paths.update(sampling.sample_grids(frame, out_dir, manifest.get("variants")))
                step.result = out_dir / "samples"
        except UnsafeFileError:
            raise
        except Exception as err:  # noqa: BLE001
            log(f"samples skipped: {type(err).__name__}: {err}")
    from ablations.report import REPORT, write_report

    try:  # last: the page embeds everything above
        paths[REPORT] = write_report(out_dir)
    except Exception as err:  # noqa: BLE001
        log(f"report skipped: {type(err).__name__}: {err}")
    return paths


def main(argv: list[str] | None = None) -> int:
    """`python -m ablations.collect out_dir=DIR [plots=false] [samples=false] [interval=t|bootstrap]
    [rank_fn=module:function]`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip())
        return 0
    args = dict(a.split("=", 1) for a in argv if "=" in a)
    unknown = set(args) - {"out_dir", "plots", "samples", "interval", "rank_fn"}
    bad_interval = args.get("interval", "t") not in ("t", "bootstrap")
    if "out_dir" not in args or unknown or bad_interval:
        print("usage: python -m ablations.collect out_dir=DIR [plots=true|false] [samples=true|false] [interval=t|bootstrap] "
              "[rank_fn=module:function]"
              + (f"; unknown keys: {sorted(unknown)}" if unknown else "")
              + (f"; interval={args['interval']!r} is not t or bootstrap" if bad_interval else ""),
              file=sys.stderr)
        return 2
    flag = lambda k: args.get(k, "true").lower() not in ("false", "0", "no")  # noqa: E731
    if not (Path(args["out_dir"]) / RESULTS).is_file():
        print(f"ablations.collect: no {RESULTS} in {Path(args['out_dir']).resolve()} (from out_dir=); expected a folder "
              "written by `python -m ablations.run grid=...`", file=sys.stderr)
        return 2
    try:
        paths = collect(args["out_dir"], rank_fn=args.get("rank_fn"), plots=flag("plots"), samples=flag("samples"),
                        interval=args.get("interval", "t"))
    except (UntrustedCallableError, UnsafeFileError) as error:
        print(f"ablations.collect: {error}", file=sys.stderr)
        return 1
    print(paths["table.md"].read_text())
    print(f"table: {paths['table.md']}")
    if "report.html" in paths:
        print(f"report: {paths['report.html']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
