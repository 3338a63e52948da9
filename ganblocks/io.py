"""File helpers shared by every part that writes results: the cache folder, atomic writes, stable hashes.

Every file ganblocks writes goes through `atomic_write_*` / `atomic_open` (write to a temporary file beside
the target, fsync, rename), so a process killed at any moment leaves either the old file or the new one,
never half. A full disk (ENOSPC, EDQUOT) raises `NoSpaceError` ("no space left on <mount point> while
writing <path>"), with the temporary file removed and the old file untouched. `append_jsonl` writes whole
lines or none: a short write is cut back and raised, and a torn last line left by a killed writer is cut
before the next line goes in.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

_FULL = (errno.ENOSPC, errno.EDQUOT)


class NoSpaceError(OSError):
    """The disk (or quota) holding a file ganblocks was writing is full; the message names both."""


def mount_point(path: str | os.PathLike) -> str:
    """The mount point of the file system that holds `path` (its nearest existing folder)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return str(p)


def no_space_error(path: str | os.PathLike, error: OSError) -> NoSpaceError:
    """A `NoSpaceError` saying which device ran out while writing `path` (chain it to `error`)."""
    return NoSpaceError(error.errno, f"no space left on {mount_point(path)} while writing {path} "
                                     f"({os.strerror(error.errno)}); free space there and run the command again")


def _is_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and not isinstance(error, NoSpaceError) and error.errno in _FULL


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte of `data` is written; a write that makes no progress raises ENOSPC."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[n:]


class _FdWriter(io.RawIOBase):
    """A raw binary writer over a descriptor that writes every byte (through `write_all`) or raises."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return os.lseek(self._fd, offset, whence)

    def tell(self) -> int:
        return os.lseek(self._fd, 0, os.SEEK_CUR)

    def write(self, data) -> int:
        data = bytes(data)
        write_all(self._fd, data)
        return len(data)


def cache_dir(*parts: str) -> Path:
    """The ganblocks cache folder ($GANBLOCKS_CACHE, default ~/.cache/ganblocks), joined with `parts`."""
    root = Path(os.environ.get("GANBLOCKS_CACHE") or Path.home() / ".cache" / "ganblocks").expanduser()
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[io.IOBase]:
    """Open a temporary file beside `path`; on a clean exit fsync it and rename it onto `path`.

    Raises:
        NoSpaceError: the disk filled up; the temporary file is removed and `path` is left as it was.
        Anything the body raises, after the temporary file is removed.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open: mode={mode!r}; expected 'wb' or 'w'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    raw = _FdWriter(fd)
    f: io.IOBase = io.BufferedWriter(raw)
    if mode == "w":
        f = io.TextIOWrapper(f, encoding="utf-8", newline="")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; a plain open() would honour the umask
        try:
            yield f
            f.flush()
            os.fsync(fd)
        finally:
            with contextlib.suppress(OSError, ValueError):  # closing flushes nothing new after a failure
                f.close()
            with contextlib.suppress(OSError):
                os.close(fd)
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if _is_full(error):
            raise no_space_error(path, error) from error
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


def honour_umask(path: str | os.PathLike) -> None:
    """Give `path` the mode a plain `open()` (file: 0666) or `mkdir()` (folder: 0777) has under the umask.

    For what `tempfile` creates (0600 files, 0700 folders) and then renames into a shared place: the
    SynthBirds build folder, torch-fidelity's cached real features. A path someone else owns is left as it is.
    """
    with contextlib.suppress(OSError):
        base = 0o777 if os.path.isdir(path) else 0o666
        if os.stat(path).st_uid == os.getuid():
            os.chmod(path, base & ~current_umask())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> bytes:
    """torch.save into memory, then an atomic write (so a full disk is an OSError, not torch's raw error).

    Returns the bytes written (callers hash them for a checkpoint's sidecar).
    """
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    return data


def _cut_torn_tail(fd: int) -> int:
    """Truncate a last line without a newline (a writer killed mid-line); return the file's size after."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    end = size
    while end > 0:
        start = max(0, end - 65536)
        chunk = os.pread(fd, end - start, start)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            end = start + cut + 1
            break
        end = start
    os.ftruncate(fd, end)
    return end


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line, whole or not at all, under an exclusive flock; then fsync.

    A torn last line (a writer killed mid-line) is cut first, so this line starts a line of its own. When
    the write stops short (a full disk), the file is truncated back to its size before and the error
    raised (`NoSpaceError` for ENOSPC/EDQUOT): a row is either in the file, whole, or the caller knows.
    `read_jsonl` also skips a torn last line.
    """
    line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # appenders in other processes (launcher jobs) wait their turn
        size = _cut_torn_tail(fd)
        try:
            write_all(fd, line)
            os.fsync(fd)
        except BaseException as error:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
                os.fsync(fd)
            if _is_full(error):
                raise no_space_error(path, error) from error
            raise
    finally:
        os.close(fd)  # releases the flock


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


# -- reading torch files without running code -------------------------------------------------------------
class UnsafeFileError(ValueError):
    """A torch file holds Python objects beyond tensors and plain containers: loading it could run code."""


class CorruptFileError(ValueError):
    """A torch file is empty, truncated or otherwise unreadable."""


def load_torch_bytes(data: bytes, path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """`torch.load(weights_only=True)` of a file's bytes; errors name `path`.

    Only tensors, dicts, lists, tuples, str, int, float, bool and None are accepted: nothing in the file
    can name a Python callable to run, so a crafted file cannot execute code here.

    Raises:
        UnsafeFileError: the file names Python objects (a pickle payload, or a file not written by ganblocks).
        CorruptFileError: the file is empty, truncated or not a torch file.
    """
    import pickle

    import torch

    if not data:
        raise CorruptFileError(f"{path} is empty (0 bytes): a write that never finished, or a full disk")
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()
        reason = next((ln for ln in first if "GLOBAL" in ln or "Unsupported" in ln), first[0] if first else "")
        raise UnsafeFileError(
            f"refusing to load {path}: it holds Python objects beyond tensors and plain containers ({reason}). "
            "ganblocks never writes such files, so it was made by something else or crafted; unpickling it "
            "could run code from it. Use files written by ganblocks, or rebuild this one."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError) as error:
        raise CorruptFileError(f"{path} is not a readable torch file ({type(error).__name__}: "
                               f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}); "
                               "it is truncated or corrupt") from None


def load_torch_file(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """`load_torch_bytes` of the file at `path` (FileNotFoundError names it when missing)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return load_torch_bytes(path.read_bytes(), path, map_location)
