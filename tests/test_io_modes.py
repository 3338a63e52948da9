"""Files written atomically get the mode a plain open() would give: 0666 minus the umask (not mkstemp's 0600)."""

import os
import stat

import pytest
import torch

from ganblocks.io import atomic_torch_save, atomic_write_bytes, atomic_write_json, atomic_write_text, current_umask


@pytest.fixture
def umask():
    """Set the process umask for one test, restore it afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_honour_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    assert current_umask() == mask
    atomic_write_text(tmp_path / "table.md", "| a |\n")
    atomic_write_json(tmp_path / "metrics.json", {"IS": 1.0})
    atomic_write_bytes(tmp_path / "grid.png", b"\x89PNG")
    atomic_torch_save(tmp_path / "checkpoints" / "last.pt", {"w": torch.zeros(1)})
    with open(tmp_path / "plain.txt", "w") as f:  # what the atomic writes must match
        f.write("x")
    for name in ("table.md", "metrics.json", "grid.png", "checkpoints/last.pt", "plain.txt"):
        assert mode(tmp_path / name) == expected, f"{name}: {oct(mode(tmp_path / name))} under umask {oct(mask)}"


def test_collected_tables_and_run_files_are_readable_by_others(tmp_path, umask):
    """The files a grid leaves (tables, results, launch.json, a run's config/status) under umask 022."""
    from ablations.runner import run_grid

    umask(0o022)
    seams = {role: f"tests.ablations.fakes:{name}" for role, name in
             (("compose_fn", "compose"), ("train_fn", "train"), ("evaluate_fn", "evaluate"), ("rank_fn", "rank"))}
    out = run_grid("ca_variants", "smoke", 1, tmp_path / "g", None, (), log=lambda s: None, plots=False, **seams)
    for name in ("table.md", "table.tex", "table.csv", "runs.csv", "launch.json", "results.jsonl"):
        assert mode(out / name) == 0o644, name
    status = next(out.glob("runs/*/seed0/status.json"))
    assert mode(status) == 0o644


@pytest.mark.parametrize("mask, expected", [(0o022, 0o755), (0o002, 0o775)], ids=["umask022", "umask002"])
def test_built_dataset_folder_honours_the_umask(tmp_path, umask, mask, expected):
    """The SynthBirds build folder is a tempfile.mkdtemp (0700) renamed into the cache, often shared."""
    from ganblocks.data import synthbirds

    umask(mask)
    root = synthbirds.build(tmp_path / "cache" / "sb", size="tiny", num_classes=2, images_per_class=1, max_size=32)
    assert mode(root) == expected
    assert all(mode(p) == expected & 0o666 for p in root.rglob("*") if p.is_file())


def test_honour_umask_fixes_tempfile_modes(tmp_path, umask):
    import tempfile

    from ganblocks.io import honour_umask

    umask(0o022)
    folder = tempfile.mkdtemp(dir=tmp_path)
    fd, file = tempfile.mkstemp(dir=tmp_path)
    os.close(fd)
    honour_umask(folder), honour_umask(file)
    assert (mode(folder), mode(file)) == (0o755, 0o644)
