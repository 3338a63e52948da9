"""The collector: DIR/results.jsonl (whatever ran where) -> table.md, table.tex, table.csv, plots/, samples/.

    python -m ablations.collect out_dir=ablation_runs/ca_variants-smoke

It reads the latest complete attempt of each (variant, seed), computes the cross-run rank proxy per seed
over the grid's finished runs (cached in DIR/rank_proxy.jsonl, keyed by the attempts it ranked and the rank
proxy's protocol version), and
writes the tables atomically, so running it again, or after more runs landed, is always safe.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ganblocks.evaluation.rank import PROTOCOL
from ganblocks.io import append_jsonl, atomic_write_text, read_jsonl, stable_hash

from ablations import tables
from ablations.runner import LAUNCH, RESULTS, complete_attempts, load_fn

RANKS = "rank_proxy.jsonl"
RankFn = Callable[[dict[str, Path]], dict[str, dict]]


def runs_frame(out_dir: Path) -> pd.DataFrame:
    """One row per (variant, seed): status, reason, each metric's value, params, images/s, run_dir, attempt."""
    latest = complete_attempts(read_jsonl(Path(out_dir) / RESULTS))
    records = []
    for (variant, seed), rows in latest.items():
        first = rows[0]
        rec: dict[str, Any] = {k: first.get(k) for k in ("variant", "variant_index", "seed", "status", "reason", "params", "images_per_s", "run_dir", "attempt", "profile", "git_sha", "wall_s")}
        for row in rows:
            if row.get("metric"):
                rec[row["metric"]] = row.get("value")
                rec[f"{row['metric']}:n_samples"] = row.get("n_samples")
                rec[f"{row['metric']}:evaluator"] = row.get("evaluator")
                rec[f"{row['metric']}:splits"] = row.get("splits")
        records.append(rec)
    frame = pd.DataFrame(records)
    if not frame.empty:
        frame = frame.sort_values(["variant_index", "seed"], kind="stable").reset_index(drop=True)
    return frame


def add_rank_proxy(frame: pd.DataFrame, out_dir: Path, rank_fn: RankFn | str | None, log: Callable[[str], None]) -> pd.DataFrame:
    """Add a `rank_proxy` column: per seed, the finished runs ranked against each other (lower is better).

    `rank_fn({variant: run_dir}) -> {variant: {"value": mean rank, ...}}`; default
    `ganblocks.evaluation:rank_proxy`. Results are cached in DIR/rank_proxy.jsonl by the ranked attempts and
    `ganblocks.evaluation.rank.PROTOCOL`, so a change in how the proxy scores images recomputes it.
    """
    if frame.empty or "rank_proxy" in frame.columns and frame["rank_proxy"].notna().all():
        return frame
    try:
        fn = load_fn(rank_fn, "rank_fn")
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
                ranks = fn(run_dirs)
            except Exception as err:  # noqa: BLE001 - a table without ranks beats no table
                log(f"rank proxy for seed {seed} failed: {type(err).__name__}: {err}")
                continue
            cache[key] = {"key": key, "seed": int(seed), "ranks": {v: (r["value"] if isinstance(r, dict) else r) for v, r in ranks.items()}}
            append_jsonl(Path(out_dir) / RANKS, cache[key])
        for variant, value in cache[key]["ranks"].items():
            frame.loc[(frame["seed"] == seed) & (frame["variant"] == variant), "rank_proxy"] = value
    return frame


def recipe(frame: pd.DataFrame, out_dir: str | Path | None) -> str:
    """The profile's choices, read from the runs' resolved config.yaml: text encoder, widths, N_g/N_z,
    batch, steps per stage, KL weight and preset ('' when no run folder has a config)."""
    if out_dir is None or "run_dir" not in frame:
        return ""
    found = set()
    for run_dir in frame["run_dir"].dropna():
        path = Path(out_dir) / str(run_dir) / "config.yaml"
        if not path.is_file():
            continue
        cfg = OmegaConf.load(path)
        try:
            m, t = cfg.model, cfg.train
            steps = f"{t.max_steps} steps" if t.max_steps is not None else f"{t.epochs} epochs"
            found.add(f"text encoder {cfg.data.text_encoder}, gf/df {m.gf_dim}/{m.df_dim}, N_g {m.condition_dim}, "
                      f"N_z {m.noise_dim}, batch {t.batch_size}, lr {t.lr:g}, {steps} per stage, KL weight "
                      f"{cfg.loss.kl_weight:g} ({m.preset} preset), data {cfg.data.size}")
        except OmegaConfBaseException:  # not a ganblocks training config (e.g. a test's fake run)
            continue
    return "Recipe: " + "; ".join(sorted(found)) + ". " if found else ""


