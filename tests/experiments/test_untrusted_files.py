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


def _crafted_data_pickle(path, marker):
    import pickle

    from tests.payload import WritesMarker

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps([WritesMarker(marker)], protocol=2))
    return path


def test_data_pickles_rebuild_only_plain_values_and_arrays(tmp_path):
    """read_pickle used pickle.load: a crafted filenames.pickle ran code. Python 2-style pickles of the
    StackGAN data (lists of str, numpy arrays) still load."""
    import pickle

    import numpy as np

    from ganblocks.data.loaders import read_pickle

    marker = tmp_path / "marker"
    with pytest.raises(UnsafeFileError, match=r"refusing to load .*filenames.pickle: it names the Python callable "
                                              r"__builtin__.getattr"):  # how protocol 2 spells Path.write_text
        read_pickle(_crafted_data_pickle(tmp_path / "filenames.pickle", marker))
    assert not marker.exists()
    emb = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    for protocol in (2, 4, 5):
        (tmp_path / "empty.pickle").write_bytes(pickle.dumps(np.ones((2, 3, 0), np.float32), protocol=protocol))
        assert read_pickle(tmp_path / "empty.pickle").shape == (2, 3, 0)  # protocol 2 names builtins.bytes
        (tmp_path / "ok.pickle").write_bytes(pickle.dumps([emb, ["a/b", b"c"], {1, 2}, np.int64(3)], protocol=protocol))
        back = read_pickle(tmp_path / "ok.pickle")
        assert np.array_equal(back[0], emb) and back[1:] == [["a/b", b"c"], {1, 2}, 3]


def test_a_crafted_data_folder_is_refused_before_any_code_runs(tmp_path):
    """A run folder's config.yaml chooses data.root, and evaluate/sample build that dataset: a crafted
    filenames.pickle there ran code (seen by hand: `experiments.evaluate run_dir=CRAFTED` wrote the marker)."""
    from ganblocks.data import build_dataset

    marker = tmp_path / "marker"
    for split in ("train", "test"):
        _crafted_data_pickle(tmp_path / "data" / split / "filenames.pickle", marker)
    for split in ("train", "test"):
        with pytest.raises(UnsafeFileError, match=f"refusing to load {tmp_path / 'data' / split / 'filenames.pickle'}"):
            build_dataset("stackgan", split, 64, "precomputed", root=tmp_path / "data")
    assert not marker.exists()


@pytest.mark.parametrize("options", ["{bogus: 1}", "5"])
def test_a_config_yaml_with_text_encoder_options_its_encoder_refuses_is_one_line(tiny_data, tiny_cfg, tmp_path, capsys,
                                                                                 options):
    """sample and evaluate rebuild the run's text encoder from its config.yaml: a crafted or stale
    data.text_encoder_options is refused naming the file and the key (exit 1), not a traceback."""
    run = tmp_path / "run"
    train(tiny_cfg("pipeline=stage1"), run)
    config = run / "config.yaml"
    text = config.read_text()
    assert "text_encoder_options: {}" in text
    config.write_text(text.replace("text_encoder_options: {}", f"text_encoder_options: {options}"))
    assert sample_cmd.main([f"run_dir={run}", "captions=[a red bird]"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"experiments.sample: {config}: data.text_encoder_options") and "\n" not in err
    assert evaluate_cmd.main([f"run_dir={run}", "metrics.n_samples=2", "metrics.n_per_caption=1"]) == 1
    assert f"experiments.evaluate: {config}: data.text_encoder_options" in capsys.readouterr().err
