"""Which config a run folder was made with, and whether a new config may continue it.

A run folder's `config.yaml` is the resolved config its weights were trained with. Continuing that folder
(a resume, or a finished run asked again) with a config that computes something else would mix two runs
under one name: `check_same_config` refuses it before any work, naming every key that differs.

Keys that never change what a run computes (where it is written, how often it logs, draws sample grids
or checkpoints, its progress bar, how it is evaluated) are listed in `NON_COMPUTING_KEYS` and ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

NON_COMPUTING_KEYS: dict[str, str] = {
    "run_dir": "where the run is written",
    "train.progress": "the progress bar",
    "train.log_every": "how often log.jsonl gets a record",
    "train.sample_every": "how often a sample grid is drawn (private RNG)",
    "train.n_samples": "how many captions a sample grid shows (private RNG)",
    "train.checkpoint_every": "how often a checkpoint is written",
    "train.tensorboard": "whether TensorBoard also gets the log records and sheets",
    "metrics": "how the finished run is evaluated (the grid runner keys its rows on it separately)",
}


class ConfigMismatchError(ValueError):
    """A run folder holds a run made with a config that computes something else than the one given."""


def to_plain(cfg: Any) -> Any:
    """A resolved OmegaConf config (or a mapping) as plain dicts and lists."""
    from omegaconf import OmegaConf

    if OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}, "c": [1, 2]} -> {"a.b": 1, "c": [1, 2]} (lists are leaves)."""
    if not isinstance(tree, Mapping):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, path))
        else:
            flat[path] = value
    return flat


def _ignored(key: str, ignore: tuple[str, ...]) -> bool:
    return any(key == k or key.startswith(k + ".") for k in ignore)


def config_differences(old: Any, new: Any, ignore: tuple[str, ...] = tuple(NON_COMPUTING_KEYS)) -> list[str]:
    """Every key whose value differs between two configs, as "key: old -> new" (missing: `<absent>`).

    Keys under `ignore` (dotted prefixes) are skipped. An empty mapping counts as absent: an options key added
    later with default {} (e.g. data.text_encoder_options) computes what a config.yaml without it did, and a
    mapping that gains keywords differs by those keywords, not also by the empty one.
    """
    a, b = flatten(to_plain(old)), flatten(to_plain(new))
    a, b = ({k: v for k, v in t.items() if not (isinstance(v, Mapping) and not v)} for t in (a, b))
    lines = []
    for key in sorted(set(a) | set(b)):
        if _ignored(key, ignore):
            continue
        va, vb = a.get(key, "<absent>"), b.get(key, "<absent>")
        if va != vb:
            lines.append(f"{key}: {va!r} -> {vb!r}")
    return lines


def stored_config(run_dir: str | os.PathLike) -> dict | None:
    """The config a run folder was trained with (its config.yaml, read as plain YAML), or None."""
    import yaml

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return None
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigMismatchError(f"{path} is not readable YAML ({error}); cannot tell which config the run in "
                                  f"{run_dir} was made with. Give another run_dir=, or delete that folder.") from None


def check_same_config(run_dir: str | os.PathLike, cfg: Any) -> None:
    """Refuse to continue `run_dir` with `cfg` when its config.yaml computes something else.

    Raises:
        ConfigMismatchError: names each differing key (old -> new) and how to start afresh.
    """
    old = stored_config(run_dir)
    if old is None:
        return
    differences = config_differences(old, cfg)
    if differences:
        raise ConfigMismatchError(
            f"{run_dir} holds a run made with another config ({len(differences)} key(s) differ, stored -> "
            f"given): {'; '.join(differences)}. Continuing it would mix two runs (the old weights and "
            f"optimizer under the new settings). To start afresh, give another run_dir= or delete {run_dir}; "
            f"to continue the old run, use its config. Keys that never change a run's result are ignored: "
            f"{', '.join(NON_COMPUTING_KEYS)}."
        )
