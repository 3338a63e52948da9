"""Compose every run's config before anything trains, and refuse an output folder that holds other configs.

`config_key` is what a recorded row is matched by: the hash of the resolved config without VOLATILE_KEYS.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ganblocks.io import read_jsonl, stable_hash

from ablations.grids import GridError, RunSpec, expand, load_grid
from ablations.results import RESULTS, complete_attempts
from ablations.settings import ComposeFn, Settings, load_fn

VOLATILE_KEYS = ("run_dir", "train.progress")  # differ between invocations without changing the run
# Keys added after grids were recorded, at a default that computes and scores what their absence did: left out
# of the hash at that default, so an earlier grid folder keeps its config_key (and is neither refused nor scored again).
DEFAULT_WHEN_ABSENT: dict[str, object] = {"metrics.image_size": None}


def config_key(cfg: Any) -> str:
    """Hash of the resolved config minus VOLATILE_KEYS: rows count as done only for the same config."""
    try:
        from omegaconf import OmegaConf

        container = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else cfg
    except ImportError:
        container = cfg
    container = json.loads(json.dumps(container, default=str))
    for key in (*VOLATILE_KEYS, *DEFAULT_WHEN_ABSENT):
        node, *path = key.split(".")
        parent = container
        for part in [node, *path][:-1]:
            parent = parent.get(part, {}) if isinstance(parent, dict) else {}
        leaf = key.split(".")[-1]
        if isinstance(parent, dict) and (key in VOLATILE_KEYS or parent.get(leaf, None) == DEFAULT_WHEN_ABSENT[key]):
            parent.pop(leaf, None)
    return stable_hash(container)


def compose_all(specs: Sequence[RunSpec], compose_fn: ComposeFn) -> list[Any]:
    """Compose every run's config before anything is trained; the first bad one raises, naming its run."""
    cfgs = []
    for spec in specs:
        try:
            cfgs.append(compose_fn(list(spec.overrides)))
        except Exception as err:  # noqa: BLE001 - re-raised with the run named
            raise GridError(
                f"grid {spec.grid!r}, variant {spec.variant!r}, seed {spec.seed}: the config does not compose "
                f"({type(err).__name__}: {err}); overrides were {list(spec.overrides)}"
            ) from err
    return cfgs


def check_previous(specs: Sequence[RunSpec], cfgs: Sequence[Any], out_dir: Path, settings: Settings | None = None) -> None:
    """Refuse an out_dir that would mix runs of different configs, before anything is trained.

    Three places can hold an earlier config: the recorded rows of a (variant, seed) of this invocation
    (their `config_key`), its run folder's config.yaml (a run interrupted before any row; `train` would
    refuse it too, but only after the runs before it), and the rows of runs this invocation does not
    touch (another `only=` or fewer seeds; composed again from `settings` with the current overrides),
    which would land in the same table. Differences are named key by key where the run folder has its
    config.yaml (keys that never change a result, `NON_COMPUTING_KEYS`, are ignored there).

    A finished run of this invocation whose config differs only under `metrics` (how it is scored, e.g.
    `metrics.image_size` added to a grid's variant) is no clash: `execute` scores it again from its checkpoint
    (`rescore_reasons`), so its new rows carry the new config_key and the table never mixes the two. Nor is a
    failed one (no scores to mix): it is retried under the new settings.

    Raises:
        GridError: lists every clashing run with what differs, and how to start afresh.
    """
    from ganblocks.training.runconfig import config_differences, stored_config

    out_dir = Path(out_dir)
    latest = complete_attempts(read_jsonl(out_dir / RESULTS))
    mine = list(zip(specs, cfgs))
    pairs = mine + _recorded_elsewhere(specs, latest, settings)
    clashes, rescorable = [], []
    for k, (spec, cfg) in enumerate(pairs):
        if k < len(mine) and metrics_changes(spec, cfg, out_dir, latest):  # scored again, or a failed run retried
            continue
        rows = latest.get((spec.variant, spec.seed))
        run_dir = out_dir / rows[0]["run_dir"] if rows and rows[0].get("run_dir") else Path(spec.run_dir)
        old = stored_config(run_dir) if run_dir.is_dir() else None
        keys = config_differences(old, cfg) if old is not None else []
        if old is not None and not keys and rows and rows[0].get("config_key") != config_key(cfg):
            keys = config_differences(old, cfg, ignore=VOLATILE_KEYS)  # e.g. metrics: they made the rows
        if rows and rows[0].get("config_key") != config_key(cfg) or keys:
            what = "; ".join(keys) if keys else f"recorded with overrides {rows[0].get('overrides')}"
            clashes.append(f"{spec.variant}/seed{spec.seed} ({what})")
            if k >= len(mine) and keys and all(key.startswith("metrics.") for key in keys):
                rescorable.append(f"{spec.variant}/seed{spec.seed}")
    if clashes:
        how = ("Give another out_dir=, or remove that folder to start again." if len(rescorable) < len(clashes) else
               f"Only how they are scored differs and this invocation leaves them out ({', '.join(rescorable)}): "
               f"include them (without only=, or with their variants and seeds) and they are scored again from "
               f"their checkpoints, not trained.")
        raise GridError(f"{out_dir} already holds runs made with a different config (stored -> given): "
                        f"{'; '.join(clashes)}. One table would mix them. {how}")


def rescore_reasons(spec: RunSpec, cfg: Any, out_dir: Path, latest: dict | None = None) -> list[str]:
    """The `metrics.*` keys ("key: old -> new") by which a run's recorded rows differ from `cfg`, when that is
    all that differs and the run is finished (ok or diverged) with its config.yaml: the run is to be scored
    again, not trained. [] otherwise (the same config, a failed run, or a difference that is a clash)."""
    latest = complete_attempts(read_jsonl(Path(out_dir) / RESULTS)) if latest is None else latest
    rows = latest.get((spec.variant, spec.seed))
    if not rows or rows[0].get("status") not in ("ok", "diverged"):
        return []
    return metrics_changes(spec, cfg, out_dir, latest)


def metrics_changes(spec: RunSpec, cfg: Any, out_dir: Path, latest: dict) -> list[str]:
    """`rescore_reasons` for a recorded run of any status (a failed one is retried under the new settings)."""
    from ganblocks.training.runconfig import config_differences, stored_config

    rows = latest.get((spec.variant, spec.seed))
    if not rows or rows[0].get("config_key") == config_key(cfg):
        return []
    run_dir = Path(out_dir) / str(rows[0].get("run_dir") or "")
    old = stored_config(run_dir) if rows[0].get("run_dir") and run_dir.is_dir() else None
    if old is None or config_differences(old, cfg):
        return []
    keys = config_differences(old, cfg, ignore=VOLATILE_KEYS)
    return keys if keys and all(key.startswith("metrics.") for key in keys) else []


def _recorded_elsewhere(specs: Sequence[RunSpec], latest: dict, settings: Settings | None) -> list[tuple[RunSpec, Any]]:
    """(spec, config now) of every recorded (variant, seed) that `specs` leave out, composed as this
    invocation would compose it (variants no longer in the grid are skipped)."""
    chosen = {(s.variant, s.seed) for s in specs}
    extra = {key for key in latest if key not in chosen}
    if not extra or settings is None:
        return []
    grid = load_grid(settings.grid)
    every = expand(grid, settings.out_dir, settings.profile, max(seed for _, seed in extra) + 1, None, settings.overrides)
    pick = [s for s in every if (s.variant, s.seed) in extra]
    return list(zip(pick, compose_all(pick, load_fn(settings.compose_fn, "compose_fn"))))
