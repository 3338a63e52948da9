"""Atomic writes and the JSONL reader that tolerates a torn last line."""

import json

import pytest

from ganblocks.io import append_jsonl, atomic_open, atomic_write_json, read_jsonl, stable_hash


def test_atomic_write_replaces_whole_file(tmp_path):
    p = tmp_path / "a.json"
    atomic_write_json(p, {"x": 1})
    atomic_write_json(p, {"x": 2})
    assert json.loads(p.read_text()) == {"x": 2}
    assert [f.name for f in tmp_path.iterdir()] == ["a.json"]


def test_failed_atomic_write_leaves_old_file_and_no_temp(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(p, "w") as f:
            f.write("half")
            raise RuntimeError("killed")
    assert p.read_text() == "old"
    assert [f.name for f in tmp_path.iterdir()] == ["a.txt"]


def test_jsonl_skips_torn_last_line(tmp_path):
    p = tmp_path / "r.jsonl"
    append_jsonl(p, {"a": 1})
    append_jsonl(p, {"a": 2})
    with open(p, "a") as f:
        f.write('{"a": 3')  # a write cut by a kill
    assert read_jsonl(p) == [{"a": 1}, {"a": 2}]


def test_stable_hash_ignores_key_order():
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


# -- full disks and torn lines ---------------------------------------------------------------------------
import errno  # noqa: E402
import os  # noqa: E402

import torch  # noqa: E402

from ganblocks.io import NoSpaceError, atomic_torch_save, atomic_write_bytes  # noqa: E402

REAL_WRITE = os.write


def disk_full_after(monkeypatch, n_bytes: int) -> None:
    """os.write as on a disk with `n_bytes` free: a short write, then ENOSPC."""
    left = [n_bytes]

    def write(fd, data):
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = REAL_WRITE(fd, bytes(data)[: left[0]])
        left[0] -= n
        return n

    monkeypatch.setattr(os, "write", write)


def test_append_on_a_full_disk_raises_and_leaves_no_torn_line(tmp_path, monkeypatch):
    p = tmp_path / "r.jsonl"
    append_jsonl(p, {"a": 1})
    before = p.read_bytes()
    disk_full_after(monkeypatch, 5)  # the row lands half, as on a full disk
    with pytest.raises(NoSpaceError, match=f"no space left on .* while writing {p}"):
        append_jsonl(p, {"a": 2, "pad": "x" * 50})
    assert p.read_bytes() == before  # cut back to the last whole line
    monkeypatch.setattr(os, "write", REAL_WRITE)
    append_jsonl(p, {"a": 3})
    assert [json.loads(line) for line in p.read_text().splitlines()] == [{"a": 1}, {"a": 3}]


def test_append_after_a_killed_writer_starts_a_line_of_its_own(tmp_path):
    p = tmp_path / "r.jsonl"
    append_jsonl(p, {"a": 1})
    with open(p, "a") as f:
        f.write('{"a": 2, "torn')  # a writer killed mid-line
    append_jsonl(p, {"a": 3})
    assert [json.loads(line) for line in p.read_text().splitlines()] == [{"a": 1}, {"a": 3}]
    assert read_jsonl(p) == [{"a": 1}, {"a": 3}]


@pytest.mark.parametrize("writer", ["bytes", "json", "torch", "open"])
def test_atomic_write_on_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch, writer):
    p = tmp_path / "f.bin"
    p.write_bytes(b"old content")
    disk_full_after(monkeypatch, 3)
    with pytest.raises(NoSpaceError, match=f"no space left on .* while writing {p}") as info:
        if writer == "bytes":
            atomic_write_bytes(p, b"x" * 100_000)
        elif writer == "json":
            atomic_write_json(p, {"x": "y" * 100_000})
        elif writer == "torch":
            atomic_torch_save(p, {"w": torch.zeros(10_000)})
        else:
            with atomic_open(p, "w") as f:
                f.write("z" * 100_000)
    assert info.value.errno == errno.ENOSPC
    assert p.read_bytes() == b"old content"
    assert [f.name for f in tmp_path.iterdir()] == ["f.bin"]  # the temporary file is gone


def test_lock_on_a_full_disk_says_so_and_is_not_held(tmp_path, monkeypatch):
    from ablations.lock import DirLock

    real = os.pwrite

    def pwrite(fd, data, offset):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "pwrite", pwrite)
    with pytest.raises(NoSpaceError, match=f"no space left on .* while writing {tmp_path / '.lock'}"):
        with DirLock(tmp_path):
            pass
    monkeypatch.setattr(os, "pwrite", real)
    with DirLock(tmp_path):  # free again
        pass
