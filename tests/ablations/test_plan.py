"""The dry run lists each run of a grid with its folder, state and config hash, and trains or writes nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ablations import run as cli
from ablations.plan import describe, plan
from ablations.runner import RESULTS, config_key, make_settings, run_grid
from ganblocks.io import read_jsonl
from tests.ablations import fakes
from tests.ablations.test_runner import SEAMS, _grid_with


@pytest.fixture(autouse=True)
def _reset_fakes():
    fakes.INTERRUPT.update(variant=None, at_step=None)
    fakes.CALLS.clear()
    yield
    fakes.INTERRUPT.update(variant=None, at_step=None)


def snapshot(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_dry_run_reports_each_runs_state_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr("ablations.runner.load_grid", _grid_with("boom", "nan"))
    out = tmp_path / "g"
    run_grid("ca_variants", "smoke", 1, out, None, (), log=lambda s: None, plots=False, collect=False, **SEAMS)
    # A third seed of gaussian was interrupted at step 3 by an earlier invocation with seeds=2.
    fakes.INTERRUPT.update(variant="gaussian", at_step=3)
    with pytest.raises(KeyboardInterrupt):
        run_grid("ca_variants", "smoke", 2, out, None, (), log=lambda s: None, plots=False, collect=False, **SEAMS)
    fakes.CALLS.clear()
    before = snapshot(out)

    settings = make_settings("ca_variants", "smoke", 2, out, None, (), **{k: v for k, v in SEAMS.items()})
    runs = plan(settings)
    states = {(r.variant, r.seed): r.state for r in runs}
    assert states[("none", 0)] == "done: ok (skipped)" and states[("nan", 0)] == "done: diverged (skipped)"
    assert states[("boom", 0)].startswith("retried (last attempt failed: RuntimeError: boom at step 0")
    assert states[("none", 1)] == "done: ok (skipped)"
    # gaussian seed 1 was cut at step 3; the fake trainer writes status.json only at its end.
    assert states[("gaussian", 1)] == "resumes from what its folder holds (not yet recorded)"
    assert [(r.variant, r.seed) for r in runs] == [(v, s) for v in ("none", "boom", "nan", "gaussian") for s in (0, 1)]
    recorded = {(r["variant"], r["seed"]): r["config_key"] for r in read_jsonl(out / RESULTS)}
    for r in runs:
        assert r.run_dir == out / "runs" / r.variant / f"seed{r.seed}"
        assert r.config_key == config_key(r.config)
        if (r.variant, r.seed) in recorded:
            assert r.config_key == recorded[(r.variant, r.seed)]  # the hash the runner records
        assert r.overrides[-1] == f"seed={r.seed}" and f"model.conditioning={r.variant}" in r.overrides
    text = describe(settings, runs, show_config=True)
    assert text.splitlines()[0].startswith("dry run: grid ca_variants, profile smoke, 8 runs (")
    assert "[2/8] none seed=1" in text and "    | run_dir: " + str(out / "runs" / "none" / "seed1") in text
    assert fakes.CALLS == [] and snapshot(out) == before  # nothing trained, nothing written


def test_dry_run_names_an_interrupted_run_and_one_recorded_with_another_config(tmp_path):
    out = tmp_path / "g"
    fakes.INTERRUPT.update(variant="gaussian", at_step=3)
    with pytest.raises(KeyboardInterrupt):
        run_grid("ca_variants", "smoke", 1, out, None, (), log=lambda s: None, plots=False, **SEAMS)
    fakes.INTERRUPT.update(variant=None, at_step=None)
    (out / "runs/gaussian/seed0/status.json").write_text(json.dumps({"status": "running", "step": 3}))
    states = {r.variant: r.state for r in plan(make_settings("ca_variants", "smoke", 1, out, None, (), **SEAMS))}
    assert states == {"none": "done: ok (skipped)", "gaussian": "resumes at step 3 (running, not yet recorded)",
                      "mixture": "to run"}
    other = plan(make_settings("ca_variants", "smoke", 1, out, None, ("data.text_encoder=rnn",), **SEAMS))
    assert other[0].state == "refused: recorded (ok) with another config"


def test_cli_dry_run_composes_the_real_configs_and_creates_nothing(tmp_path, capsys):
    out = tmp_path / "g"
    for args in (["--dry-run"], ["dry_run=true"]):
        assert cli.main(["grid=ca_variants", "profile=smoke", f"out_dir={out}", *args]) == 0
        text = capsys.readouterr().out
        assert "3 runs (3 to train or retry)" in text and f"{out}/runs/mixture/seed0  to run" in text
        assert "profile=smoke model.conditioning=mixture seed=0" in text
    assert not out.exists()
    assert cli.main(["grid=ca_variants", "profile=smoke", f"out_dir={out}", "only=none", "--cfg", "job"]) == 0
    text = capsys.readouterr().out
    assert "    |   conditioning: none" in text and "    |   size: tiny" in text and not out.exists()
    assert cli.main(["grid=ca_variants", "profile=smoke", "model.upsample=bicubik", "--dry-run"]) == 2
    assert "unknown upsample 'bicubik'" in capsys.readouterr().err
    assert cli.main(["grid=ca_variants", "dry_run=maybe"]) == 2


def test_dry_run_says_the_invocation_would_stop_for_runs_it_leaves_out(tmp_path):
    """only= leaves out finished runs scored under other metrics settings: every listed run looks fine, but the
    invocation would be refused (one table, two protocols); the dry run says so, and how to go on."""
    out = tmp_path / "g"
    run_grid("ca_variants", "smoke", 1, out, None, (), log=lambda s: None, plots=False, **SEAMS)
    settings = make_settings("ca_variants", "smoke", 1, out, "none", ("metrics.image_size=128",), **SEAMS)
    runs = plan(settings)
    assert [r.state for r in runs] == ["scored again from its checkpoint (metrics.image_size: None -> 128)"]
    text = describe(settings, runs)
    assert text.splitlines()[-1].startswith("the invocation would stop before training anything: ")
    assert "leaves them out (gaussian/seed0, mixture/seed0): include them" in text
    assert "would stop" not in describe(make_settings("ca_variants", "smoke", 1, out, None, (), **SEAMS),
                                        plan(make_settings("ca_variants", "smoke", 1, out, None, (), **SEAMS)))
