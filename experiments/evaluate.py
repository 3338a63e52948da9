"""Evaluate a finished run: `python -m experiments.evaluate run_dir=RUN [metrics.KEY=VALUE ...]`.

Writes RUN/metrics.json (every metric with its protocol), RUN/evaluation.json (settings, evaluator accuracy,
figure paths) and RUN/figures/. Overrides are Hydra-style `key=value` pairs on the `metrics` settings
(experiments/conf/metrics/default.yaml); the run's own config.yaml supplies the rest. Works from any folder.
On the built-in dataset the first evaluation also trains its evaluator (minutes on CPU; cached after).

Examples:
  python -m experiments.evaluate run_dir=outputs/2026-01-01/12-00-00
  python -m experiments.evaluate run_dir=outputs/run metrics.n_samples=3000 metrics.figures=false
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

CONF = Path(__file__).resolve().parent / "conf" / "metrics" / "default.yaml"


class UsageError(ValueError):
    """A bad command line (missing or wrong run_dir, unknown setting): `main` prints it in one line, exits 2."""


def parse(argv: list[str]) -> tuple[Path, dict]:
    """`run_dir=RUN` and `metrics.KEY=VALUE` (or `KEY=VALUE`) overrides -> (run folder, metrics overrides)."""
    run_dir, dotlist = None, []
    for arg in argv:
        if "=" not in arg:
            raise UsageError(f"argument {arg!r}: expected key=value, e.g. run_dir=outputs/run metrics.n_samples=500")
        key, value = arg.split("=", 1)
        if key == "run_dir":
            run_dir = Path(value).expanduser().resolve()
        else:
            dotlist.append(f"{key.removeprefix('metrics.')}={value}")
    if run_dir is None:
        raise UsageError("missing run_dir=RUN (a folder written by `python -m experiments.train`)")
    overrides = OmegaConf.to_container(OmegaConf.from_dotlist(dotlist)) if dotlist else {}
    known = set(OmegaConf.load(CONF))
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UsageError(f"unknown metrics settings {unknown}; known: {', '.join(sorted(known))}")
    if not (run_dir / "config.yaml").is_file():
        raise UsageError(f"run_dir={run_dir} holds no config.yaml: expected a folder written by "
                         "`python -m experiments.train`" + ("" if run_dir.is_dir() else " (the folder does not exist)"))
    return run_dir, overrides


def usage() -> str:
    from experiments.usage import render, yaml_options

    run_dir = "  run_dir=RUN                  # Required: a folder written by experiments.train.\n"
    return render(__doc__, [("Options", run_dir + yaml_options(CONF, prefix="metrics."))])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from experiments.usage import wants_help

    if wants_help(argv):
        print(usage(), end="")
        return 0
    try:
        run_dir, overrides = parse(argv)
    except UsageError as error:
        print(f"experiments.evaluate: {error}", file=sys.stderr)
        return 2
    from ganblocks.evaluation import evaluate_run

    results = evaluate_run(run_dir, overrides or None)
    width = max(len(k) for k in results)
    for name, rec in results.items():
        print(f"{name:<{width}}  {rec['value']:.4f} +- {rec['std']:.4f}  (n={rec['n_samples']}, "
              f"splits={rec['splits']}, {rec['evaluator']})")
    print(json.dumps({"metrics": str(run_dir / "metrics.json"), "figures": str(run_dir / "figures")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
