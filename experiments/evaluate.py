"""Evaluate a finished run: `python -m experiments.evaluate run_dir=RUN [metrics.KEY=VALUE ...]`.

Writes RUN/metrics.json (every metric with its protocol), RUN/evaluation.json (settings, evaluator accuracy,
figure paths) and RUN/figures/. Overrides are Hydra-style `key=value` pairs on the `metrics` settings
(experiments/conf/metrics/default.yaml); the run's own config.yaml supplies the rest. Works from any folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

CONF = Path(__file__).resolve().parent / "conf" / "metrics" / "default.yaml"


def parse(argv: list[str]) -> tuple[Path, dict]:
    """`run_dir=RUN` and `metrics.KEY=VALUE` (or `KEY=VALUE`) overrides -> (run folder, metrics overrides)."""
    run_dir, dotlist = None, []
    for arg in argv:
        if "=" not in arg:
            raise SystemExit(f"argument {arg!r}: expected key=value, e.g. run_dir=outputs/run metrics.n_samples=500")
        key, value = arg.split("=", 1)
        if key == "run_dir":
            run_dir = Path(value).expanduser().resolve()
        else:
            dotlist.append(f"{key.removeprefix('metrics.')}={value}")
    if run_dir is None:
        raise SystemExit("missing run_dir=RUN (a folder written by `python -m experiments.train`)")
    overrides = OmegaConf.to_container(OmegaConf.from_dotlist(dotlist)) if dotlist else {}
    known = set(OmegaConf.load(CONF))
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise SystemExit(f"unknown metrics settings {unknown}; known: {', '.join(sorted(known))}")
    return run_dir, overrides


def main(argv: list[str] | None = None) -> int:
    run_dir, overrides = parse(sys.argv[1:] if argv is None else argv)
    from ganblocks.evaluation import evaluate_run
    from ganblocks.io import UnsafeFileError
    from ganblocks.training.checkpoint import CheckpointError

    try:
        results = evaluate_run(run_dir, overrides or None)
    except (UnsafeFileError, CheckpointError) as error:  # a crafted or broken checkpoint, named
        print(f"experiments.evaluate: {error}", file=sys.stderr)
        return 1
    width = max(len(k) for k in results)
    for name, rec in results.items():
        print(f"{name:<{width}}  {rec['value']:.4f} +- {rec['std']:.4f}  (n={rec['n_samples']}, "
              f"splits={rec['splits']}, {rec['evaluator']})")
    print(json.dumps({"metrics": str(run_dir / "metrics.json"), "figures": str(run_dir / "figures")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
