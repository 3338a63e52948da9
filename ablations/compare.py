"""`python -m ablations.compare A=DIR:VARIANT B=DIR:VARIANT [metrics=m1,m2] [method=t|bootstrap] [out=FILE.md]`.

Paired comparison of one variant of one grid with one variant of another (or the same) grid, seed by seed:
the tool behind a claim such as "the 200-epoch encoder raises R-precision over the 100-epoch one" when the
two sides were trained as two grids. Seed k of A is paired with seed k of B (the same data order, evaluation
captions and noise when the configs differ only in what is compared); the difference is B - A with a 95 %
interval from `ablations.stats` (t by default), as in a grid's own table_diff.

It reads each grid's `results.jsonl` (the latest complete attempt of every run, `ok` runs only) and each
run's `config.yaml`, and prints, and with `out=` writes atomically as markdown, per metric the values of A and
B per seed, their mean +- std, and the paired difference with its interval; and the config keys in which the
paired runs differ, so the table says what it compares.

Refused, with one line naming the value and exit status 2, before anything is written: a folder without a
results.jsonl, an empty `metrics=`, an `out=` that is a folder, a variant the grid does not have (the message lists those it has), a metric neither side has,
no seed that both sides ran, and a metric whose two sides were scored by different evaluators (numbers of two
judges are not comparable).

Example (docs/results/learning.md, round 5):
    python -m ablations.compare A=docs/results/grids/ca_variants:gaussian \
        B=docs/results/grids/ca_variants_rnn200:gaussian metrics=r_precision,attr_coarse out=compare.md
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from ablations import stats
from ablations.findings import format_interval, interval_words
from ablations.results import RESULTS, complete_attempts
from ganblocks.io import atomic_write_text, read_jsonl

DEFAULT_METRICS = ("r_precision", "attr_coarse", "is", "fid", "diversity")
USAGE = ("usage: python -m ablations.compare A=DIR:VARIANT B=DIR:VARIANT [metrics=m1,m2] [method=t|bootstrap] "
         "[out=FILE.md]")
# Keys that differ between any two runs without changing what is trained.
_IGNORED = ("run_dir", "train.progress", "train.resume", "hydra")


class CompareError(ValueError):
    """A bad side, metric or pairing: the message names it."""


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a grid folder, one of its variants, and its runs' rows by seed."""

    label: str
    folder: Path
    variant: str
    rows: dict[int, list[dict]]  # seed -> rows (one per metric) of its latest complete ok attempt

    def value(self, seed: int, metric: str) -> dict | None:
        return next((r for r in self.rows[seed] if r.get("metric") == metric), None)


def read_side(label: str, spec: str) -> Side:
    """`DIR:VARIANT` -> Side. Raises CompareError naming the folder or the variant."""
    folder, sep, variant = spec.rpartition(":")
    if not sep or not folder or not variant:
        raise CompareError(f"{label}={spec!r}: expected DIR:VARIANT (a grid's out_dir and one of its variants)")
    path = Path(folder) / RESULTS
    if not path.is_file():
        raise CompareError(f"{label}={spec!r}: {path} does not exist; point at a grid's out_dir")
    attempts = complete_attempts(read_jsonl(path))
    have = sorted({v for v, _ in attempts})
    if variant not in have:
        raise CompareError(f"{label}={spec!r}: no variant {variant!r} in {path}; it has: {', '.join(have)}")
    rows = {seed: group for (v, seed), group in attempts.items() if v == variant and group[0].get("status") == "ok"}
    return Side(label, Path(folder), variant, dict(sorted(rows.items())))


def _flat(tree: object, prefix: str = "") -> dict[str, object]:
    if isinstance(tree, dict):
        out: dict[str, object] = {}
        for k, v in tree.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: tree}


def config_difference(a: Side, b: Side, seed: int) -> list[str]:
    """'key: A value -> B value' for each config key in which the two seed-`seed` runs differ."""
    configs = []
    for side in (a, b):
        path = side.folder / side.rows[seed][0]["run_dir"] / "config.yaml"
        if not path.is_file():
            return [f"(no {path}: configs not compared)"]
        configs.append(_flat(yaml.safe_load(path.read_text()) or {}))
    keys = sorted(set(configs[0]) | set(configs[1]))
    return [f"{k}: {configs[0].get(k, '(absent)')} -> {configs[1].get(k, '(absent)')}" for k in keys
            if configs[0].get(k) != configs[1].get(k) and not any(k == i or k.startswith(i + ".") for i in _IGNORED)]


