"""experiments.sample writes the images it lists; experiments.train's config errors exit cleanly."""

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from experiments import sample as sample_cmd
from ganblocks.sheets import layout_sheet
from ganblocks.training import train

REPO = Path(__file__).resolve().parents[2]


def test_sample_writes_stage1_and_final_images_side_by_side(tiny_data, tiny_cfg, tmp_path, capsys):
    run = tmp_path / "run"
    train(tiny_cfg("pipeline=two_stage"), run)
    out = tmp_path / "out"
    rc = sample_cmd.main([f"run_dir={run}", "captions=[a red bird,a small blue bird]", "n=2", f"out_dir={out}"])
    assert rc == 0
    printed = [Path(line) for line in capsys.readouterr().out.split()]
    expected = [out / "grid.png"] + [out / f"{k:03d}_{kind}.png" for k in range(4) for kind in ("stage1", "final")]
    assert printed == expected + [out / "captions.txt"]
    assert all(p.is_file() for p in printed)
    assert Image.open(out / "000_stage1.png").size == (16, 16) and Image.open(out / "000_final.png").size == (32, 32)
    # The grid: each column's caption above it, a labelled Stage-I row above the final row, tiles enlarged.
    captions = ["a red bird", "a red bird", "a small blue bird", "a small blue bird"]
    layout = layout_sheet(4, [("Stage-I",), ("32px",)], captions, tile=32 * 4)  # 32 px enlarged to >= 128
    grid = np.asarray(Image.open(out / "grid.png").convert("RGB"))
    assert grid.shape[:2] == (layout.height, layout.width) and layout.band > 0 and layout.label_width > 0
    for col in range(4):
        x, _ = layout.tile_origin(0, col)
        assert (grid[: layout.band, x : x + 128] < 128).any(), f"no caption above column {col}"
    assert (grid[layout.band :, : layout.label_width] < 128).any()  # the row labels
    x, y = layout.tile_origin(1, 3)
    final = np.asarray(Image.open(out / "003_final.png").convert("RGB").resize((128, 128), Image.NEAREST))
    assert (grid[y : y + 128, x : x + 128] == final).all()
    assert (out / "captions.txt").read_text().splitlines()[2] == "002\ta small blue bird"


def test_sample_is_deterministic_under_a_seed_and_checks_its_arguments(tiny_data, tiny_cfg, tmp_path):
    run = tmp_path / "run"
    train(tiny_cfg("pipeline=stage1"), run)
    a = sample_cmd.sample(run, ["a bird"], seed=1, out_dir=tmp_path / "a")
    b = sample_cmd.sample(run, ["a bird"], seed=1, out_dir=tmp_path / "b")
    assert [p.name for p in a] == ["grid.png", "000_final.png", "captions.txt"]
    assert (tmp_path / "a" / "grid.png").read_bytes() == (tmp_path / "b" / "grid.png").read_bytes()
    assert sample_cmd.main([f"run_dir={run}", "captions=[x]", "colour=red"]) == 2
    try:
        sample_cmd.sample(run, [""])
    except ValueError as error:
        assert "non-empty" in str(error)
    else:
        raise AssertionError("an empty caption was accepted")


def test_train_command_rejects_a_bad_config_before_training(tmp_path):
    result = subprocess.run([sys.executable, "-m", "experiments.train", "profile=smoke", "loss.name=wgan",
                             f"run_dir={tmp_path / 'run'}"], cwd=tmp_path, capture_output=True, text=True,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "GANBLOCKS_CACHE": str(tmp_path)})
    assert result.returncode == 2
    assert "unknown loss 'wgan' (from loss.name)" in result.stderr
    assert not (tmp_path / "run" / "status.json").exists()


def _train_command(tmp_path, *overrides):
    return subprocess.run([sys.executable, "-m", "experiments.train", "profile=smoke", *overrides,
                           f"run_dir={tmp_path / 'run'}"], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "GANBLOCKS_CACHE": str(tmp_path)})


def test_train_command_names_an_unknown_key_with_the_accepted_ones(tmp_path):
    """Hydra's own composition (in @hydra.main) used to fail first, with its raw message and no keys listed;
    with a `+` Hydra added the key and training ran, ignoring it."""
    for override in ("model.upsampel=nearest", "+model.upsampel=nearest"):
        result = _train_command(tmp_path, override)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("experiments.train: ") and len(result.stderr.splitlines()) <= 2
        assert "unknown config key 'model.upsampel'" in result.stderr
        assert "keys under 'model': preset, upsample," in result.stderr
        assert "did you mean model.upsample?" in result.stderr
        assert "Traceback" not in result.stderr and "HYDRA_FULL_ERROR" not in result.stderr
        assert not (tmp_path / "run").exists()


