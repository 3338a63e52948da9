"""`ablations.reevaluate`: a grid's trained runs scored again by a new judge, with nothing lost or retrained."""

from __future__ import annotations

import pytest

from ablations import reevaluate as cli
from ablations.collect import runs_frame
from ablations.reevaluate import ReevaluateError, reevaluate
from ablations.runner import RESULTS, complete_attempts, run_grid
from ganblocks.io import read_jsonl
from tests.ablations import fakes

SEAMS = dict(compose_fn="tests.ablations.fakes:compose", train_fn="tests.ablations.fakes:train",
             evaluate_fn="tests.ablations.fakes:evaluate", rank_fn="tests.ablations.fakes:rank")
FAKE = dict(evaluate_fn="tests.ablations.fakes:evaluate", judge_fn="tests.ablations.fakes:judge", plots=False)


@pytest.fixture()
def trained(tmp_path, monkeypatch):
    """A 3-variant x 2-seed fake grid scored by `fake-judge`; the test then swaps in `fake-judge-v2` (x2 values)."""
    monkeypatch.setattr(fakes, "JUDGE", {"name": "fake-judge", "scale": 1.0, "fail": None})
    monkeypatch.setenv("GANBLOCKS_TRUSTED_FNS", ",".join(SEAMS.values()))  # the collector's rank_fn from launch.json
    out = run_grid("ca_variants", "smoke", 2, tmp_path / "g", log=lambda s: None, plots=False, **SEAMS)
    fakes.JUDGE.update(name="fake-judge-v2", scale=2.0)
    return out


def test_new_judge_appends_an_attempt_that_the_tables_use(trained):
    before = runs_frame(trained)
    n_old = len(read_jsonl(trained / RESULTS))
    lines: list[str] = []
    fakes.CALLS.clear()
    counts = reevaluate(trained, log=lines.append, **FAKE)
    assert counts == {"scored": 6, "current": 0, "failed": 0, "left": 0}
    assert fakes.CALLS == []  # nothing trained...
    rows = read_jsonl(trained / RESULTS)
    assert len(rows) == 2 * n_old  # ...and the old rows are all still there
    after = runs_frame(trained)
    for (_, old), (_, new) in zip(before.iterrows(), after.iterrows()):
        assert (old["variant"], old["seed"]) == (new["variant"], new["seed"])
        assert new["attempt"] != old["attempt"] and new["git_sha"] == old["git_sha"] and new["wall_s"] == old["wall_s"]
        assert new["reevaluated_sha"] is not None
        h = old["is"] / 2.0 - 1  # fake IS = 2 (1 + h); the new judge doubles h
        assert new["is"] == pytest.approx(2.0 * (1 + 2 * h))
    latest = complete_attempts(rows)
    assert {r["evaluator"] for group in latest.values() for r in group} == {"fake-judge-v2"}
    assert all(group[0]["reevaluated"]["from_attempt"] in set(before["attempt"]) for group in latest.values())
    md = (trained / "table.md").read_text()
    assert "fake-judge-v2" in md and "Scored again by ablations.reevaluate" in md and "(6 of 6 runs)" in md
    assert "fake-judge," not in md and "fake-judge." not in md
    assert lines[-1].startswith("re-evaluated 6, already current 0, failed 0")
    summary = (trained / "reevaluated.md").read_text()
    assert "fake-judge -> fake-judge-v2" in summary
    row = next(ln for ln in summary.splitlines() if ln.startswith("| gaussian | is |"))
    old = before.loc[before["variant"] == "gaussian", "is"].mean()
    new = after.loc[after["variant"] == "gaussian", "is"].mean()
    assert row == f"| gaussian | is | 2 | {old:.4g} | {new:.4g} | {new - old:+.4g} |"


def test_second_call_skips_current_runs_and_force_scores_them(trained):
    reevaluate(trained, **FAKE)
    data = (trained / RESULTS).read_bytes()
    assert reevaluate(trained, **FAKE)["current"] == 6
    assert (trained / RESULTS).read_bytes() == data  # nothing appended
    assert reevaluate(trained, force=True, collect=False, **FAKE)["scored"] == 6


def test_a_kill_mid_append_is_redone_for_that_run_only(trained):
    reevaluate(trained, **FAKE)
    lines = (trained / RESULTS).read_text().splitlines(keepends=True)
    (trained / RESULTS).write_text("".join(lines[:-1]))  # the last run's last row never landed
    frame = runs_frame(trained)
    assert frame["reevaluated_sha"].isna().sum() == 1  # that run counts with its old attempt
    assert reevaluate(trained, **FAKE) == {"scored": 1, "current": 5, "failed": 0, "left": 0}
    assert runs_frame(trained)["reevaluated_sha"].notna().all()


def test_a_failed_evaluation_keeps_the_earlier_scores(trained):
    before = runs_frame(trained).set_index(["variant", "seed"])
    fakes.JUDGE["fail"] = "mixture"
    lines: list[str] = []
    counts = reevaluate(trained, log=lines.append, **FAKE)
    assert counts["failed"] == 2 and counts["scored"] == 4
    after = runs_frame(trained).set_index(["variant", "seed"])
    for seed in (0, 1):
        assert after.loc[("mixture", seed), "status"] == "ok"  # not `failed`: ablations.run must not retrain it
        assert after.loc[("mixture", seed), "attempt"] == before.loc[("mixture", seed), "attempt"]
        run_dir = trained / after.loc[("mixture", seed), "run_dir"]
        assert "evaluation of mixture failed" in (run_dir / "reevaluate_error.txt").read_text()
    assert any("mixture seed=0: failed (RuntimeError" in ln and "earlier scores stay" in ln for ln in lines)
    fakes.JUDGE["fail"] = None  # fixed: the next call scores them, and the old traceback goes
    assert reevaluate(trained, **FAKE) == {"scored": 2, "current": 4, "failed": 0, "left": 0}
    assert not list(trained.glob("runs/*/seed*/reevaluate_error.txt"))


