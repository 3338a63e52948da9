"""Seaborn figures of a grid: each metric per variant with every seed's point, and training curves.

plots/metric_<name>.png: x = variant (grid order), y = the metric, one dot per seed, the mean as a bar.
plots/curve_<key>.png:   every run's log.jsonl series (loss_d, loss_g, kl, ...) against step, a panel per
                         stage, a colour per variant and a line style per seed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ablations import tables  # noqa: E402

MAX_CURVES = 10  # at most this many curve figures, so a chatty trainer does not produce 50
# The trainer's keys that tell a GAN's story come first (alphabetical order put d_fake_uncond before d_wrong).
FIRST_CURVES = ("loss_d", "loss_g", "loss_g_adv", "kl", "d_real", "d_wrong", "d_fake")


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def metric_plots(frame: pd.DataFrame, agg: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    """One figure per table column that has values: per-seed dots over a mean bar per variant."""
    order = list(agg["variant"])
    ok = frame[frame["status"] == "ok"]
    paths = {}
    for col in tables.COLUMNS:
        key = tables.column_key(col, ok)
        if key is None or col.header == "Params":
            continue
        data = ok[["variant", "seed", key]].dropna()
        if data.empty:
            continue
        data = data.assign(**{key: pd.to_numeric(data[key])})
        fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(order), 3.2))
        sns.barplot(data=data, x="variant", y=key, order=order, errorbar=None, color="#c6d7ea", ax=ax)
        sns.stripplot(data=data, x="variant", y=key, order=order, hue="seed", palette="dark", size=6, jitter=0.15, ax=ax)
        arrow = {"higher": " (higher is better)", "lower": " (lower is better)", None: ""}[col.better]
        ax.set_title(f"{col.header}{arrow}")
        ax.set_xlabel("")
        ax.set_ylabel(col.header)
        ax.legend(title="seed", fontsize=7, title_fontsize=7, loc="best")
        name = "metric_" + key.replace(".", "_")
        paths[f"plots/{name}.png"] = _save(fig, out_dir / "plots" / f"{name}.png")
    return paths


SKIP_KEYS = ("step", "iteration", "epoch", "time", "stage", "lr", "images_per_sec")


def read_logs(frame: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """Every run's log.jsonl as one long frame: variant, seed, stage, step, key, value (numeric entries)."""
    rows = []
    for r in frame.itertuples():
        log = Path(out_dir) / str(r.run_dir) / "log.jsonl"
        if not log.exists():
            continue
        for i, line in enumerate(log.read_text().splitlines()):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            step = rec.get("step", rec.get("iteration", i))
            stage = str(rec.get("stage") or "all")
            for k, v in rec.items():
                if k in SKIP_KEYS or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    continue
                rows.append({"variant": r.variant, "seed": int(r.seed), "stage": stage, "step": step, "key": k, "value": float(v)})
    return pd.DataFrame(rows)


def curve_keys(logged: list[str]) -> list[str]:
    """Which logged keys get a curve figure, in order: FIRST_CURVES present, then the rest, MAX_CURVES in all."""
    return ([k for k in FIRST_CURVES if k in logged] + [k for k in logged if k not in FIRST_CURVES])[:MAX_CURVES]


def curve_plots(frame: pd.DataFrame, agg: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    """One figure per logged quantity (FIRST_CURVES, then the rest in log order, MAX_CURVES in all), a panel per
    stage, all runs overlaid."""
    logs = read_logs(frame, out_dir)
    paths = {}
    if logs.empty:
        return paths
    order = [v for v in agg["variant"] if v in set(logs["variant"])]
    for key in curve_keys(list(dict.fromkeys(logs["key"]))):
        data = logs[logs["key"] == key]
        g = sns.relplot(data=data, x="step", y="value", hue="variant", hue_order=order, style="seed", col="stage",
                        kind="line", estimator=None, height=3.0, aspect=1.4, facet_kws={"sharex": False, "sharey": False})
        g.set_ylabels(key)
        g.figure.suptitle(key, y=1.02)
        slug = "".join(ch if ch.isalnum() else "_" for ch in key).strip("_")
        paths[f"plots/curve_{slug}.png"] = _save(g.figure, out_dir / "plots" / f"curve_{slug}.png")
    return paths


def plot_all(frame: pd.DataFrame, agg: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    """Metric and curve figures under out_dir/plots/."""
    sns.set_theme(style="whitegrid", context="paper")
    return {**metric_plots(frame, agg, Path(out_dir)), **curve_plots(frame, agg, Path(out_dir))}
