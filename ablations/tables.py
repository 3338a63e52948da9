"""Ablation tables: per-run results -> mean +- std over seeds per variant, as Markdown, booktabs LaTeX, CSV.

Input is one row per run (`runs_frame` in ablations.collect builds it): variant, variant_index, seed,
status, reason, one column per metric (and `<metric>:real`, `<metric>:chance` where the evaluation gave
them), params, images_per_s. A cell is bold only when the variant is significantly better than the
grid's baseline on that column (the paired 95 % interval over seeds excludes 0 on the better side;
`ablations.findings.marks` decides, respecting each column's direction: FID, KID and rank are
lower-is-better) and in italics when significantly worse; parameter count is never marked. The `real`
row (real test images through the same protocol) is a reference, never marked and never compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import pandas as pd


@dataclass(frozen=True)
class Column:
    """A table column: its header, the metric names that feed it, and which way is better."""

    header: str
    keys: tuple[str, ...]
    better: str | None  # "higher" | "lower" | None (never bold)
    required: bool = True  # shown even when no run has it (as "–")


COLUMNS: tuple[Column, ...] = (
    Column("IS", ("is", "inception_score", "isc"), "higher"),
    Column("FID", ("fid",), "lower"),
    Column("KID", ("kid",), "lower", required=False),
    Column("R-precision", ("r_precision", "rprecision"), "higher"),
    Column("Rank", ("rank_proxy", "rank"), "lower"),
    Column("Coarse attr.", ("attr_coarse", "coarse_attribute_accuracy", "attributes_coarse", "coarse_attr", "attributes.coarse"), "higher"),
    Column("Fine attr.", ("attr_fine", "fine_attribute_accuracy", "attributes_fine", "fine_attr", "attributes.fine"), "higher",
           required=False),  # not judged below the judge's input size (a 64 px grid has none)
    Column("Diversity", ("diversity", "lpips_diversity"), None),  # no better direction: real images lie between no-CA and CA runs
    Column("Pixelation", ("pixelation",), "lower", required=False),
    Column("Params", ("params",), None),
    Column("Images/s", ("images_per_s",), "higher"),
)


def column_key(col: Column, frame: pd.DataFrame) -> str | None:
    """The first of the column's metric names present in `frame`, or None."""
    for k in col.keys:
        if k in frame.columns and frame[k].notna().any():
            return k
    return None


