"""File helpers shared by every part that writes results: the cache folder, atomic writes, stable hashes.

Every file ganblocks writes goes through `atomic_write_*` (write to a temporary file beside the target,
fsync, rename), so a process killed at any moment leaves either the old file or the new one, never half.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


def cache_dir(*parts: str) -> Path:
    """The ganblocks cache folder ($GANBLOCKS_CACHE, default ~/.cache/ganblocks), joined with `parts`."""
    root = Path(os.environ.get("GANBLOCKS_CACHE") or Path.home() / ".cache" / "ganblocks").expanduser()
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[io.IOBase]:
    """Open a temporary file beside `path`; on a clean exit fsync it and rename it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; a plain open() would honour the umask
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def current_umask() -> int:
    """The process's file-creation mask (e.g. 0o022), read without changing it where Linux allows."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not atomic with respect to other threads)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> None:
    """torch.save through a temporary file and a rename."""
    import torch

    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line with a single write() on an O_APPEND descriptor, then fsync.

    A reader must ignore a final line without a newline (a write cut by a kill); `read_jsonl` does.
    """
    line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Every complete line of a JSONL file; a torn last line (no newline, or not JSON) is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    text = path.read_text()
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if i == len(lines) - 1:  # no trailing newline: the write was cut
            break
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def stable_hash(obj: Any, length: int = 16) -> str:
    """A short hex digest of a JSON-serialisable object, stable across processes and machines."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]
