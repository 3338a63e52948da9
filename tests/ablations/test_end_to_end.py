"""The real pieces end to end: compose -> train -> evaluate -> tables, on the built-in dataset, tiny and fast."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ablations.runner import RESULTS, run_grid
from ganblocks.io import read_jsonl

evaluation = pytest.importorskip("ganblocks.evaluation")
if not hasattr(evaluation, "evaluate_run"):
    pytest.skip("ganblocks.evaluation.evaluate_run is not in this tree yet", allow_module_level=True)

# The smoke profile, cut further: a couple of steps per stage, a small evaluation.
TINY = [
    "train.max_steps=2",
    "train.checkpoint_every=1",
    "train.log_every=1",
    "train.sample_every=2",
    "train.progress=false",
    "metrics.n_samples=64",
    "metrics.figures=false",
    "metrics.rank_captions=8",
    "metrics.evaluator_renders_per_class=12",
    "metrics.evaluator_free_renders=96",
    "metrics.evaluator_epochs=2",
    "metrics.min_class_accuracy=0",
    "metrics.min_attribute_accuracy=0",
    "metrics.progress=false",
]


def _grid(out: Path, only, extra=(), **kw) -> Path:
    return run_grid("ca_variants", "smoke", 1, out, only, [*TINY, *extra], log=lambda s: None, **kw)


def _numbers(path: Path) -> list[dict]:
    """table.csv without the timing column (wall-clock speed differs between any two runs)."""
    rows = list(csv.DictReader(path.read_text().splitlines()))
    return [{k: v for k, v in r.items() if not k.startswith("Images/s")} for r in rows]


def test_smoke_grid_end_to_end(tmp_path):
    out = _grid(tmp_path / "g", ["none", "gaussian"])
    rows = read_jsonl(out / RESULTS)
    assert {(r["variant"], r["status"]) for r in rows} == {("none", "ok"), ("gaussian", "ok")}
    assert all(r["params"] > 0 and r["images_per_s"] > 0 and r["n_samples"] for r in rows)
    md = (out / "table.md").read_text()
    header = next(ln for ln in md.splitlines() if ln.startswith("| Variant"))
    for col in ("IS", "FID", "R-precision", "Rank", "Coarse attr.", "Fine attr.", "Diversity", "Params", "Images/s"):
        assert col in header
    assert sum(ln.startswith("| none ") or ln.startswith("| gaussian ") for ln in md.splitlines()) == 2
    # the real row and chance levels come from the real evaluation; a smoke table says what it is
    assert any(ln.startswith("| real (test images) ") and "reference" in ln for ln in md.splitlines())
    assert "Chance: R-precision 0.010, Coarse attr." in md and "checks that the pipeline runs" in md
    assert not any("**" in ln for ln in md.splitlines() if ln.startswith("| "))  # one seed: no best
    # The caption names the profile's recipe, read from the runs' resolved configs.
    assert ("Recipe: text encoder bow, gf/df 8/8, N_g 16, N_z 16, batch 16, lr 0.0002, 2 steps per stage x 2 stages (two_stage), "
            "KL weight 1 (paper preset), data tiny; D head matching_aware.") in md
    assert (out / "samples" / "seed0.png").exists() and list((out / "plots").glob("metric_*.png"))
    assert (out / "runs" / "gaussian" / "seed0" / "metrics.json").exists()


def test_interrupted_real_run_gives_the_same_table(tmp_path):
    from ganblocks.training import train

    def train_then_killed(cfg, run_dir):
        status = train(cfg, run_dir, stop_after=1)  # a checkpoint after one step, then "the process dies"
        if status["status"] == "running":
            raise KeyboardInterrupt
        return status

    reference = _grid(tmp_path / "ref", ["none"], plots=False)
    with pytest.raises(KeyboardInterrupt):
        _grid(tmp_path / "cut", ["none"], train_fn=train_then_killed, plots=False)
    assert not (tmp_path / "cut" / RESULTS).exists()
    resumed = _grid(tmp_path / "cut", ["none"], plots=False)
    assert _numbers(resumed / "table.csv") == _numbers(reference / "table.csv")


def test_real_divergence_is_recorded(tmp_path, monkeypatch):
    from tests.training.fakes import nan_d_loss_at_call

    nan_d_loss_at_call(monkeypatch, 0)  # the first step's D loss is NaN
    out = _grid(tmp_path / "g", ["none"], plots=False)
    (row,) = read_jsonl(out / RESULTS)
    assert row["status"] == "diverged" and row["reason"]
    assert "0/1 (seed 0 diverged)" in (out / "table.md").read_text()
