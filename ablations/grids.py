"""Ablation grids: one YAML file per grid under ablations/conf/grid/, expanded into runs.

A grid file holds a `name`, a `description`, a default `seeds` (an int, or a mapping from profile to int;
a profile it does not name gets DEFAULT_SEEDS = 3), a list of `variants`, each a `label` (the registered
short name where there is one; it is the row label in tables) and a list of `overrides` for
`experiments.config.compose`, and what the grid is meant to show: the `baseline` variant every other is
compared with (seed by seed), the `claim` from the literature, and the `expect`ed effects that
`ablations.findings` checks against the results (each: a variant, a metric as results.jsonl names it, and
the direction, higher or lower, the claim predicts against the baseline; an entry may carry its own claim):

    name: ca_variants
    description: Conditioning augmentation on and off.
    seeds: {smoke: 1}            # smoke: a pipeline check; every other profile: 3
    baseline: none
    claim: StackGAN (Zhang et al. 2017) Sec. 4.2: CA makes the generated images more diverse.
    expect:
      - {variant: gaussian, metric: diversity, direction: higher}
    variants:
      - label: none
        overrides: [model.conditioning=none]
      - label: gaussian
        overrides: [model.conditioning=gaussian]

`expand` turns a grid into `RunSpec`s (variant x seed), each with its own run folder
`out_dir/runs/<label>/seed<k>/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

GRID_DIR = Path(__file__).parent / "conf" / "grid"
PROFILE_DIR = Path(__file__).resolve().parents[1] / "experiments" / "conf" / "profile"
# The concrete profiles are the profile files of the training config (auto resolves to one of them): no list here.
PROFILES = tuple(sorted(p.stem for p in PROFILE_DIR.glob("*.yaml") if p.stem != "auto"))
DEFAULT_SEEDS = 3  # seeds per variant for a profile the grid file does not name
DIRECTIONS = ("higher", "lower")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


class GridError(ValueError):
    """A grid name, grid file, variant label or runner setting is not valid."""


@dataclass(frozen=True)
class Variant:
    """One row of an ablation table: its label and the config overrides that make it."""

    label: str
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class Expectation:
    """An effect the grid is meant to show: `variant` minus the baseline on `metric` is `direction` (higher |
    lower) than 0, as `claim` (the literature it comes from) says."""

    variant: str
    metric: str
    direction: str
    claim: str = ""


@dataclass(frozen=True)
class Grid:
    """A parsed grid file."""

    name: str
    description: str
    variants: tuple[Variant, ...]
    seeds: dict[str, int] = field(default_factory=dict)
    baseline: str | None = None
    claim: str = ""
    expect: tuple[Expectation, ...] = ()

    def default_seeds(self, profile: str) -> int:
        """The grid's seed count for `profile` (DEFAULT_SEEDS when the grid names none for it)."""
        return int(self.seeds.get(profile, self.seeds.get("default", DEFAULT_SEEDS)))

    @property
    def labels(self) -> list[str]:
        return [v.label for v in self.variants]


@dataclass(frozen=True)
class RunSpec:
    """One (variant, seed) run of a grid.

    index:      position in the grid's run order (variant-major, then seed).
    overrides:  everything handed to `compose`: profile, the user's extra overrides, the variant's, seed.
    run_dir:    out_dir/runs/<label>/seed<k>.
    """

    index: int
    grid: str
    variant: str
    variant_index: int
    seed: int
    overrides: tuple[str, ...]
    run_dir: Path


def list_grids(grid_dir: Path = GRID_DIR) -> list[str]:
    """Names of every grid file (without .yaml), sorted."""
    return sorted(p.stem for p in Path(grid_dir).glob("*.yaml"))


def load_grid(name: str, grid_dir: Path = GRID_DIR) -> Grid:
    """Parse and check ablations/conf/grid/<name>.yaml.

    Raises:
        GridError: unknown grid (the message lists the grids), or a malformed file (names the field).
    """
    path = Path(grid_dir) / f"{name}.yaml"
    if not name or not path.is_file():
        raise GridError(
            f"unknown grid {name!r} (from grid=); available grids: {', '.join(list_grids(grid_dir)) or '(none)'}"
            f" in {grid_dir}"
        )
    raw = yaml.safe_load(path.read_text()) or {}
    return parse_grid(raw, source=str(path))


