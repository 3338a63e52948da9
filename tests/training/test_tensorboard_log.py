"""TensorBoard logging: refused with the install command when missing; what it writes, through a fake writer."""

import sys
import types

import numpy as np
import pytest
from PIL import Image

from experiments.config import ConfigError
from ganblocks.io import read_jsonl
from ganblocks.training import train
from ganblocks.training.tensorboard_log import TensorBoardLogger


class FakeWriter:
    """Records what a SummaryWriter would have been asked to write."""

    made: list["FakeWriter"] = []

    def __init__(self, log_dir=None):
        self.log_dir, self.scalars, self.images, self.flushes, self.closed = log_dir, [], [], 0, False
        FakeWriter.made.append(self)

    def add_scalar(self, tag, scalar_value, global_step):
        self.scalars.append((tag, scalar_value, global_step))

    def add_image(self, tag, img_tensor, global_step, dataformats="CHW"):
        self.images.append((tag, np.array(img_tensor), global_step, dataformats))

    def flush(self):
        self.flushes += 1

    def close(self):
        self.closed = True


@pytest.fixture
def without_tensorboard(monkeypatch):
    """Make `import torch.utils.tensorboard` fail as it does where the tensorboard package is absent."""
    monkeypatch.delitem(sys.modules, "torch.utils.tensorboard", raising=False)
    monkeypatch.setitem(sys.modules, "tensorboard", None)


@pytest.fixture
def fake_tensorboard(monkeypatch):
    """torch.utils.tensorboard whose SummaryWriter is FakeWriter."""
    FakeWriter.made.clear()
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeWriter))
    return FakeWriter.made


def test_tensorboard_true_is_refused_before_training_with_the_key_and_the_install_command(without_tensorboard, tiny_cfg, tmp_path):
    with pytest.raises(ConfigError) as err:
        tiny_cfg("train.tensorboard=true")
    assert "train.tensorboard=true" in str(err.value)
    assert "pip install 'ganblocks[tensorboard]'" in str(err.value)
    tiny_cfg("train.tensorboard=false")  # the default needs nothing


def test_logger_open_refuses_too_for_a_config_validated_elsewhere(without_tensorboard, tiny_data, tiny_cfg, tmp_path):
    cfg = tiny_cfg()
    cfg.train.tensorboard = True
    with pytest.raises(RuntimeError, match=r"train\.tensorboard=true .*pip install 'ganblocks\[tensorboard\]'"):
        TensorBoardLogger.open(cfg, tmp_path)
    cfg.train.tensorboard = False
    assert TensorBoardLogger.open(cfg, tmp_path) is None


def test_scalars_are_every_finite_number_of_a_record_tagged_by_stage_at_its_step():
    writer = FakeWriter()
    TensorBoardLogger(writer).scalars({"stage": "stage2", "step": 50, "epoch": 1.5, "loss_d": 0.7, "d_real": 0.9,
                                       "kl": float("nan"), "note": "text", "flag": True, "images_per_sec": 120.0})
    assert writer.scalars == [("stage2/epoch", 1.5, 50), ("stage2/loss_d", 0.7, 50), ("stage2/d_real", 0.9, 50),
                              ("stage2/images_per_sec", 120.0, 50)]
    assert writer.flushes == 1


def test_sheet_is_written_as_an_hwc_uint8_image():
    writer = FakeWriter()
    image = Image.new("RGB", (30, 20), (10, 20, 30))
    TensorBoardLogger(writer).sheet("stage1", 8, image)
    ((tag, array, step, fmt),) = writer.images
    assert (tag, step, fmt, array.shape, array.dtype) == ("stage1/samples", 8, "HWC", (20, 30, 3), np.uint8)
    assert (array == [10, 20, 30]).all()


def test_training_writes_the_log_records_and_sample_sheets_to_run_tensorboard(fake_tensorboard, tiny_data, tiny_cfg, tmp_path):
    train(tiny_cfg("pipeline=two_stage", "train.tensorboard=true"), tmp_path)
    assert [w.log_dir for w in fake_tensorboard] == [str(tmp_path / "tensorboard")] * 2  # one writer per stage
    assert all(w.closed for w in fake_tensorboard)
    scalars = [s for w in fake_tensorboard for s in w.scalars]
    for record in read_jsonl(tmp_path / "log.jsonl"):
        for key in ("loss_d", "loss_g", "d_real", "d_wrong", "d_fake", "kl", "images_per_sec"):
            assert (f"{record['stage']}/{key}", record[key], record["step"]) in scalars
    images = [(tag, step, array) for w in fake_tensorboard for tag, array, step, _ in w.images]
    assert [(tag, step) for tag, step, _ in images] == [("stage1/samples", 4), ("stage2/samples", 4)]
    for tag, step, array in images:  # the very sheet written to samples/
        png = np.asarray(Image.open(tmp_path / "samples" / f"{tag.split('/')[0]}_{step:07d}.png").convert("RGB"))
        assert np.array_equal(array, png)


def test_no_tensorboard_folder_by_default(fake_tensorboard, tiny_data, tiny_cfg, tmp_path):
    train(tiny_cfg(), tmp_path)
    assert fake_tensorboard == [] and not (tmp_path / "tensorboard").exists()


def test_real_summary_writer_writes_event_files(tiny_cfg, tmp_path):
    pytest.importorskip("torch.utils.tensorboard", reason="the tensorboard package is not installed (optional extra)")
    cfg = tiny_cfg("train.tensorboard=true")
    board = TensorBoardLogger.open(cfg, tmp_path)
    board.scalars({"stage": "stage1", "step": 1, "loss_d": 1.0})
    board.close()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
