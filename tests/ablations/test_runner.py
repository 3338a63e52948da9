"""The grid runner with stand-in compose/train/evaluate (tests/ablations/fakes.py): recording, resume, locks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ablations import run as cli
from ablations.collect import collect, runs_frame
from ablations.grids import GridError
from ablations.lock import DirLock, LockedError
from ablations.plan import plan
from ablations.runner import RESULTS, complete_attempts, make_settings, run_grid
from ganblocks.io import read_jsonl
from tests.ablations import fakes

SEAMS = dict(
    compose_fn="tests.ablations.fakes:compose",
    train_fn="tests.ablations.fakes:train",
    evaluate_fn="tests.ablations.fakes:evaluate",
    rank_fn="tests.ablations.fakes:rank",
)
REQUIRED = ["IS", "FID", "R-precision", "Rank", "Coarse attr.", "Fine attr.", "Diversity", "Params", "Images/s"]


@pytest.fixture(autouse=True)
def _reset_fakes():
    fakes.INTERRUPT.update(variant=None, at_step=None)
    fakes.CALLS.clear()
    yield
    fakes.INTERRUPT.update(variant=None, at_step=None)


def grid(out_dir: Path, seeds: int = 2, overrides=(), log=None, plots=False, **kw) -> Path:
    return run_grid("ca_variants", "smoke", seeds, out_dir, None, overrides, log=log or (lambda s: None), plots=plots, **SEAMS, **kw)


def table_rows(path: Path) -> dict[str, str]:
    """variant -> its Markdown table line."""
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("| ") and not ln.startswith("| Variant") and "---" not in ln]
    return {ln.split("|")[1].strip(): ln for ln in lines}


def test_grid_writes_rows_and_tables(tmp_path):
    lines: list[str] = []
    out = grid(tmp_path / "g", log=lines.append, plots=True)
    rows = read_jsonl(out / RESULTS)
    assert len(rows) == 3 * 2 * 7  # variants x seeds x metrics
    assert {r["status"] for r in rows} == {"ok"}
    for key in ("value", "n_samples", "splits", "evaluator", "profile", "git_sha", "wall_s", "params", "images_per_s"):
        assert all(key in r for r in rows), key
    assert [ln for ln in lines if ": ok," in ln][0].startswith("[1/6] ca_variants none seed=0: ok")
    md = (out / "table.md").read_text()
    header = [ln for ln in md.splitlines() if ln.startswith("| Variant")][0]
    for col in REQUIRED:
        assert col in header, col
    assert set(table_rows(out / "table.md")) == {"none", "gaussian", "mixture", "real (test images)"}
    assert "fake-judge" in md and "64" in md and "smoke" in md and "[0, 1]" in md
    marked = [ln.split(",") for ln in (out / "table_diff.csv").read_text().splitlines()[1:]]
    assert len(marked) == 2 * 8  # gaussian and mixture against the baseline none, on each directed column (not diversity)
    better = sum(m[-1] == "better" for m in marked)
    assert md.count("**") == 2 * (1 + better)  # "**Table.**" and one bold cell per significant improvement
    assert "findings.md" in {p.name for p in out.iterdir()} and "none" in (out / "findings.md").read_text()
    real = table_rows(out / "table.md")["real (test images)"]
    assert "| 6.00 |" in real and "| 240.0 |" in real and "reference" in real and "**" not in real
    assert "Chance: R-precision 0.010, Coarse attr. 0.250, Fine attr. 0.500" in md
    assert md.startswith("**Table.** Smoke profile: this table checks that the pipeline runs end to end")
    tex = (out / "table.tex").read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex and "$\\pm$" in tex
    csv = (out / "table.csv").read_text().splitlines()
    assert len(csv) == 5 and "IS mean" in csv[0] and csv[-1].startswith("real (test images),")
    assert (out / "plots" / "metric_is.png").exists() and (out / "plots" / "curve_loss_d.png").exists()
    assert "Rank" in header and table_rows(out / "table.md")["none"].count("±") >= 7


def test_one_seed_names_no_best(tmp_path):
    out = grid(tmp_path / "g", seeds=1)
    md = (out / "table.md").read_text()
    body = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert not any("**" in ln for ln in body)  # one seed cannot name a best
    assert "Fewer than 2 seeds per variant" in md and "nothing is bold" in md
    assert "\\textbf" not in (out / "table.tex").read_text()


def test_mean_and_std_over_seeds(tmp_path):
    out = grid(tmp_path / "g", seeds=2)
    frame = runs_frame(out)
    values = frame[frame["variant"] == "gaussian"]["is"].tolist()
    assert len(values) == 2
    csv = {ln.split(",")[0]: ln for ln in (out / "table.csv").read_text().splitlines()}
    mean = sum(values) / 2
    assert f"{mean:.6g}" in csv["gaussian"]


def test_second_call_skips_finished_runs(tmp_path):
    out = grid(tmp_path / "g", seeds=1)
    n_rows = len(read_jsonl(out / RESULTS))
    fakes.CALLS.clear()
    lines: list[str] = []
    grid(out, seeds=1, log=lines.append)
    assert fakes.CALLS == []
    assert len(read_jsonl(out / RESULTS)) == n_rows
    assert sum("earlier, skipped" in ln for ln in lines) == 3


def test_interrupted_run_resumes_and_table_matches_uninterrupted(tmp_path):
    reference = grid(tmp_path / "ref", seeds=1)
    fakes.INTERRUPT.update(variant="gaussian", at_step=3)
    with pytest.raises(KeyboardInterrupt):
        grid(tmp_path / "cut", seeds=1)
    cut = tmp_path / "cut"
    assert json.loads((cut / "runs/gaussian/seed0/checkpoint.json").read_text())["step"] == 3
    fakes.INTERRUPT.update(variant=None, at_step=None)
    fakes.CALLS.clear()
    grid(cut, seeds=1)
    assert [Path(c).parent.name for c in fakes.CALLS] == ["gaussian", "mixture"]  # none was not redone
    log = read_jsonl(cut / "runs/gaussian/seed0/log.jsonl")
    assert [r["step"] for r in log] == list(range(fakes.STEPS))  # resumed, not restarted
    assert (cut / "table.csv").read_text() == (reference / "table.csv").read_text()
    assert table_rows(cut / "table.md") == table_rows(reference / "table.md")


def test_kill_between_appends_redoes_only_that_attempt(tmp_path):
    reference = grid(tmp_path / "ref", seeds=1)
    out = tmp_path / "cut"
    shutil.copytree(reference, out)
    # Simulate kill -9 while the last run's rows were being appended: keep 3 of its 7 rows, and a torn line.
    text = (out / RESULTS).read_text().splitlines(keepends=True)
    (out / RESULTS).write_text("".join(text[:-4]) + text[-4][:25])
    for name in ("table.md", "table.csv"):
        (out / name).unlink()
    assert ("mixture", 0) not in complete_attempts(read_jsonl(out / RESULTS))
    fakes.CALLS.clear()
    grid(out, seeds=1)
    assert [Path(c).parent.name for c in fakes.CALLS] == ["mixture"]
    assert (out / "table.csv").read_text() == (reference / "table.csv").read_text()
    assert all(isinstance(r, dict) for r in read_jsonl(out / RESULTS))


def test_failed_and_diverged_runs_are_recorded_and_grid_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr("ablations.runner.load_grid", _grid_with("boom", "nan"))
    lines: list[str] = []
    out = grid(tmp_path / "g", seeds=1, log=lines.append)
    statuses = {(r["variant"], r["status"]) for r in read_jsonl(out / RESULTS)}
    assert statuses == {("none", "ok"), ("boom", "failed"), ("nan", "diverged"), ("gaussian", "ok")}
    failed = [r for r in read_jsonl(out / RESULTS) if r["status"] == "failed"][0]
    assert failed["reason"] == "RuntimeError: boom at step 0" and failed["metric"] is None
    assert "RuntimeError" in (out / "runs/boom/seed0/error.txt").read_text()
    md = (out / "table.md").read_text()
    assert "0/1 (seed 0 failed)" in md and "0/1 (seed 0 diverged)" in md
    assert "boom: seed 0: RuntimeError: boom at step 0" in md and "loss_d is nan at step 2" in md
    assert any("[4/4] ca_variants gaussian seed=0: ok" in ln for ln in lines)
    # A failed run is tried again on the next call; a diverged one is final.
    fakes.CALLS.clear()
    grid(out, seeds=1)
    assert [Path(c).parent.name for c in fakes.CALLS] == ["boom"]


def _grid_with(*labels):
    from ablations.grids import Grid, Variant, load_grid

    base = load_grid("ca_variants")
    extra = tuple(Variant(lab, (f"model.conditioning={lab}",)) for lab in labels)
    patched = Grid(base.name, base.description, (base.variants[0], *extra, base.variants[1]), base.seeds)
    return lambda name, *a: patched


def test_lock_refuses_a_second_runner(tmp_path):
    out = tmp_path / "g"
    with DirLock(out):
        with pytest.raises(LockedError, match=r"in use by another ablations.run \(pid \d+"):
            grid(out, seeds=1)
    assert fakes.CALLS == []
    grid(out, seeds=1)  # released: the same call now works
    assert len(fakes.CALLS) == 3


def test_bad_override_fails_before_any_training(tmp_path):
    with pytest.raises(GridError, match="variant 'none', seed 0: the config does not compose.*unknown key 'model.bogus'"):
        grid(tmp_path / "g", seeds=1, overrides=["model.bogus=1"])
    assert fakes.CALLS == [] and not (tmp_path / "g").exists()


def test_changed_config_on_same_out_dir_is_refused(tmp_path):
    out = grid(tmp_path / "g", seeds=1)
    with pytest.raises(GridError, match="different config"):
        grid(out, seeds=1, overrides=["data.text_encoder=rnn"])


def test_changed_metrics_score_finished_runs_again_without_training(tmp_path):
    """Only `metrics.*` changed (e.g. the stages grid's `metrics.image_size` for Stage-I): each finished run is
    evaluated anew from its checkpoint, not trained and not refused; its new rows carry the new config_key."""
    out = grid(tmp_path / "g", seeds=1)
    logs = {p: p.read_bytes() for p in out.glob("runs/*/seed0/log.jsonl")}
    n_before = len(read_jsonl(out / RESULTS))
    old = runs_frame(out).set_index("variant")
    lines: list[str] = []
    grid(out, seeds=1, overrides=["metrics.image_size=128"], log=lines.append)
    assert any("gaussian seed=0: scoring again from its checkpoint (metrics.image_size: None -> 128)" in ln
               for ln in lines), lines
    assert {p: p.read_bytes() for p in logs} == logs  # no training step was taken
    rows = read_jsonl(out / RESULTS)
    assert len(rows) == 2 * n_before  # the first scores stay in the file
    new = runs_frame(out).set_index("variant")
    for variant in ("none", "gaussian", "mixture"):
        assert new.loc[variant, "attempt"] != old.loc[variant, "attempt"]
        assert new.loc[variant, "is"] != old.loc[variant, "is"]  # the fake scores depend on the size
    lines.clear()
    grid(out, seeds=1, overrides=["metrics.image_size=128"], log=lines.append)  # now current: skipped
    assert sum("ok earlier, skipped" in ln for ln in lines) == 3


def test_metrics_changed_back_are_scored_again_not_refused(tmp_path):
    """The trainer returns a finished run untouched (its config.yaml keeps the metrics it was trained with), so
    after one re-score the next comparison must start from the rows' settings: going back to the first
    settings (or on to third ones) scores again, naming the change from the latest rows."""
    out = grid(tmp_path / "g", seeds=1)
    first = runs_frame(out).set_index("variant")
    grid(out, seeds=1, overrides=["metrics.image_size=128"])
    lines: list[str] = []
    grid(out, seeds=1, log=lines.append)  # back to the generator's own size
    assert any("gaussian seed=0: scoring again from its checkpoint (metrics.image_size: 128 -> None)" in ln
               for ln in lines), lines
    again = runs_frame(out).set_index("variant")
    for variant in ("none", "gaussian", "mixture"):
        assert again.loc[variant, "is"] == first.loc[variant, "is"]
    lines.clear()
    grid(out, seeds=1, overrides=["metrics.image_size=64"], log=lines.append)
    assert any("gaussian seed=0: scoring again from its checkpoint (metrics.image_size: None -> 64)" in ln
               for ln in lines), lines


def test_changed_metrics_retry_a_failed_run_and_rescore_a_diverged_one(tmp_path, monkeypatch):
    """A failed run has no scores to mix: with only `metrics.*` changed it is retried under them (its training
    resumes; metrics never change it), and the grid's finished runs are scored again, not refused as a whole."""
    monkeypatch.setattr("ablations.runner.load_grid", _grid_with("boom", "nan"))
    out = tmp_path / "g"
    run_grid("ca_variants", "smoke", 1, out, None, (), log=lambda s: None, plots=False, collect=False, **SEAMS)
    lines: list[str] = []
    run_grid("ca_variants", "smoke", 1, out, None, ["metrics.image_size=128"], log=lines.append, plots=False,
             collect=False, **SEAMS)
    assert any("boom seed=0: running in" in ln for ln in lines), lines  # retried
    assert any("none seed=0: scoring again" in ln for ln in lines), lines
    latest = complete_attempts(read_jsonl(out / RESULTS))
    keys = {v[0]["config_key"] for v in latest.values()}
    assert {v[0]["status"] for (name, _), v in latest.items() if name in ("boom", "nan")} == {"failed", "diverged"}
    assert len(keys) == len(latest)  # every row is of the new settings (the keys differ by variant only)
    states = {r.variant: r.state for r in plan(make_settings("ca_variants", "smoke", 1, out, None, (), **SEAMS))}
    assert states["boom"].startswith("retried (last attempt failed: RuntimeError: boom at step 0; metrics.image_size: 128 -> None")


def test_changed_metrics_are_still_refused_beside_a_computing_change_or_for_runs_left_out(tmp_path):
    out = grid(tmp_path / "g", seeds=1)
    with pytest.raises(GridError, match="different config"):
        grid(out, seeds=1, overrides=["metrics.image_size=128", "data.text_encoder=rnn"])
    with pytest.raises(GridError, match="different config") as err:  # gaussian and mixture keep the old scoring
        run_grid("ca_variants", "smoke", 1, out, "none", ["metrics.image_size=128"], log=lambda s: None,
                 plots=False, **SEAMS)
    # the way out is to include them (scored again, not trained), never to delete the trained runs
    assert "leaves them out (gaussian/seed0, mixture/seed0): include them" in str(err.value)
    assert "remove that folder" not in str(err.value)


def test_cli_errors_list_what_is_accepted(capsys):
    assert cli.main(["grid=nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown grid 'nope'" in err and "ca_variants" in err and "text_twice" in err
    assert cli.main(["grid=ca_variants", "profile=huge"]) == 2
    assert "accepted: cpu, paper, small, smoke, auto" in capsys.readouterr().err
    assert cli.main(["grid=ca_variants", "only=none,bogus"]) == 2
    assert "its variants: none, gaussian, mixture" in capsys.readouterr().err
    assert cli.main(["grid=ca_variants", "launcher=ray"]) == 2
    assert "accepted: joblib, submitit_slurm, submitit_local" in capsys.readouterr().err
    assert cli.main(["grid=ca_variants", "jobs=0"]) == 2  # jobs=K alone packs runs (test_packing.py)
    assert "expected auto or a positive integer" in capsys.readouterr().err
    assert cli.main(["--help"]) == 0 and "grids: attention, ca_variants" in capsys.readouterr().out


def test_cli_splits_runner_settings_overrides_and_hydra():
    runner, overrides, hydra = cli.parse_args(
        ["grid=ca_variants", "seeds=2", "data.text_encoder=bow", "launcher=joblib", "hydra.launcher.n_jobs=3"]
    )
    assert runner == {"grid": "ca_variants", "seeds": "2", "launcher": "joblib"}
    assert overrides == ["data.text_encoder=bow"] and hydra == ["hydra.launcher.n_jobs=3"]


def test_collector_rebuilds_tables_from_results(tmp_path, capsys):
    out = grid(tmp_path / "g", seeds=1)
    before = (out / "table.csv").read_text()
    for name in ("table.md", "table.tex", "table.csv"):
        (out / name).unlink()
    from ablations.collect import main

    # launch.json names the fake rank_fn; a name read from the folder is not imported unless the user gives it
    assert main([f"out_dir={out}", "plots=false", "samples=false"]) == 1
    assert main([f"out_dir={out}", "plots=false", "samples=false", f"rank_fn={SEAMS['rank_fn']}"]) == 0
    assert (out / "table.csv").read_text() == before
    assert f"table: {out / 'table.md'}" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="no results.jsonl"):
        collect(tmp_path / "empty")


def test_joblib_launcher_runs_two_jobs(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    out = tmp_path / "g"
    runner = {"grid": "ca_variants", "profile": "smoke", "seeds": "1", "out_dir": str(out), "only": "none,gaussian",
              "launcher": "joblib", "jobs": "2", "gpus": "0"}
    cli.launch(runner, [], [], log=lambda s: None, **SEAMS)
    rows = read_jsonl(out / RESULTS)
    assert {(r["variant"], r["status"]) for r in rows} == {("none", "ok"), ("gaussian", "ok")}
    assert set(table_rows(out / "table.md")) == {"none", "gaussian", "real (test images)"}
    assert sorted(p.name for p in (out / "hydra").iterdir())  # Hydra's sweep folder lives in out_dir
    lines: list[str] = []
    cli.launch(runner, ["metrics.image_size=128"], [], log=lines.append, **SEAMS)  # scored again, not refused
    assert "2 runs, 0 done earlier, 2 to launch with joblib (2 finished, to score again" in "\n".join(lines)
    assert len(read_jsonl(out / RESULTS)) == 2 * len(rows)


def test_kill_9_mid_run_then_rerun_gives_the_same_table(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    reference = grid(tmp_path / "ref", seeds=1)
    out = tmp_path / "cut"
    code = (
        "from ablations.runner import run_grid; "
        f"run_grid('ca_variants', 'smoke', 1, {str(out)!r}, None, [], plots=False, log=lambda s: None, **{SEAMS!r})"
    )
    env = {**os.environ, "FAKE_STEP_SECONDS": "0.2"}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parents[2], env=env)
    ckpt = out / "runs" / "gaussian" / "seed0" / "checkpoint.json"
    deadline = time.monotonic() + 60
    while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpt.exists() and json.loads(ckpt.read_text())["step"] < fakes.STEPS  # killed inside the 2nd run
    fakes.CALLS.clear()
    grid(out, seeds=1)  # the dead runner's lock went with it
    assert [Path(c).parent.name for c in fakes.CALLS] == ["gaussian", "mixture"]
    assert (out / "table.csv").read_text() == (reference / "table.csv").read_text()


def test_job_pins_its_gpu_from_the_job_number(monkeypatch):
    from ablations.job import assign_gpu

    monkeypatch.delenv("GANBLOCKS_JOB_GPU_PINNED", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert assign_gpu(3, 2) == "1"
    monkeypatch.delenv("GANBLOCKS_JOB_GPU_PINNED")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6")
    assert assign_gpu(4, 3) == "5"
    assert assign_gpu(0, 3) == "5"  # pinned once per process: a reused worker keeps its GPU
    assert assign_gpu(7, 0) is None


def test_rows_of_runs_left_out_by_only_are_not_mixed_with_another_config(tmp_path):
    out = run_grid("ca_variants", "smoke", 1, tmp_path / "g", "none", (), log=lambda s: None, collect=False, **SEAMS)
    with pytest.raises(GridError, match="none/seed0 \\(data.text_encoder: 'bow' -> 'rnn'\\).*another out_dir="):
        run_grid("ca_variants", "smoke", 1, out, "gaussian", ["data.text_encoder=rnn"], log=lambda s: None,
                 collect=False, **SEAMS)
    assert fakes.CALLS == [str(out / "runs" / "none" / "seed0")]  # nothing trained the second time


def test_an_interrupted_run_is_not_continued_with_another_config(tmp_path):
    fakes.INTERRUPT.update(variant="gaussian", at_step=3)
    with pytest.raises(KeyboardInterrupt):
        grid(tmp_path / "g", seeds=1)
    fakes.INTERRUPT.update(variant=None, at_step=None)
    calls = len(fakes.CALLS)
    with pytest.raises(GridError, match="gaussian/seed0 \\(data.text_encoder: 'bow' -> 'rnn'\\)"):
        grid(tmp_path / "g", seeds=1, overrides=["data.text_encoder=rnn"])
    assert len(fakes.CALLS) == calls  # refused before any training


def test_run_facts_read_the_status_record_and_guess_no_other_spelling(tmp_path):
    from ablations.runner import run_facts
    from ganblocks.training.state import write_status

    write_status(tmp_path, "running", None, stage="stage1", params={"stage1": {"G": 10, "G_total": 10, "D": 5}},
                 images_per_sec={"stage1": 100.0})
    result = write_status(tmp_path, "finished", None, stage="stage2",
                          params={"stage1": {"G": 10, "G_total": 10, "D": 5}, "stage2": {"G": 20, "G_total": 30, "D": 7}},
                          images_per_sec={"stage1": 100.0, "stage2": 300.0})
    assert run_facts(tmp_path, result) == {"params": 30, "images_per_s": 150.0}
    assert run_facts(tmp_path / "none", {}) == {"params": None, "images_per_s": None}
    # another spelling is kept as an extra key of the record, never read as the rate
    assert run_facts(tmp_path / "none", {"status": "finished", "images_per_s": 99.0}) == {"params": None, "images_per_s": None}


def test_config_key_of_a_key_added_later_at_its_default_is_the_old_one():
    """`metrics.image_size: null` (added after the committed grids ran) hashes like its absence, so those grid
    folders are neither refused nor scored again; a set value is a new key."""
    from ablations.validate import config_key

    old = {"model": {"gf_dim": 16}, "metrics": {"n_samples": 1000}}
    assert config_key({**old, "metrics": {"n_samples": 1000, "image_size": None}}) == config_key(old)
    assert config_key({**old, "metrics": {"n_samples": 1000, "image_size": 128}}) != config_key(old)
