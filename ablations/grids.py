"""Ablation grids: one YAML file per grid under ablations/conf/grid/, expanded into runs.

A grid file holds a `name`, a `description`, a default `seeds` (an int, or a mapping from profile to int)
and a list of `variants`, each a `label` (the registered short name where there is one; it is the row
label in tables) and a list of `overrides` for `experiments.config.compose`:

    name: ca_variants
    description: Conditioning augmentation on and off.
    seeds: {smoke: 1, small: 3, paper: 3}
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
PROFILES = ("smoke", "cpu", "small", "paper")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


class GridError(ValueError):
    """A grid name, grid file, variant label or runner setting is not valid."""


@dataclass(frozen=True)
class Variant:
    """One row of an ablation table: its label and the config overrides that make it."""

    label: str
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class Grid:
    """A parsed grid file."""

    name: str
    description: str
    variants: tuple[Variant, ...]
    seeds: dict[str, int] = field(default_factory=dict)

    def default_seeds(self, profile: str) -> int:
        """The grid's seed count for `profile` (1 when the grid names none)."""
        return int(self.seeds.get(profile, 1))

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
    unknown = set(raw) - {"name", "description", "seeds", "variants"}
    if unknown:
        raise GridError(f"{source}: unknown keys {sorted(unknown)}; accepted: name, description, seeds, variants")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise GridError(f"{source}: 'name' must be a non-empty string, got {name!r}")
    seeds_raw = raw.get("seeds", 1)
    if isinstance(seeds_raw, int):
        seeds = {p: seeds_raw for p in PROFILES}
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
    return Grid(name=name, description=str(raw.get("description", "")).strip(), variants=tuple(variants), seeds=seeds)


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
