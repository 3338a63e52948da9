"""What the commands say and return when something is wrong: a failed run makes `ablations.run` exit 1 naming
it; a bad config exits 2 before any run trains; a missing run_dir or out_dir is one line and exit 2."""

from __future__ import annotations

import pytest

from ablations import run as cli
from ablations.grids import Grid, GridError, Variant, load_grid
from ablations.runner import run_grid
from tests.ablations import fakes
from tests.ablations.test_runner import SEAMS, _grid_with


@pytest.fixture(autouse=True)
def _reset_fakes():
    fakes.CALLS.clear()
    yield
    fakes.CALLS.clear()


@pytest.fixture
def fake_engine(monkeypatch):
    """`python -m ablations.run` with the stand-in compose/train/evaluate as its defaults."""
    for role, name in SEAMS.items():
        monkeypatch.setitem(__import__("ablations.runner", fromlist=["_DEFAULTS"])._DEFAULTS, role, name)


def test_a_failed_run_makes_the_grid_exit_1_naming_it(tmp_path, monkeypatch, capsys, fake_engine):
    monkeypatch.setattr("ablations.runner.load_grid", _grid_with("boom"))
    out = tmp_path / "g"
    assert cli.main(["grid=ca_variants", "profile=smoke", "seeds=1", f"out_dir={out}"]) == 1
    err = capsys.readouterr().err.splitlines()  # progress lines of the collector come first
    start = err.index("error: 1 run(s) failed (the table marks them; the same command retries them):")
    assert err[start + 1].startswith(f"  boom seed 0: RuntimeError: boom at step 0 (run folder {out / 'runs/boom/seed0'};")
    assert len(err) == start + 2 and (out / "table.md").is_file()  # the others ran and the table was still written


def test_a_grid_of_ok_and_diverged_runs_exits_0(tmp_path, monkeypatch, fake_engine):
    monkeypatch.setattr("ablations.runner.load_grid", _grid_with("nan"))
    assert cli.main(["grid=ca_variants", "profile=smoke", "seeds=1", f"out_dir={tmp_path / 'g'}"]) == 0


def test_a_size_no_model_accepts_exits_2_before_any_run(tmp_path, monkeypatch, capsys):
    """With the real compose: model.stage2_size=100 used to train Stage-I of every run, fail each, exit 0."""
    monkeypatch.setitem(__import__("ablations.runner", fromlist=["_DEFAULTS"])._DEFAULTS, "train_fn", SEAMS["train_fn"])
    out = tmp_path / "g"
    assert cli.main(["grid=ca_variants", "profile=smoke", "seeds=1", f"out_dir={out}", "model.stage2_size=100"]) == 2
    err = capsys.readouterr().err
    assert "variant 'none', seed 0: the config does not compose" in err and "model.stage2_size=100" in err
    assert fakes.CALLS == [] and not out.exists()


def test_every_variant_is_validated_before_the_first_run_trains(tmp_path, monkeypatch):
    base = load_grid("ca_variants")
    bad = Variant("huge_lr", ("model.conditioning=mixture", "train.lr=inf"))
    monkeypatch.setattr("ablations.runner.load_grid", lambda name, *a: Grid(base.name, base.description,
                                                                            (*base.variants, bad), base.seeds))
    with pytest.raises(GridError, match=r"(?s)variant 'huge_lr', seed 0: .*train.lr=inf; expected a finite number > 0"):
        run_grid("ca_variants", "smoke", 1, tmp_path / "g", None, (), train_fn=SEAMS["train_fn"],
                 evaluate_fn=SEAMS["evaluate_fn"], log=lambda s: None)
    assert fakes.CALLS == []


def _one_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


def test_collect_without_a_results_folder_is_one_line_and_exit_2(tmp_path, capsys):
    from ablations.collect import main

    assert main([]) == 2
    assert "usage: python -m ablations.collect out_dir=DIR" in _one_line(capsys)
    assert main([f"out_dir={tmp_path / 'nope'}"]) == 2
    assert f"no results.jsonl in {tmp_path / 'nope'} (from out_dir=)" in _one_line(capsys)


def test_evaluate_and_sample_without_a_run_folder_are_one_line_and_exit_2(tmp_path, capsys):
    from experiments.evaluate import main as evaluate
    from experiments.sample import main as sample

    assert evaluate([]) == 2
    assert _one_line(capsys).startswith("experiments.evaluate: missing run_dir=RUN")
    assert evaluate([f"run_dir={tmp_path / 'nope'}"]) == 2
    assert f"run_dir={tmp_path / 'nope'} holds no config.yaml" in _one_line(capsys)
    assert sample(["captions=[a bird]"]) == 2
    assert "needs run_dir=" in _one_line(capsys)
    assert sample([f"run_dir={tmp_path}", "captions=[a bird]"]) == 2
    assert f"{tmp_path} holds no config.yaml" in _one_line(capsys)
    assert sample([f"checkpoint={tmp_path}/checkpoints/stage1/final.pt", "captions=[a bird]"]) == 2
    assert "holds no config.yaml" in _one_line(capsys)


def test_an_out_dir_that_cannot_be_made_or_a_full_disk_is_one_line(tmp_path, monkeypatch, capsys, fake_engine):
    """Both used to end in a traceback from DirLock (NotADirectoryError; NoSpaceError), exit 1."""
    import errno
    import os

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert cli.main(["grid=ca_variants", "profile=smoke", "seeds=1", f"out_dir={blocker / 'g'}"]) == 2
    assert capsys.readouterr().err == (f"error: cannot use {blocker / 'g'} as an output folder: Not a directory "
                                       f"({blocker / 'g'}); give a folder you can write\n")

    real_open = os.open

    def full_disk_open(path, flags, *args):
        if str(path).endswith(".lock"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", full_disk_open)
    out = tmp_path / "g"
    assert cli.main(["grid=ca_variants", "profile=smoke", "seeds=1", f"out_dir={out}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: [Errno 28] no space left on ") and f"while writing {out / '.lock'}" in err
    assert len(err.splitlines()) == 1 and fakes.CALLS == []