def parse_grid(raw: dict[str, Any], source: str = "<grid>") -> Grid:
    """Check a grid mapping (as read from YAML) and build a `Grid`."""
    if not isinstance(raw, dict):
        raise GridError(f"{source}: a grid file must be a mapping with name, description, seeds, variants")
    keys = ("name", "description", "seeds", "baseline", "claim", "expect", "variants")
    unknown = set(raw) - set(keys)
    if unknown:
        raise GridError(f"{source}: unknown keys {sorted(unknown)}; accepted: {', '.join(keys)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise GridError(f"{source}: 'name' must be a non-empty string, got {name!r}")
    seeds_raw = raw.get("seeds", 1)
    if isinstance(seeds_raw, int):
        seeds = {p: seeds_raw for p in PROFILES} | {"default": seeds_raw}
    elif isinstance(seeds_raw, dict) and set(seeds_raw) <= set(PROFILES):
        seeds = {str(k): int(v) for k, v in seeds_raw.items()}
    else:
        raise GridError(f"{source}: 'seeds' must be an int or a mapping from {list(PROFILES)} to int, got {seeds_raw!r}")
    if any(n < 1 for n in seeds.values()):
        raise GridError(f"{source}: every seed count must be >= 1, got {seeds}")
    variants_raw = raw.get("variants")
    if not isinstance(variants_raw, list) or not variants_raw:
        raise GridError(f"{source}: 'variants' must be a non-empty list of {{label, overrides}}")
    variants = []
    for i, v in enumerate(variants_raw):
        if not isinstance(v, dict) or set(v) != {"label", "overrides"}:
            raise GridError(f"{source}: variants[{i}] must have exactly 'label' and 'overrides', got {v!r}")
        label = str(v["label"])
        if not _LABEL.match(label):
            raise GridError(f"{source}: variants[{i}].label {label!r} must match {_LABEL.pattern} (it names a folder)")
        overrides = v["overrides"]
        if not isinstance(overrides, list) or not all(isinstance(o, str) and "=" in o for o in overrides):
            raise GridError(f"{source}: variants[{i}].overrides must be a list of 'key=value' strings, got {overrides!r}")
        variants.append(Variant(label, tuple(overrides)))
    labels = [v.label for v in variants]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise GridError(f"{source}: duplicate variant labels {dupes}")
    baseline, claim, expect = parse_expectations(raw, labels, source)
    return Grid(name=name, description=str(raw.get("description", "")).strip(), variants=tuple(variants),
                seeds=seeds, baseline=baseline, claim=claim, expect=expect)


def known_metrics() -> list[str]:
    """Metric names a grid's `expect` may use: every name a table column reads (as results.jsonl spells it),
    the parameter count aside. Diversity has no better direction in tables, yet a grid may expect a change."""
    from ablations.tables import COLUMNS

    return [k for c in COLUMNS if c.header != "Params" for k in c.keys]


def parse_expectations(raw: dict[str, Any], labels: list[str],
                       source: str) -> tuple[str | None, str, tuple[Expectation, ...]]:
    """Check `baseline`, `claim` and `expect` of a grid mapping; returns them parsed.

    Raises:
        GridError: a baseline that is not a variant, an `expect` entry with an unknown variant, metric,
            direction or key, or expectations without a baseline or claim (each names the entry and what is
            accepted).
    """
    baseline = raw.get("baseline")
    if baseline is not None and str(baseline) not in labels:
        raise GridError(f"{source}: baseline {baseline!r} is not a variant; variants: {', '.join(labels)}")
    baseline = None if baseline is None else str(baseline)
    claim = " ".join(str(raw.get("claim") or "").split())
    entries = raw.get("expect") or []
    if not isinstance(entries, list):
        raise GridError(f"{source}: 'expect' must be a list of {{variant, metric, direction[, claim]}}, "
                        f"got {entries!r}")
    if entries and baseline is None:
        raise GridError(f"{source}: 'expect' needs a 'baseline' (the variant the effects are measured against)")
    metrics = known_metrics()
    expect = []
    for i, e in enumerate(entries):
        where = f"{source}: expect[{i}]"
        fields = {"variant", "metric", "direction"}
        if not isinstance(e, dict) or not fields <= set(e) or set(e) - fields - {"claim"}:
            raise GridError(f"{where} must have variant, metric, direction (and optionally claim), got {e!r}")
        variant, metric, direction = str(e["variant"]), str(e["metric"]), str(e["direction"])
        if variant not in labels:
            raise GridError(f"{where}: unknown variant {variant!r}; variants: {', '.join(labels)}")
        if variant == baseline:
            raise GridError(f"{where}: variant {variant!r} is the baseline; an effect is measured against it")
        if metric not in metrics:
            raise GridError(f"{where}: unknown metric {metric!r}; accepted: {', '.join(metrics)}")
        if direction not in DIRECTIONS:
            raise GridError(f"{where}: direction {direction!r} must be one of {', '.join(DIRECTIONS)}")
        own = " ".join(str(e.get("claim") or "").split())
        if not (own or claim):
            raise GridError(f"{where}: no claim; give the grid a one-line 'claim:' citing its source")
        expect.append(Expectation(variant, metric, direction, own or claim))
    return baseline, claim, tuple(expect)


def parse_only(only: str | Sequence[str] | None) -> list[str] | None:
    """`only=none,gaussian`, `only=[none,gaussian]` or a list -> list of labels; None/'' -> None."""
    if only is None:
        return None
    if isinstance(only, str):
        text = only.strip().strip("[]")
        items = [s.strip().strip("'\"") for s in text.split(",")]
    else:
        items = [str(s).strip() for s in only]
    items = [s for s in items if s]
    return items or None


def expand(
    grid: Grid,
    out_dir: Path,
    profile: str,
    seeds: int | None = None,
    only: Sequence[str] | None = None,
    extra_overrides: Sequence[str] = (),
) -> list[RunSpec]:
    """The grid's runs, variant-major: for each variant (in file order, filtered by `only`), each seed.

    Args:
        grid: a parsed grid.
        out_dir: the grid's output folder; runs go to out_dir/runs/<label>/seed<k>.
        profile: a concrete profile (smoke | small | paper), passed on as `profile=<profile>`.
        seeds: number of seeds (seeds 0..seeds-1); None takes the grid's default for `profile`.
        only: variant labels to keep; an unknown label raises, listing the grid's labels.
        extra_overrides: the user's overrides, applied to every variant before the variant's own.
    """
    if profile not in PROFILES:
        raise GridError(f"profile {profile!r} is not concrete; accepted: {', '.join(PROFILES)}")
    n_seeds = grid.default_seeds(profile) if seeds is None else int(seeds)
    if n_seeds < 1:
        raise GridError(f"seeds={seeds!r} (from seeds=) must be >= 1")
    keep = list(only) if only else grid.labels
    missing = [x for x in keep if x not in grid.labels]
    if missing:
        raise GridError(f"only= names unknown variants {missing} of grid {grid.name!r}; its variants: {', '.join(grid.labels)}")
    for o in extra_overrides:
        if o.split("=", 1)[0].lstrip("+~") == "seed":
            raise GridError(f"override {o!r}: the runner sets seed per run; use seeds=N for the number of seeds")
    varied = {o.split("=", 1)[0].lstrip("+~") for v in grid.variants for o in v.overrides}
    clash = [o for o in extra_overrides if o.split("=", 1)[0].lstrip("+~") in varied]
    if clash:
        raise GridError(
            f"override {clash} sets what grid {grid.name!r} varies ({', '.join(sorted(varied))}); the variants "
            f"would overrule it. Pick variants with only=, or write a grid file."
        )
    specs = []
    for vi, variant in enumerate(grid.variants):
        if variant.label not in keep:
            continue
        for seed in range(n_seeds):
            overrides = (f"profile={profile}", *extra_overrides, *variant.overrides, f"seed={seed}")
            specs.append(
                RunSpec(
                    index=len(specs),
                    grid=grid.name,
                    variant=variant.label,
                    variant_index=vi,
                    seed=seed,
                    overrides=overrides,
                    run_dir=Path(out_dir) / "runs" / variant.label / f"seed{seed}",
                )
            )
    return specs