def test_train_command_refuses_a_size_no_model_accepts_before_training(tmp_path):
    result = _train_command(tmp_path, "model.stage2_size=100")
    assert result.returncode == 2
    assert "model.stage2_size=100 (pipeline stage 'stage2'): the models cannot be built" in result.stderr
    assert not (tmp_path / "run").exists()


def test_evaluate_line_gives_no_error_for_a_single_estimate():
    """FID is one number over all samples: no '+- 0.0000 (std over 1 splits)', which reads as exact."""
    from experiments.evaluate import describe

    fid = {"value": 12.5, "std": 0.0, "splits": 1, "n_samples": 100, "n_captions": 10, "real": 3.0, "evaluator": "e"}
    assert describe(fid) == "12.5000 (one estimate, no error; n=100, 10 captions)  real 3.0000  [e]"
    isc = dict(fid, value=2.0, std=0.1, splits=10)
    assert describe(isc).startswith("2.0000 +- 0.1000 (std over 10 splits; n=100")
    rp = dict(fid, value=0.3, std=0.05, splits=10, std_over="captions", chance=0.01, real=None)
    assert describe(rp) == "0.3000 +- 0.0500 (s.e. over 10 captions; n=100, 10 captions)  chance 0.0100  [e]"


def test_train_command_names_a_data_or_device_problem_without_a_traceback(tmp_path):
    """A missing data folder, an unknown built-in size and device=cuda without CUDA used to end in a
    traceback under Hydra's 'Error executing job' (exit 1), the last two after the run folder was written."""
    missing = tmp_path / "no-such-folder"
    result = _train_command(tmp_path, "data.name=folder", f"data.root={missing}")
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"experiments.train: dataset folder {missing} does not exist")
    assert "Traceback" not in result.stderr and "HYDRA_FULL_ERROR" not in result.stderr

    for sub in ("b", "c"):
        (tmp_path / sub).mkdir()
    result = _train_command(tmp_path / "b", "data.size=huge")
    assert result.returncode == 2, result.stderr
    assert "data.size='huge'; expected one of ['tiny', 'small', 'default']" in result.stderr
    assert not (tmp_path / "b" / "run").exists()

    import torch
    if not torch.cuda.is_available():
        result = _train_command(tmp_path / "c", "device=cuda")
        assert result.returncode == 2, result.stderr
        assert result.stderr == ("experiments.train: device='cuda' but CUDA is not available; use device=cpu or "
                                 "device=auto\n")
        assert not (tmp_path / "c" / "run").exists()


def test_the_schema_lists_every_built_in_dataset_size():
    from dataclasses import fields

    from experiments.schema import DataConfig
    from ganblocks.data.synthbirds import PRESETS

    size = next(f for f in fields(DataConfig) if f.name == "size")
    assert size.metadata["choices"] == tuple(PRESETS)


def test_train_command_refuses_a_run_dir_under_a_file_or_on_a_full_disk(tmp_path, monkeypatch):
    """Hydra creates run_dir and writes .hydra/ before the task runs: both used to be a raw traceback."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = subprocess.run([sys.executable, "-m", "experiments.train", "profile=smoke", f"run_dir={blocker}/run"],
                            cwd=tmp_path, capture_output=True, text=True,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "GANBLOCKS_CACHE": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert result.stderr == (f"experiments.train: run_dir='{blocker}/run' cannot be a folder: {blocker} is a file; "
                             "give another run_dir=\n")

    import os
    from types import SimpleNamespace

    from experiments import launch
    from ganblocks.io import NoSpaceError

    monkeypatch.setattr(os, "statvfs", lambda p: SimpleNamespace(f_bavail=3, f_frsize=4096))
    try:
        launch.check_run_dir(str(tmp_path / "run"))
    except NoSpaceError as error:
        assert f"while writing {tmp_path / 'run'}" in str(error) and str(error).startswith("[Errno 28] no space left on ")
    else:
        raise AssertionError("a disk with 12 kB free was accepted")
    monkeypatch.setattr(os, "statvfs", lambda p: SimpleNamespace(f_bavail=1 << 20, f_frsize=4096))
    launch.check_run_dir(str(tmp_path / "run"))  # enough space: no error, nothing made
    assert not (tmp_path / "run").exists()
