"""Every variant against the grid's baseline, seed by seed, and what that says about the grid's claims.

From the runs frame (`ablations.collect.runs_frame`: one row per (variant, seed) with a column per metric):

- `compare` gives, per variant other than the baseline and per directed table column, the paired
  differences variant - baseline over the seeds where both finished (`ok`) with a value, their mean and a
  95 % interval (`ablations.stats`: t by default, or bootstrap);
- `marks` turns them into the main table's bold (significantly better, in the column's direction) and
  italics (significantly worse);
- `diff_markdown` / `diff_latex` / `diff_csv` write the difference table (table_diff.*);
- `judge` checks each of the grid's expected effects: "holds" when the interval excludes 0 on the expected
  side, "contradicted" when it excludes 0 on the other side, "inconclusive" otherwise (it contains 0, or
  fewer than 2 seed pairs, or no value); `findings_markdown` writes DIR/findings.md from that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import pandas as pd

from ablations import stats, tables
from ablations.grids import Expectation

HOLDS, CONTRADICTED, INCONCLUSIVE = "holds", "contradicted", "inconclusive"


@dataclass(frozen=True)
class Comparison:
    """One variant against the baseline on one metric.

    key:      the metric as results.jsonl names it (the frame column).
    header:   the table column it feeds (None when no column reads it).
    better:   "higher" | "lower" | None: the column's direction.
    seeds:    the seeds that form the pairs, in order.
    interval: mean of variant - baseline over those seeds, and its interval.
    """

    variant: str
    baseline: str
    key: str
    header: str | None
    better: str | None
    seeds: tuple[int, ...]
    interval: stats.Interval

    @property
    def mark(self) -> str | None:
        """"better" / "worse" when the interval excludes 0 (in the column's direction), else None."""
        if self.better is None or not self.interval.excludes_zero:
            return None
        up = self.interval.side > 0
        return "better" if up == (self.better == "higher") else "worse"


def column_for(metric: str) -> tables.Column | None:
    """The table column that reads `metric` (a results.jsonl name or one of its aliases)."""
    return next((c for c in tables.COLUMNS if metric in c.keys), None)


def paired(runs: pd.DataFrame, baseline: str, variant: str, key: str) -> tuple[tuple[int, ...], list[float]]:
    """The seeds at which both `variant` and `baseline` finished ok with a finite `key`, and the differences
    variant - baseline at those seeds (in seed order)."""
    if key not in runs.columns:
        return (), []

    def values(label: str) -> dict[int, float]:
        sub = runs[(runs["variant"] == label) & (runs["status"] == "ok")]
        vals = pd.to_numeric(sub[key], errors="coerce")
        return {int(s): float(v) for s, v in zip(sub["seed"], vals) if math.isfinite(v)}

    base, var = values(baseline), values(variant)
    seeds = tuple(sorted(set(base) & set(var)))
    return seeds, [var[s] - base[s] for s in seeds]


def compare_metric(runs: pd.DataFrame, baseline: str, variant: str, metric: str, method: str = "t") -> Comparison:
    """`variant` against `baseline` on `metric` (an alias is resolved to the name the runs carry)."""
    col = column_for(metric)
    key = (tables.column_key(col, runs) if col else None) or metric
    seeds, diffs = paired(runs, baseline, variant, key)
    return Comparison(variant, baseline, key, col.header if col else None, col.better if col else None, seeds,
                      stats.interval(diffs, method))


def compare(runs: pd.DataFrame, baseline: str, order: Sequence[str] | None = None,
            method: str = "t") -> list[Comparison]:
    """Every variant except `baseline` (in `order`, then first-seen) on every directed column the runs have.

    Raises:
        ValueError: `baseline` has no run in `runs` (names the variants that have).
    """
    present = list(dict.fromkeys(runs["variant"]))
    if baseline not in present:
        raise ValueError(f"baseline {baseline!r} has no run in results.jsonl; variants with runs: {', '.join(present)}")
    labels = [v for v in [*(order or []), *present] if v in present and v != baseline]
    out = []
    for variant in dict.fromkeys(labels):
        for col in tables.COLUMNS:
            key = tables.column_key(col, runs)
            if col.better and key:
                out.append(compare_metric(runs, baseline, variant, key, method))
    return out


def marks(comparisons: Sequence[Comparison]) -> tables.Marks:
    """(variant, column header) -> "better" | "worse" for the significant comparisons (the table's bold)."""
    return {(c.variant, c.header): c.mark for c in comparisons if c.mark and c.header}


def verdict(interval: stats.Interval, direction: str) -> str:
    """holds / contradicted / inconclusive for an expected `direction` ("higher" | "lower") of the difference."""
    if interval.side == 0:
        return INCONCLUSIVE
    return HOLDS if (interval.side > 0) == (direction == "higher") else CONTRADICTED


@dataclass(frozen=True)
class Finding:
    """An expected effect, the comparison that tests it, and the verdict."""

    expectation: Expectation
    comparison: Comparison

    @property
    def verdict(self) -> str:
        return verdict(self.comparison.interval, self.expectation.direction)


def judge(runs: pd.DataFrame, baseline: str, expectations: Sequence[Expectation],
          method: str = "t") -> list[Finding]:
    """Each expected effect tested against the runs (a variant without runs is inconclusive with n = 0)."""
    return [Finding(e, compare_metric(runs, baseline, e.variant, e.metric, method)) for e in expectations]


# ---------------------------------------------------------------------------------------------------------
# Text


def _digits(value: float) -> int:
    """Decimals that show |value| to 2 significant digits (0 for 10 and above, at most 6)."""
    if not math.isfinite(value) or value == 0:
        return 0
    return min(6, max(0, 1 - int(math.floor(math.log10(abs(value))))))


def decimals(interval: stats.Interval) -> int:
    """Decimals for an interval: its width to 2 significant digits, and the mean to 2 where that needs at
    most one more (a mean far smaller than the interval's width is noise either way); an interval that excludes
    0 also shows its end nearest 0 to one significant digit, so a bold cell never reads "[-0.49, +0.00]"."""
    width = _digits(interval.hi - interval.lo) if interval.defined else None
    mean = _digits(interval.mean)
    if width is None or interval.hi == interval.lo:
        return mean if interval.mean else 3
    dec = max(width, min(mean, width + 1))
    if interval.lo > 0 or interval.hi < 0:  # it excludes 0: its nearer end keeps a significant digit, never "+0.00"
        dec = max(dec, _digits(min(abs(interval.lo), abs(interval.hi))) - 1)
    return dec


def _signed(value: float, dec: int) -> str:
    return f"{round(value, dec) + 0.0:+.{dec}f}"  # + 0.0: no "-0.00"


def format_interval(interval: stats.Interval, dec: int | None = None) -> tuple[str, str]:
    """("+0.123", "[+0.050, +0.196]") or, when undefined, (mean, "n/a (why)")."""
    iv = interval
    dec = decimals(iv) if dec is None else dec
    mean = _signed(iv.mean, dec) if math.isfinite(iv.mean) else "–"
    ci = f"[{_signed(iv.lo, dec)}, {_signed(iv.hi, dec)}]" if iv.defined else f"n/a ({iv.why})"
    return mean, ci


def _seeds(c: Comparison) -> str:
    return f"{c.interval.n} ({', '.join(str(s) for s in c.seeds)})" if c.seeds else "0"


def interval_words(method: str = "t") -> str:
    name = "Student's t interval" if method == "t" else "percentile bootstrap interval"
    return f"95 % {name}"


def findings_markdown(findings: Sequence[Finding], *, grid: str, profile: str, baseline: str | None,
                      claim: str, method: str = "t") -> str:
    """DIR/findings.md: one line per expected effect with its verdict, numbers and claim."""
    lines = [
        f"# Findings: grid {grid} (profile {profile})",
        "",
        "Generated by `python -m ablations.collect` from results.jsonl; do not edit by hand.",
        "",
        f"Claim: {claim}" if claim else "Claim: (the grid file states none)",
        "",
    ]
    if baseline is None:
        return "\n".join(lines + ["No baseline with runs (`baseline:` in the grid file): no effect is tested."]) + "\n"
    lines += [
        f"Each effect is the paired difference variant − {baseline} (the baseline) at the same seed, its mean "
        f"and {interval_words(method)} over the seed pairs. holds: the interval excludes 0 on the expected "
        f"side; contradicted: it excludes 0 on the other side; inconclusive: it contains 0, or fewer than 2 "
        f"seeds ran both.",
        "",
    ]
    if not findings:
        return "\n".join(lines + ["The grid file states no expected effect (`expect:`)."]) + "\n"
    lines += ["| Expected effect | Verdict | Mean difference | 95 % CI | Seed pairs |", "|---|---|---:|---:|---:|"]
    for f in findings:
        e, c = f.expectation, f.comparison
        mean, ci = format_interval(c.interval)
        effect = f"{e.variant} vs {baseline}: {e.metric} {e.direction}"
        lines.append(f"| {effect} | **{f.verdict}** | {mean} | {ci} | {_seeds(c)} |")
    own = [f for f in findings if f.expectation.claim and f.expectation.claim != claim]
    if own:
        lines += ["", *[f"- {f.expectation.variant} / {f.expectation.metric}: {f.expectation.claim}" for f in own]]
    return "\n".join(lines) + "\n"


def diff_rows(comparisons: Sequence[Comparison], agg: pd.DataFrame,
              latex: bool = False) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of the difference table: per variant, per directed column, mean [CI] (n)."""
    arrows = {"higher": r" $\uparrow$" if latex else " ↑", "lower": r" $\downarrow$" if latex else " ↓"}
    cols = [c for c in tables.shown_columns(agg) if c.better and any(x.header == c.header for x in comparisons)]
    variants = list(dict.fromkeys(x.variant for x in comparisons))
    by = {(x.variant, x.header): x for x in comparisons}
    styles = {"better": r"\textbf{%s}" if latex else "**%s**", "worse": r"\textit{%s}" if latex else "*%s*"}
    rows = []
    places = {c.header: max([decimals(x.interval) for x in comparisons if x.header == c.header and x.interval.n],
                            default=3) for c in cols}
    for v in variants:
        row = [tables.latex_escape(v) if latex else v]
        pairs = max((by[(v, c.header)].interval.n for c in cols if (v, c.header) in by), default=0)
        for c in cols:
            x = by.get((v, c.header))
            if x is None or x.interval.n == 0:
                row.append("–")
                continue
            mean, ci = format_interval(x.interval, places[c.header])
            text = f"{mean} [{ci[1:-1]}]" if x.interval.defined else f"{mean} (n/a)"
            if x.interval.n != pairs:
                text += f" (n={x.interval.n})"
            text = styles[x.mark] % text if x.mark else text
            row.append(text)
        row.append(str(pairs))
        rows.append(row)
    delta = r"$\Delta$" if latex else "Δ"
    headers = ["Variant", *[f"{delta} {c.header}{arrows[c.better]}" for c in cols], "Seed pairs"]
    return headers, rows


def diff_caption(baseline: str, method: str, n_pairs: Sequence[int]) -> str:
    few = min(n_pairs, default=0) < 2
    return (f"Difference to the baseline {baseline}: variant − {baseline} at the same seed, mean "
            f"[{interval_words(method)} over seed pairs]. Bold: the interval excludes 0 on the better side (↑/↓); "
            f"italics: on the worse side." + (" With fewer than 2 seed pairs no interval exists (n/a) and nothing "
                                             "is marked." if few else ""))


def diff_markdown(comparisons: Sequence[Comparison], agg: pd.DataFrame, baseline: str, method: str = "t") -> str:
    """DIR/table_diff.md."""
    headers, rows = diff_rows(comparisons, agg)
    lines = [f"**Table.** {diff_caption(baseline, method, [c.interval.n for c in comparisons])}", "",
             "| " + " | ".join(headers) + " |", "| " + " | ".join(["---"] + ["---:"] * (len(headers) - 1)) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def diff_latex(comparisons: Sequence[Comparison], agg: pd.DataFrame, baseline: str, method: str = "t",
               label: str = "tab:ablation-diff") -> str:
    """DIR/table_diff.tex: a booktabs table."""
    headers, rows = diff_rows(comparisons, agg, latex=True)
    text = tables.latex_escape(diff_caption(baseline, method, [c.interval.n for c in comparisons]))
    text = text.replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$").replace("−", "$-$")
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{text}}}", rf"\label{{{label}}}",
             rf"\begin{{tabular}}{{l{'r' * (len(headers) - 1)}}}", r"\toprule", " & ".join(headers) + r" \\",
             r"\midrule", *[" & ".join(r) + r" \\" for r in rows], r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def diff_csv(comparisons: Sequence[Comparison]) -> str:
    """DIR/table_diff.csv: one row per (variant, metric), unformatted."""
    frame = pd.DataFrame([{
        "variant": c.variant, "baseline": c.baseline, "metric": c.key, "column": c.header, "better": c.better,
        "n_pairs": c.interval.n, "seeds": " ".join(str(s) for s in c.seeds), "mean_diff": c.interval.mean,
        "ci_low": c.interval.lo, "ci_high": c.interval.hi, "method": c.interval.method,
        "confidence": c.interval.confidence, "significant": c.interval.excludes_zero, "mark": c.mark or "",
    } for c in comparisons])
    return frame.to_csv(index=False, float_format="%.6g")


def significance_note(comparisons: Sequence[Comparison], baseline: str | None, method: str = "t",
                      profile: str = "") -> str:
    """The main table caption's sentence on what bold means, and why nothing is bold when no interval exists."""
    if baseline is None:
        return "The grid names no baseline: no differences are tested and nothing is bold."
    text = (f"Bold: significantly better than the baseline {baseline}, italics: significantly worse (the "
            f"{interval_words(method)} of the paired difference over seeds excludes 0; table_diff.md gives the "
            f"intervals).")
    if comparisons and max(c.interval.n for c in comparisons) < 2:
        why = " (the smoke profile runs 1 seed: it checks the pipeline, not the science)" if profile == "smoke" else ""
        text += f" Fewer than 2 seeds per variant{why}: no interval exists and nothing is bold."
    return text
