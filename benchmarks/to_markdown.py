"""Turn a pytest-benchmark JSON file into a Markdown table, one section per benchmark group.

    pytest benchmarks --benchmark-only --benchmark-json=bench.json
    python -m benchmarks.to_markdown bench.json > docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd


def benchmark_frame(report: dict) -> pd.DataFrame:
    """One row per benchmark: group, name, params, median/mean/std in ms, items/s, device."""
    rows = []
    for b in report["benchmarks"]:
        stats, extra = b["stats"], b.get("extra_info", {})
        median = stats["median"]
        items = extra.get("items_per_call")
        rows.append(
            {
                "group": b.get("group") or "ungrouped",
                "benchmark": b["name"].split("[")[0],
                "params": ", ".join(f"{k}={v}" for k, v in (b.get("params") or {}).items()),
                "median ms": median * 1e3,
                "mean ms": stats["mean"] * 1e3,
                "std ms": stats["stddev"] * 1e3,
                "rounds": stats["rounds"],
                "items/s": (items / median) if items else None,
                **{k: v for k, v in extra.items() if k not in {"items_per_call"}},
            }
        )
    return pd.DataFrame(rows)


def to_markdown(report: dict) -> str:
    frame = benchmark_frame(report)
    info = report.get("machine_info", {})
    lines = [
        f"Machine: {info.get('cpu', {}).get('brand_raw', info.get('processor', '?'))}, "
        f"Python {info.get('python_version', '?')}; run {report.get('datetime', '?')}",
        "",
    ]
    for group, part in frame.groupby("group", sort=True):
        part = part.drop(columns=["group"]).dropna(axis=1, how="all")
        lines += [f"### {group}", "", part.to_markdown(index=False, floatfmt=".3g"), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json_file", type=Path, help="output of --benchmark-json")
    args = parser.parse_args(argv)
    if not args.json_file.exists():
        parser.error(f"benchmark JSON {args.json_file} does not exist; make it with --benchmark-json=FILE")
    print(to_markdown(json.loads(args.json_file.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
