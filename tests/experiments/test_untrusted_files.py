"""A run folder from someone else is data, never code: crafted checkpoints and seam names are refused.

The crafted final.pt (tests/payload.py) writes a marker file when unpickled; each command must refuse it
with an error naming the file, and the marker must not exist afterwards. Its sidecar is forged to match,
so only the weights_only load stands between the file and code execution.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from ablations import collect as collect_cmd
from ablations.job import run_job
from ablations.runner import TRUSTED_FNS_ENV, UntrustedCallableError
from experiments import evaluate as evaluate_cmd
from experiments import sample as sample_cmd
from ganblocks.io import UnsafeFileError
from ganblocks.training import train
from ganblocks.training.checkpoint import sidecar
from tests.payload import MARKER_ENV, payload_is_live, write_crafted_checkpoint


@pytest.fixture
def crafted_run(tiny_data, tiny_cfg, tmp_path):
    """A finished Stage-I run folder whose final.pt was replaced by a payload (with a matching sidecar)."""
    assert payload_is_live(tmp_path)  # the payload really runs when unpickled the old way
    run = tmp_path / "run"
    train(tiny_cfg("pipeline=stage1"), run)
    final = run / "checkpoints" / "stage1" / "final.pt"
    write_crafted_checkpoint(final, tmp_path / "marker")
    data = final.read_bytes()
    sidecar(final).write_text(json.dumps({"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}))
    return run, final, tmp_path / "marker"


def test_sample_refuses_a_crafted_checkpoint(crafted_run, capsys):
    run, final, marker = crafted_run
    assert sample_cmd.main([f"run_dir={run}", "captions=[a red bird]"]) == 1
    assert f"refusing to load {final}" in capsys.readouterr().err
    assert not marker.exists()


def test_evaluate_refuses_a_crafted_checkpoint(crafted_run, capsys):
    run, final, marker = crafted_run
    assert evaluate_cmd.main([f"run_dir={run}"]) == 1
    assert f"refusing to load {final}" in capsys.readouterr().err
    assert not marker.exists()


def grid_folder(run, out):
    """An ablation output folder holding two 'ok' runs, both copies of `run`."""
    rows = []
    for index, variant in enumerate(("a", "b")):
        shutil.copytree(run, out / "runs" / variant / "seed0")
        rows.append({"variant": variant, "variant_index": index, "seed": 0, "status": "ok", "metric": "is",
                     "value": 1.0 + index, "attempt": f"attempt-{variant}", "n_rows": 1,
                     "run_dir": f"runs/{variant}/seed0", "profile": "smoke"})
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def test_collect_refuses_a_crafted_checkpoint(crafted_run, tmp_path, capsys):
    run, _, marker = crafted_run
    out = grid_folder(run, tmp_path / "grid")
    with pytest.raises(UnsafeFileError, match=f"refusing to load {out / 'runs' / 'a' / 'seed0'}.*final.pt"):
        collect_cmd.collect(out, plots=False)
    assert collect_cmd.main([f"out_dir={out}", "plots=false"]) == 1
    assert "refusing to load" in capsys.readouterr().err
    assert not marker.exists()


def test_a_seam_named_in_launch_json_is_not_imported_unless_allowed(tiny_data, tiny_cfg, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    train(tiny_cfg("pipeline=stage1"), run)
    out = grid_folder(run, tmp_path / "grid")
    marker = tmp_path / "seam-marker"
    monkeypatch.setenv(MARKER_ENV, str(marker))
    monkeypatch.delenv(TRUSTED_FNS_ENV, raising=False)
    (out / "launch.json").write_text(json.dumps({"grid": "ca_variants", "profile": "smoke", "out_dir": str(out),
                                                 "rank_fn": "tests.payload:touch_marker",
                                                 "compose_fn": "tests.payload:touch_marker"}))
    assert collect_cmd.main([f"out_dir={out}", "plots=false", "samples=false"]) == 1
    err = capsys.readouterr().err
    assert f"{out / 'launch.json'} names rank_fn='tests.payload:touch_marker'" in err and TRUSTED_FNS_ENV in err
    with pytest.raises(UntrustedCallableError, match="names compose_fn='tests.payload:touch_marker'"):
        run_job(out / "launch.json", 0)
    assert not marker.exists()
    monkeypatch.setenv(TRUSTED_FNS_ENV, "tests.payload:touch_marker")  # the user allows it: now it runs
    collect_cmd.collect(out, plots=False, samples=False)
    assert marker.read_text() == "code ran"