def test_only_scores_the_named_variants(trained):
    assert reevaluate(trained, only=["none"], collect=False, **FAKE)["scored"] == 2
    frame = runs_frame(trained)
    assert set(frame.loc[frame["reevaluated_sha"].notna(), "variant"]) == {"none"}


def test_refusals_name_the_value(trained, tmp_path, capsys):
    with pytest.raises(ReevaluateError, match="gaussian, mixture, none"):
        reevaluate(trained, only=["gausian"], **FAKE)
    assert cli.main([f"out_dir={tmp_path / 'nowhere'}"]) == 2
    assert "no results.jsonl in" in capsys.readouterr().err
    assert cli.main(["out_dir="]) == 2
    assert "out_dir= is required" in capsys.readouterr().err
    assert cli.main([f"out_dir={trained}", "forse=true"]) == 2
    assert "unknown key forse" in capsys.readouterr().err
    assert cli.main([f"out_dir={trained}", "force=maybe"]) == 2
    assert "force='maybe': accepted true or false" in capsys.readouterr().err
    config = trained / "runs" / "gaussian" / "seed1" / "config.yaml"
    config.unlink()
    data = (trained / RESULTS).read_bytes()
    assert cli.main([f"out_dir={trained}"]) == 2  # refused before any run is scored
    assert f"{config} does not exist" in capsys.readouterr().err
    assert (trained / RESULTS).read_bytes() == data


def test_a_run_whose_judge_raises_fails_alone(trained):
    """A corrupt config.yaml makes the judge raise (as `current_judge` does): that run keeps its scores, the rest go on."""
    from omegaconf import OmegaConf

    def judge(run_dir):
        OmegaConf.load(run_dir / "config.yaml")
        return fakes.JUDGE["name"]

    broken = trained / "runs" / "mixture" / "seed0"
    (broken / "config.yaml").write_text("model: [unclosed\n")
    lines: list[str] = []
    counts = reevaluate(trained, log=lines.append, **{**FAKE, "judge_fn": judge})
    assert counts == {"scored": 5, "current": 0, "failed": 1, "left": 0}
    failed = next(ln for ln in lines if "mixture seed=0: failed (" in ln)
    assert "earlier scores stay" in failed and "line 1, column 8" in failed and "\n" not in failed  # one line
    assert "config.yaml" in (broken / "reevaluate_error.txt").read_text()
    assert runs_frame(trained).set_index(["variant", "seed"]).isna().loc[("mixture", 0), "reevaluated_sha"]


def test_a_hostile_or_broken_launch_json_is_refused_in_one_line(trained, capsys):
    import json

    launch = trained / "launch.json"
    manifest = json.loads(launch.read_text())
    data = (trained / RESULTS).read_bytes()
    for content, says in ((dict(manifest, evaluate_fn="os:system"), "names evaluate_fn='os:system'"),
                          (dict(manifest, evaluate_fn=["os:system"]), "evaluate_fn=['os:system']: expected"),
                          ([1, 2], "is not a JSON object"), ('{"grid": ', "is not a JSON object")):
        launch.write_text(content if isinstance(content, str) else json.dumps(content))
        assert cli.main([f"out_dir={trained}", "plots=false"]) in (1, 2)
        err = capsys.readouterr().err
        assert err.startswith("ablations.reevaluate: ") and says in err and "Traceback" not in err
    assert (trained / RESULTS).read_bytes() == data  # nothing scored
    # the refusal's advice works: the user names the evaluate_fn on the command line
    launch.write_text(json.dumps(dict(manifest, evaluate_fn="os:system")))
    assert cli.main([f"out_dir={trained}", "plots=false", "evaluate_fn=tests.ablations.fakes:evaluate"]) == 0
    assert runs_frame(trained)["reevaluated_sha"].notna().all()


def test_the_lock_refusal_names_what_holds_the_folder(tmp_path):
    """A runner refused by a re-evaluation must not say 'in use by another ablations.run'."""
    from ablations.lock import DirLock, LockedError

    with DirLock(tmp_path, what="re-evaluation"):
        with pytest.raises(LockedError, match=r"in use by another re-evaluation \(pid \d+"):
            DirLock(tmp_path).__enter__()
    with DirLock(tmp_path):
        with pytest.raises(LockedError, match=r"in use by another ablations.run \(pid \d+"):
            DirLock(tmp_path, what="re-evaluation").__enter__()


@pytest.mark.parametrize("where", ["absolute", "dotdot"])
def test_a_run_folder_outside_out_dir_is_refused(trained, tmp_path, where):
    """A results.jsonl edited to point a run elsewhere must not make the re-evaluation write there."""
    import shutil

    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(trained / "runs" / "none" / "seed0", elsewhere)
    target = str(elsewhere) if where == "absolute" else "../elsewhere"
    text = (trained / RESULTS).read_text().replace('"run_dir": "runs/none/seed0"', f'"run_dir": "{target}"')
    assert target in text
    (trained / RESULTS).write_text(text)
    before = sorted(p.name for p in elsewhere.iterdir())
    with pytest.raises(ReevaluateError, match=r"none seed 0: run_dir .*elsewhere.* outside"):
        reevaluate(trained, **FAKE)
    assert sorted(p.name for p in elsewhere.iterdir()) == before