def caption(frame: pd.DataFrame, manifest: dict, out_dir: str | Path | None = None) -> str:
    """Names the grid, profile, the profile's recipe (from the runs' configs under out_dir), seeds,
    evaluator(s), sample counts per metric and the source commit."""

    def uniq(column: str) -> str:
        vals = sorted({str(v) for v in frame[column].dropna()}, key=lambda v: (len(v), v)) if column in frame else []
        return "/".join(vals)

    evaluators = sorted({str(v) for c in frame.columns if c.endswith(":evaluator") for v in frame[c].dropna()})
    counts = []
    for col in tables.COLUMNS:
        key = tables.column_key(col, frame)
        if key is None or f"{key}:n_samples" not in frame:
            continue
        text = f"{col.header} {uniq(f'{key}:n_samples')}"
        if col.header == "IS" and uniq(f"{key}:splits"):
            text += f" ({uniq(f'{key}:splits')} splits)"
        counts.append(text)
    seeds = sorted({int(s) for s in frame["seed"]}) if not frame.empty else []
    profile = ", ".join(sorted({str(p) for p in frame.get("profile", pd.Series(dtype=str)).dropna()})) or manifest.get("profile", "?")
    shas = ", ".join(sorted({str(s) for s in frame.get("git_sha", pd.Series(dtype=str)).dropna()})) or "unknown"
    return (
        f"Ablation grid {manifest.get('grid', '?')} (profile {profile}): mean ± std over seeds {seeds} "
        f"(std needs 2+ finished seeds). {recipe(frame, out_dir)}Evaluator: {', '.join(evaluators) or 'n/a'}. Generated images per "
        f"metric: {', '.join(counts) or 'n/a'}. Rank: cross-run rank proxy per seed (mean per-caption rank of "
        f"text agreement and realism judged by the evaluator). ↑/↓: higher/lower is better; best in bold. "
        f"Code {shas}."
    )


def collect(
    out_dir: str | Path,
    *,
    rank_fn: RankFn | str | None = None,
    plots: bool = True,
    samples: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Path]:
    """Build DIR/table.md, table.tex, table.csv (+ runs.csv, plots/, samples/) from DIR/results.jsonl.

    Returns:
        name -> path of everything written.
    """
    out_dir = Path(out_dir)
    if not (out_dir / RESULTS).exists():
        raise FileNotFoundError(f"no {RESULTS} in {out_dir} (from out_dir=); run `python -m ablations.run grid=...` first")
    manifest = json.loads((out_dir / LAUNCH).read_text()) if (out_dir / LAUNCH).exists() else {}
    frame = runs_frame(out_dir)
    if frame.empty:
        raise ValueError(f"{out_dir / RESULTS} holds no complete run yet")
    frame = add_rank_proxy(frame, out_dir, rank_fn or manifest.get("rank_fn"), log)
    agg = tables.aggregate(frame, manifest.get("variants"))
    text = caption(frame, manifest, out_dir)
    paths = {name: out_dir / name for name in ("table.md", "table.tex", "table.csv", "runs.csv")}
    atomic_write_text(paths["table.md"], tables.to_markdown(agg, text))
    atomic_write_text(paths["table.tex"], tables.to_latex(agg, text, label=f"tab:{manifest.get('grid', 'ablation')}"))
    atomic_write_text(paths["table.csv"], tables.to_csv(agg))
    atomic_write_text(paths["runs.csv"], frame.to_csv(index=False, float_format="%.6g"))
    if plots:
        from ablations import plots as plotting

        try:
            paths.update(plotting.plot_all(frame, agg, out_dir))
        except Exception as err:  # noqa: BLE001 - tables are the product; plots are a bonus
            log(f"plots skipped: {type(err).__name__}: {err}")
    if samples:
        from ablations import samples as sampling

        try:
            paths.update(sampling.sample_grids(frame, out_dir, manifest.get("variants")))
        except Exception as err:  # noqa: BLE001
            log(f"samples skipped: {type(err).__name__}: {err}")
    return paths


def main(argv: list[str] | None = None) -> int:
    """`python -m ablations.collect out_dir=DIR [plots=false] [samples=false]`."""
    args = dict(a.split("=", 1) for a in (sys.argv[1:] if argv is None else argv) if "=" in a)
    unknown = set(args) - {"out_dir", "plots", "samples"}
    if "out_dir" not in args or unknown:
        print("usage: python -m ablations.collect out_dir=DIR [plots=true|false] [samples=true|false]"
              + (f"; unknown keys: {sorted(unknown)}" if unknown else ""), file=sys.stderr)
        return 2
    flag = lambda k: args.get(k, "true").lower() not in ("false", "0", "no")  # noqa: E731
    paths = collect(args["out_dir"], plots=flag("plots"), samples=flag("samples"))
    print(paths["table.md"].read_text())
    print(f"table: {paths['table.md']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
