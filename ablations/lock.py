"""An exclusive lock on an output folder, so that two runners never write the same grid.

The lock is an `fcntl.flock` on `DIR/.lock`, held while the runner works; the kernel releases it when
the process exits for any reason (kill -9 included), so a stale lock file never blocks a rerun.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path
from types import TracebackType

from ganblocks.io import NoSpaceError, no_space_error


class LockedError(RuntimeError):
    """Another process holds the lock on an output folder."""


class UnusableFolderError(RuntimeError):
    """The output folder cannot be created or opened (a file in its path, no permission); names it."""


class DirLock:
    """Context manager holding `flock(LOCK_EX | LOCK_NB)` on `directory/.lock`.

    Raises:
        LockedError: on enter, when another process holds it; the message names that process.
        NoSpaceError: on enter, when the disk is full (the lock is not held then).
        UnusableFolderError: on enter, when the folder cannot be created or its lock file opened.
    """

    def __init__(self, directory: str | os.PathLike, what: str = "ablations.run") -> None:
        self.path = Path(directory) / ".lock"
        self.what = what
        self._fd: int | None = None

    def __enter__(self) -> "DirLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise no_space_error(self.path, error) from None
            raise UnusableFolderError(f"cannot use {self.path.parent} as an output folder: {error.strerror} "
                                      f"({error.filename}); give a folder you can write") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown process"
            os.close(fd)
            what, sep, pid = holder.partition(": ")  # the holder names its own kind (a runner or a re-evaluation)
            what, holder = (what, pid) if sep else ("process", holder)
            raise LockedError(
                f"{self.path.parent} is in use by another {what} ({holder}); wait for it to finish, "
                f"or give another out_dir=. The lock frees itself when that process ends."
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{self.what}: pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        except OSError as error:  # a full disk: say so, and let go of the lock
            os.close(fd)
            if error.errno in (errno.ENOSPC, errno.EDQUOT) and not isinstance(error, NoSpaceError):
                raise no_space_error(self.path, error) from None
            raise
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