def aggregate(runs: pd.DataFrame, order: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per variant: n_runs, n_ok, statuses, and <header> mean / std / n over ok seeds.

    Args:
        runs: one row per run (see module docstring).
        order: variant labels in table order (the grid's); others follow in first-seen order.
    """
    labels = list(order or [])
    labels += [v for v in runs["variant"].drop_duplicates() if v not in labels]
    labels = [v for v in labels if (runs["variant"] == v).any()]
    out = []
    for label in labels:
        sub = runs[runs["variant"] == label].sort_values("seed")
        ok = sub[sub["status"] == "ok"]
        rec: dict = {"variant": label, "n_runs": len(sub), "n_ok": len(ok), "seeds": ",".join(str(int(s)) for s in sub["seed"])}
        bad = sub[sub["status"] != "ok"]
        rec["status"] = "ok" if bad.empty else "; ".join(f"seed {int(r.seed)} {r.status}" for r in bad.itertuples())
        rec["reasons"] = "; ".join(f"seed {int(r.seed)}: {r.reason}" for r in bad.itertuples() if isinstance(r.reason, str))
        for col in COLUMNS:
            key = column_key(col, runs)
            values = pd.to_numeric(ok[key], errors="coerce").dropna() if key else pd.Series(dtype=float)
            rec[f"{col.header} mean"] = float(values.mean()) if len(values) else math.nan
            rec[f"{col.header} std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
            rec[f"{col.header} n"] = int(len(values))
        out.append(rec)
    return pd.DataFrame(out)


REAL_LABEL = "real (test images)"


def _per_column(runs: pd.DataFrame, suffix: str) -> dict[str, float]:
    """Column header -> mean over runs of `<metric><suffix>` (e.g. ':real', ':chance'), where present."""
    out = {}
    for col in COLUMNS:
        key = column_key(col, runs)
        if key is None or f"{key}{suffix}" not in runs:
            continue
        values = pd.to_numeric(runs[f"{key}{suffix}"], errors="coerce").dropna()
        if len(values):
            out[col.header] = float(values.mean())
    return out


def real_values(runs: pd.DataFrame) -> dict[str, float]:
    """Column header -> the real row's value (real test images through the same protocol)."""
    return _per_column(runs, ":real")


def chance_values(runs: pd.DataFrame) -> dict[str, float]:
    """Column header -> the chance level of a text metric (R-precision, attribute accuracies)."""
    return _per_column(runs, ":chance")


def with_real_row(agg: pd.DataFrame, real: dict[str, float]) -> pd.DataFrame:
    """`agg` plus a last row `real (test images)` holding `real` (a reference: no seeds, never bold)."""
    agg = agg.assign(reference=False)
    if not real:
        return agg
    rec: dict = {"variant": REAL_LABEL, "n_runs": 0, "n_ok": 0, "seeds": "", "status": "reference", "reasons": "",
                 "reference": True}
    for col in COLUMNS:
        rec[f"{col.header} mean"] = real.get(col.header, math.nan)
        rec[f"{col.header} std"] = math.nan
        rec[f"{col.header} n"] = 0
    return pd.concat([agg, pd.DataFrame([rec])], ignore_index=True)


def shown_columns(agg: pd.DataFrame) -> list[Column]:
    """Required columns, plus optional ones that have a value."""
    return [c for c in COLUMNS if c.required or agg[f"{c.header} n"].sum() > 0]


def _decimals(values: Sequence[float]) -> int:
    finite = [abs(v) for v in values if isinstance(v, float) and math.isfinite(v)]
    top = max(finite, default=1.0)
    return 1 if top >= 100 else 2 if top >= 1 else 3


def _params(v: float) -> str:
    if not math.isfinite(v):
        return "–"
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.2f}{unit}"
    return f"{int(v)}"


Marks = dict[tuple[str, str], str]  # (variant, column header) -> "better" | "worse" than the baseline


def cells(agg: pd.DataFrame, latex: bool = False, marks: Marks | None = None) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells for Markdown or LaTeX: bold where `marks` says significantly better than
    the baseline, italics where significantly worse; nothing is marked without `marks`."""
    cols = shown_columns(agg)
    pm = r" $\pm$ " if latex else " ± "
    arrows = {"higher": r" $\uparrow$" if latex else " ↑", "lower": r" $\downarrow$" if latex else " ↓", None: ""}
    headers = ["Variant"] + [c.header + arrows[c.better] for c in cols] + ["Runs"]
    body = [[latex_escape(v) if latex else v for v in agg["variant"]]]
    ref = [bool(r) for r in agg["reference"]] if "reference" in agg else [False] * len(agg)
    for c in cols:
        means = [float(x) for x in agg[f"{c.header} mean"]]
        stds = [float(x) for x in agg[f"{c.header} std"]]
        dec = _decimals(means)
        texts = []
        for m, s in zip(means, stds):
            if not math.isfinite(m):
                texts.append("–")
            elif c.header == "Params":
                texts.append(_params(m))
            else:
                texts.append(f"{m:.{dec}f}" + (f"{pm}{s:.{dec}f}" if math.isfinite(s) else ""))
        styles = {"better": r"\textbf{%s}" if latex else "**%s**", "worse": r"\textit{%s}" if latex else "*%s*"}
        found = [(marks or {}).get((v, c.header)) if c.better and not r else None
                 for v, r in zip(agg["variant"], ref)]
        texts = [styles[f] % t if f in styles and t != "–" else t for t, f in zip(texts, found)]
        body.append(texts)
    runs = ["reference" if r else f"{ok}/{n}" + ("" if st == "ok" else f" ({st})")
            for ok, n, st, r in zip(agg["n_ok"], agg["n_runs"], agg["status"], ref)]
    body.append([latex_escape(r) if latex else r for r in runs])
    rows = [list(r) for r in zip(*body)]
    return headers, rows


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters in a label."""
    out = str(text)
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"), ("$", r"\$"), ("{", r"\{"), ("}", r"\}")):
        out = out.replace(a, b)
    return out


def to_markdown(agg: pd.DataFrame, caption: str, marks: Marks | None = None) -> str:
    """A Markdown table with the caption above it and failure reasons below it (`marks`: see `cells`)."""
    headers, rows = cells(agg, marks=marks)
    align = ["---"] + ["---:"] * (len(headers) - 1)
    lines = [f"**Table.** {caption}", "", "| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    notes = [f"- {v}: {r}" for v, r in zip(agg["variant"], agg["reasons"]) if r]
    if notes:
        lines += ["", "Runs that did not finish:", *notes]
    return "\n".join(lines) + "\n"


def to_latex(agg: pd.DataFrame, caption: str, label: str = "tab:ablation", marks: Marks | None = None) -> str:
    """A booktabs table (needs \\usepackage{booktabs}; `marks`: see `cells`)."""
    headers, rows = cells(agg, latex=True, marks=marks)
    spec = "l" + "r" * (len(headers) - 1)
    text = latex_escape(caption).replace("±", r"$\pm$").replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$")
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{text}}}",
        rf"\label{{{label}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(headers) + r" \\",
        r"\midrule",
        *[" & ".join(r) + r" \\" for r in rows],
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def to_csv(agg: pd.DataFrame) -> str:
    """The aggregate numbers, unformatted."""
    return agg.to_csv(index=False, float_format="%.6g")


def mixed_evaluators(frame: pd.DataFrame) -> str:
    """A warning naming every metric whose runs were scored by more than one evaluator (a grid resumed after the
    judge changed), with the runs each scored: its mean over seeds is not one judge's number. '' when none."""
    notes = []
    for col in sorted(c for c in frame.columns if c.endswith(":evaluator")):
        used = frame[col].dropna().astype(str)
        if used.nunique() < 2:
            continue
        runs = "; ".join(f"{name}: " + ", ".join(f"{r.variant} seed {int(r.seed)}"
                                                  for r in frame.loc[used.index[used == name]].itertuples())
                         for name in sorted(used.unique()))
        notes.append(f"{col.removesuffix(':evaluator')} scored by {used.nunique()} evaluators ({runs})")
    if not notes:
        return ""
    return ("NOT COMPARABLE: " + "; ".join(notes) + ": re-evaluate the older runs "
            "(python -m experiments.evaluate run_dir=RUN) before quoting these columns. ")