def _num(x: float) -> str:
    return f"{x:.3f}" if abs(x) < 1 else f"{x:.2f}" if abs(x) < 100 else f"{x:.1f}"


def _spread(xs: list[float]) -> str:
    return f"{_num(statistics.mean(xs))} ± {_num(statistics.stdev(xs))}" if len(xs) > 1 else _num(xs[0])


def compare(a: Side, b: Side, metrics: list[str], method: str = "t") -> str:
    """The comparison as markdown. Raises CompareError (no common seed, unknown metric, two evaluators)."""
    if method not in stats.METHODS:
        raise CompareError(f"method={method!r}: expected one of {', '.join(stats.METHODS)}")
    seeds = sorted(set(a.rows) & set(b.rows))
    if not seeds:
        raise CompareError(f"A has ok seeds {sorted(a.rows)} and B {sorted(b.rows)}: no seed that both ran")
    lines = [f"# {b.variant} ({b.folder}) against {a.variant} ({a.folder})", "",
             f"B - A paired by seed over seeds {seeds}; {interval_words(method)} of the mean difference (bold when "
             "it excludes 0).", "", "| metric | A per seed | B per seed | A mean ± std | "
             "B mean ± std | B - A | interval |", "| --- | --- | --- | --- | --- | --- | --- |"]
    evaluators = set()
    for metric in metrics:
        pairs = [(a.value(s, metric), b.value(s, metric)) for s in seeds]
        pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
        if not pairs:
            raise CompareError(f"metrics={metric!r}: not in both sides' results for seeds {seeds}")
        judges = {str(r.get("evaluator")) for pair in pairs for r in pair}
        if len(judges) > 1:
            raise CompareError(f"metrics={metric!r}: scored by different evaluators ({', '.join(sorted(judges))}); "
                               "re-evaluate one side so both use the same judge")
        evaluators |= judges
        xa, xb = [float(x["value"]) for x, _ in pairs], [float(y["value"]) for _, y in pairs]
        interval = stats.METHODS[method]([y - x for x, y in zip(xa, xb)])
        mean, ci = format_interval(interval)
        cell = f"**{mean}**" if interval.excludes_zero else mean
        lines.append(f"| {metric} | {' / '.join(map(_num, xa))} | {' / '.join(map(_num, xb))} | {_spread(xa)} | "
                     f"{_spread(xb)} | {cell} | {ci} |")
    lines += ["", f"Evaluator: {', '.join(sorted(evaluators))}.", "",
              f"Config keys in which the seed-{seeds[0]} runs differ (A -> B):", ""]
    lines += [f"- {d}" for d in config_difference(a, b, seeds[0])] or ["- none"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip())
        return 0
    args = dict(a.split("=", 1) if "=" in a else (a, "") for a in argv)
    unknown = sorted(set(args) - {"A", "B", "metrics", "method", "out"})
    if unknown or not {"A", "B"} <= set(args):
        print(f"{'unknown setting ' + ', '.join(unknown) if unknown else 'A= and B= are required'}\n{USAGE}",
              file=sys.stderr)
        return 2
    metrics = [m for m in args.get("metrics", ",".join(DEFAULT_METRICS)).split(",") if m]
    if not metrics:
        print(f"ablations.compare: metrics={args['metrics']!r}: no metric named; e.g. metrics=r_precision,attr_coarse",
              file=sys.stderr)
        return 2
    if args.get("out") and Path(args["out"]).is_dir():
        print(f"ablations.compare: out={args['out']}: is a folder; name the markdown file to write, e.g. "
              f"out={Path(args['out']) / 'compare.md'}", file=sys.stderr)
        return 2
    try:
        text = compare(read_side("A", args["A"]), read_side("B", args["B"]), metrics, args.get("method", "t"))
    except CompareError as err:
        print(f"ablations.compare: {err}", file=sys.stderr)
        return 2
    print(text, end="")
    if args.get("out"):
        atomic_write_text(args["out"], text)
        print(f"wrote {args['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
