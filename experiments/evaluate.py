"""Evaluate a finished run: `python -m experiments.evaluate run_dir=RUN [metrics=PRESET] [metrics.KEY=VALUE ...]`.

Writes RUN/metrics.json (every metric with its protocol), RUN/evaluation.json (settings, evaluator accuracy,
refused metrics, the real row, figure paths) and RUN/figures/. `metrics=PRESET` layers
experiments/conf/metrics/PRESET.yaml (e.g. paper_protocol) over the run's settings; `metrics.KEY=VALUE`
overrides follow (experiments/conf/metrics/default.yaml lists the keys); the run's own config.yaml
supplies the rest. Works from any folder. On the built-in dataset the first evaluation also trains its
evaluator (minutes on CPU; cached after).

Prints one line per metric: value +- its error (what the error is over; FID, one estimate, has none), the
`real` row's value under the same protocol and the chance level of text metrics; then the metrics refused
for too few samples, with the reason.

Examples:
  python -m experiments.evaluate run_dir=outputs/2026-01-01/12-00-00
  python -m experiments.evaluate run_dir=outputs/run metrics.n_samples=3000 metrics.figures=false
  python -m experiments.evaluate run_dir=outputs/run metrics=paper_protocol metrics.is_classifier=inception_cub.pt
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

CONF_DIR = Path(__file__).resolve().parent / "conf" / "metrics"
CONF = CONF_DIR / "default.yaml"


def preset(name: str) -> dict:
    """The settings of experiments/conf/metrics/NAME.yaml (without its Hydra defaults list)."""
    path = CONF_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONF_DIR.glob("*.yaml")))
        raise SystemExit(f"metrics={name}: no such preset in {CONF_DIR}; known: {known}")
    layer = OmegaConf.to_container(OmegaConf.load(path))
    layer.pop("defaults", None)
    return layer


class UsageError(ValueError):
    """A bad command line (missing or wrong run_dir, unknown setting): `main` prints it in one line, exits 2."""


def parse(argv: list[str]) -> tuple[Path, dict]:
    """`run_dir=RUN`, `metrics=PRESET` and `metrics.KEY=VALUE` (or `KEY=VALUE`) -> (run folder, overrides)."""
    run_dir, dotlist, base = None, [], {}
    for arg in argv:
        if "=" not in arg:
            raise UsageError(f"argument {arg!r}: expected key=value, e.g. run_dir=outputs/run metrics.n_samples=500")
        key, value = arg.split("=", 1)
        if key == "run_dir":
            run_dir = Path(value).expanduser().resolve()
        elif key == "metrics":
            base = preset(value)
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
    merged = OmegaConf.to_container(OmegaConf.merge(base, overrides)) if base else overrides
    return run_dir, merged


def describe(rec: dict) -> str:
    """One line: value +- error (over what), n, the real row and the chance level where there are.

    A metric computed once (FID: one split) has no error: "+- 0.0000 (std over 1 splits)" would read as an
    exact value, so it says "one estimate, no error" instead.
    """
    if int(rec.get("splits") or 1) <= 1 and rec.get("std_over", "splits") == "splits":
        text = f"{rec['value']:.4f} (one estimate, no error; n={rec['n_samples']}"
    else:
        over = f"s.e. over {rec['splits']} {rec['std_over']}" if rec.get("std_over") == "captions" else \
            f"std over {rec['splits']} {rec.get('std_over', 'splits')}"
        text = f"{rec['value']:.4f} +- {rec['std']:.4f} ({over}; n={rec['n_samples']}"
    if rec.get("n_captions") is not None:
        text += f", {rec['n_captions']} captions"
    text += ")"
    if rec.get("real") is not None:
        text += f"  real {rec['real']:.4f}"
    if rec.get("chance") is not None:
        text += f"  chance {rec['chance']:.4f}"
    return f"{text}  [{rec['evaluator']}]"


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
    from ganblocks.evaluation.run import MetricSettingError
    from ganblocks.data.dataset import DatasetError
    from ganblocks.data.text_options import TextEncoderOptionsError
    from ganblocks.evaluation.artifacts import ArtifactMismatchError, ArtifactMissingError
    from ganblocks.io import CorruptFileError, UnsafeFileError
    from ganblocks.training.checkpoint import CheckpointError

    try:
        results = evaluate_run(run_dir, overrides or None)
    except MetricSettingError as error:  # refused before any image was generated
        print(f"experiments.evaluate: {error}", file=sys.stderr)
        return 2
    except (UnsafeFileError, CorruptFileError, CheckpointError, DatasetError, ArtifactMismatchError,
            ArtifactMissingError) as error:  # a crafted or broken file (a run's, or a committed judge's), named
        print(f"experiments.evaluate: {error}", file=sys.stderr)
        return 1
    except TextEncoderOptionsError as error:  # the run's config.yaml names options its encoder does not take
        print(f"experiments.evaluate: {Path(run_dir) / 'config.yaml'}: {error}", file=sys.stderr)
        return 1
    about = json.loads((run_dir / "evaluation.json").read_text())
    refused = about.get("refused") or {}
    width = max([len(k) for k in results] + [len(k) for k in refused] + [1])
    for name, rec in results.items():
        print(f"{name:<{width}}  {describe(rec)}")
    for name, reason in refused.items():
        print(f"{name:<{width}}  refused: {reason}")
    real_refused = (about.get("real_reference") or {}).get("refused") or {}
    for name, reason in real_refused.items():
        print(f"{name:<{width}}  real row refused: {reason}")
    print(json.dumps({"metrics": str(run_dir / "metrics.json"), "figures": str(run_dir / "figures")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
