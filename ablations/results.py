"""DIR/results.jsonl, the source of truth of a grid: attempts, which attempt counts, and repair after a kill.

Every row of one attempt at a run carries the attempt's id and its row count (`attempt`, `n_rows`); an
attempt is complete only when all its rows are in the file, so a kill between two appends leaves an
attempt that the next call simply redoes. The latest complete attempt of each (variant, seed) is the one
that counts; one that is `ok` or `diverged` (FINAL_STATUSES) is never run again.
"""

from __future__ import annotations

import os
from pathlib import Path

from ganblocks.io import read_jsonl

RESULTS = "results.jsonl"
FINAL_STATUSES = ("ok", "diverged")  # a run in one of these is never run again


def metric_rows(base: dict, metrics: dict[str, dict]) -> list[dict]:
    """The rows of one complete attempt: one per metric (`base` + metric, value, std, n_samples, splits,
    evaluator, and the record's other keys under `extra`), or, with no metrics, one row of `base` alone;
    each carries `n_rows`, so a reader can tell a complete attempt from one cut by a kill."""
    rows = []
    for name, m in sorted(metrics.items()):
        m = dict(m) if isinstance(m, dict) else {"value": m}
        row = {**base, "metric": name}
        for k in ("value", "std", "n_samples", "splits", "evaluator"):
            row[k] = m.pop(k, None)
        row["extra"] = m
        rows.append(row)
    if not rows:
        rows.append({**base, "metric": None, "value": None, "std": None, "n_samples": None, "splits": None,
                     "evaluator": None, "extra": {}})
    for row in rows:
        row["n_rows"] = len(rows)
    return rows


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
