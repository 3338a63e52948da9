"""Committed evaluator weights: the built-in benchmark's judge as a fixed, versioned artifact.

Training the same recipe on another CPU, thread count or torch gives other weights (vectorised kernels round
differently), so tables from two machines would not be comparable. The recipes the tables use therefore ship
their weights in `ganblocks/evaluation/weights/`: `index.json` maps a recipe key (the hash `cached_evaluator`
uses) to a file and its sha256, checked before the file is read (`torch.load(weights_only=True)`).

    python -m ganblocks.evaluation.report_judge --export   # trains (or loads) the recipe, writes it here
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Callable

from ganblocks.evaluation.evaluator import EVALUATOR_VERSION, Evaluator
from ganblocks.io import atomic_write_json, stable_hash

WEIGHTS_DIR = Path(__file__).with_name("weights")
INDEX = "index.json"


class ArtifactMismatchError(RuntimeError):
    """A committed evaluator file whose bytes do not match the sha256 recorded in the index."""


class ArtifactMissingError(FileNotFoundError):
    """A committed evaluator file that the index lists but that is not there."""


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def recipe_key(key_parts: dict, train_kwargs: dict) -> str:
    """The key of a recipe: the same hash `cached_evaluator` files its cache entry under."""
    return stable_hash([EVALUATOR_VERSION, key_parts, train_kwargs])


def read_index(folder: str | Path = WEIGHTS_DIR) -> dict:
    """{recipe key: {"file", "sha256", "recipe"}} of the committed evaluators ({} when none).

    Raises:
        ValueError: the index is not valid JSON (named, with how to restore it).
    """
    path = Path(folder) / INDEX
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); expected {{recipe key: {{file, sha256, ...}}}}: "
                         "restore it (git checkout) or rerun python -m ganblocks.evaluation.report_judge --export") \
            from err


def checked_file(key: str, folder: str | Path = WEIGHTS_DIR) -> tuple[Path, dict] | None:
    """(path, index entry) of the committed file of recipe `key` (None if none ships), its sha256 checked.

    Raises:
        ArtifactMismatchError: the file's sha256 differs from the index's (edited, truncated, replaced).
        ArtifactMissingError: the index names a file that is missing (a FileNotFoundError).
    """
    entry = read_index(folder).get(key)
    if entry is None:
        return None
    path = Path(folder) / entry["file"]
    if not path.is_file():
        raise ArtifactMissingError(f"{Path(folder) / INDEX} lists {entry['file']} for evaluator recipe {key}, "
                                f"but {path} is missing; reinstall ganblocks or rerun the export")
    actual = file_sha256(path)
    if actual != entry["sha256"]:
        raise ArtifactMismatchError(
            f"{path} has sha256 {actual}, but {Path(folder) / INDEX} records {entry['sha256']} for evaluator "
            f"recipe {key}: the committed judge was changed; restore it (git checkout) or re-export it with "
            "python -m ganblocks.evaluation.report_judge --export"
        )
    return path, entry


def _load_checked(key: str, folder: str | Path, load_file: Callable[[Path], Any]) -> Any:
    """`load_file` of the committed file of recipe `key` (sha256 checked by `checked_file`), None if none ships;
    its meta records the file and sha256 it came from."""
    found = checked_file(key, folder)
    if found is None:
        return None
    path, entry = found
    loaded = load_file(path)
    loaded.meta["artifact"] = {"file": entry["file"], "sha256": entry["sha256"]}
    return loaded


def load_committed(key: str, folder: str | Path = WEIGHTS_DIR) -> Evaluator | None:
    """The committed evaluator of recipe `key` (None if none ships), its file checked against its sha256
    (`checked_file`, whose errors it raises)."""
    return _load_checked(key, folder, Evaluator.load_file)


def load_committed_detail(key: str, folder: str | Path = WEIGHTS_DIR) -> Any:
    """The committed detail reader (`ganblocks.evaluation.detail`) of recipe `key`, or None; sha256 checked."""
    from ganblocks.evaluation.detail import DetailReader

    return _load_checked(key, folder, DetailReader.load_file)


def committed_evaluator(key_parts: dict, train_kwargs: dict, folder: str | Path = WEIGHTS_DIR) -> Evaluator | None:
    """`load_committed` of the recipe (key_parts, train_kwargs); None when ganblocks ships no weights for it."""
    return load_committed(recipe_key(key_parts, train_kwargs), folder)


def export(evaluator: Evaluator, folder: str | Path = WEIGHTS_DIR) -> dict:
    """Write `evaluator` as the committed weights of its recipe (`<key>.pt`) and record its sha256 in the index.

    Returns the index entry {"file", "sha256", "recipe"}.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"evaluator-{evaluator.key}.pt"
    tmp = folder / f".{name}.export"
    evaluator.save(tmp)
    shutil.move(str(tmp / "evaluator.pt"), folder / name)
    shutil.rmtree(tmp, ignore_errors=True)
    return _record(folder, evaluator.key, {"file": name, "sha256": file_sha256(folder / name),
                                           "name": evaluator.name, "recipe": evaluator.meta.get("trained_on")})


def _record(folder: Path, key: str, entry: dict) -> dict:
    """Write `entry` under `key` in the folder's index (atomically) and return it."""
    index = read_index(folder)
    index[key] = entry
    atomic_write_json(folder / INDEX, index)
    return entry


def export_detail(reader: Any, folder: str | Path = WEIGHTS_DIR) -> dict:
    """Write a `DetailReader` as the committed weights of its recipe (`detail-<key>.pt`), sha256 in the index."""
    from ganblocks.io import atomic_torch_save

    folder = Path(folder)
    name = f"detail-{reader.meta['key']}.pt"
    atomic_torch_save(folder / name, reader.state())
    entry = _record(folder, reader.meta["key"], {"file": name, "sha256": file_sha256(folder / name),
                                                 "kind": "detail reader", "weights": reader.meta["weights"],
                                                 "recipe": reader.meta.get("trained_on")})
    reader.meta["artifact"] = {"file": name, "sha256": entry["sha256"]}
    return entry
