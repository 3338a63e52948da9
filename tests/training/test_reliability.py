"""Faults a run folder meets: another config, a kill between checkpoints, bad or crafted checkpoint files."""

from __future__ import annotations

import pytest
import torch

from ganblocks.io import UnsafeFileError, read_jsonl
from ganblocks.training import load_generator, loop, train
from ganblocks.training.checkpoint import CheckpointError, load_checkpoint, sidecar
from ganblocks.training.runconfig import ConfigMismatchError
from tests.payload import payload_is_live, write_crafted_checkpoint

TIMING = ("images_per_sec",)  # the only fields of a log record that depend on the wall clock


def log_without_timing(run):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_jsonl(run / "log.jsonl")]


def final_states(run, stages=("stage1", "stage2")):
    return {stage: load_checkpoint(run / "checkpoints" / stage / "final.pt") for stage in stages}


def assert_same_finals(a, b):
    for stage in a:
        for part in ("generator", "discriminator"):
            for key, value in a[stage][part].items():
                assert torch.equal(value, b[stage][part][key]), f"{stage} {part}.{key}"


# -- 1. another config on the same run folder -------------------------------------------------------------
def test_resume_with_another_config_is_refused_naming_the_keys(tiny_data, tiny_cfg, tmp_path):
    cfg = tiny_cfg("pipeline=stage1")
    train(cfg, tmp_path, stop_after=2)
    config_before = (tmp_path / "config.yaml").read_text()
    last_before = (tmp_path / "checkpoints" / "stage1" / "last.pt").read_bytes()
    with pytest.raises(ConfigMismatchError) as info:
        train(tiny_cfg("pipeline=stage1", "train.lr=0.05", "model.upsample=bicubic"), tmp_path)
    message = str(info.value)
    assert "train.lr: 0.0002 -> 0.05" in message and "model.upsample: 'nearest' -> 'bicubic'" in message
    assert "run_dir=" in message and f"delete {tmp_path}" in message
    assert (tmp_path / "config.yaml").read_text() == config_before  # nothing touched
    assert (tmp_path / "checkpoints" / "stage1" / "last.pt").read_bytes() == last_before


def test_keys_that_do_not_change_the_result_may_change_on_resume(tiny_data, tiny_cfg, tmp_path):
    cfg = tiny_cfg("pipeline=stage1")
    train(cfg, tmp_path / "straight")
    train(cfg, tmp_path / "resumed", stop_after=2)
    other = tiny_cfg("pipeline=stage1", "train.sample_every=1", "train.progress=true", "metrics.batch_size=3",
                     f"run_dir={tmp_path}/elsewhere")
    assert train(other, tmp_path / "resumed")["status"] == "finished"
    assert_same_finals(final_states(tmp_path / "straight", ["stage1"]), final_states(tmp_path / "resumed", ["stage1"]))


def test_finished_run_asked_again_with_another_config_is_refused(tiny_data, tiny_cfg, tmp_path):
    assert train(tiny_cfg("pipeline=stage1"), tmp_path)["status"] == "finished"
    assert train(tiny_cfg("pipeline=stage1"), tmp_path)["status"] == "finished"
    with pytest.raises(ConfigMismatchError, match="loss.name: 'bce' -> 'hinge'"):
        train(tiny_cfg("pipeline=stage1", "loss.name=hinge"), tmp_path)


# -- 3. a kill between checkpoints leaves no duplicated log records ---------------------------------------
def kill_after_logging(monkeypatch, stage, step):
    """Make the loop die (as a kill would) right after it appended the record of (stage, step)."""
    real = loop.append_jsonl

    def append(path, record):
        real(path, record)
        if record.get("stage") == stage and record.get("step") == step:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(loop, "append_jsonl", append)


@pytest.mark.parametrize("log_every", [1, 2])  # 2: the record after the resume averages steps on both sides
def test_log_after_a_kill_between_checkpoints_equals_an_uninterrupted_run(tiny_data, tiny_cfg, tmp_path, monkeypatch,
                                                                          log_every):
    cfg = tiny_cfg("pipeline=two_stage", "train.max_steps=8", "train.checkpoint_every=3", f"train.log_every={log_every}")
    train(cfg, tmp_path / "straight")
    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        kill_after_logging(patch, "stage2", 4)  # last checkpoint at step 3: steps 4.. come again
        train(cfg, tmp_path / "resumed")
    assert train(cfg, tmp_path / "resumed")["status"] == "finished"
    resumed = log_without_timing(tmp_path / "resumed")
    assert len({(r["stage"], r["step"]) for r in resumed}) == len(resumed)
    assert resumed == log_without_timing(tmp_path / "straight")
    assert_same_finals(final_states(tmp_path / "straight"), final_states(tmp_path / "resumed"))


# -- 7. bad checkpoint files -----------------------------------------------------------------------------
def paused_with_two_checkpoints(cfg, run):
    """A Stage-I paused at step 3 with last.pt (step 3) and previous.pt (step 2)."""
    train(cfg, run, stop_after=2)
    train(cfg, run, stop_after=1)
    folder = run / "checkpoints" / "stage1"
    assert load_checkpoint(folder / "last.pt")["step"] == 3 and load_checkpoint(folder / "previous.pt")["step"] == 2
    return folder


@pytest.mark.parametrize("damage", ["truncated", "empty", "flipped"])
def test_a_bad_last_checkpoint_falls_back_to_the_previous_one_with_a_warning(tiny_data, tiny_cfg, tmp_path, damage):
    cfg = tiny_cfg("pipeline=stage1", "train.max_steps=6")
    train(cfg, tmp_path / "straight")
    folder = paused_with_two_checkpoints(cfg, tmp_path / "resumed")
    last = folder / "last.pt"
    data = last.read_bytes()
    if damage == "truncated":
        last.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        last.write_bytes(b"")
    else:  # same size, one byte changed: only the sha256 sees it
        last.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    with pytest.warns(RuntimeWarning, match=f"{last}.*Falling back to {folder / 'previous.pt'} \\(step 2\\)"):
        assert train(cfg, tmp_path / "resumed")["status"] == "finished"
    assert_same_finals(final_states(tmp_path / "straight", ["stage1"]), final_states(tmp_path / "resumed", ["stage1"]))


def test_no_good_checkpoint_left_names_every_bad_file(tiny_data, tiny_cfg, tmp_path):
    cfg = tiny_cfg("pipeline=stage1", "train.max_steps=6")
    folder = paused_with_two_checkpoints(cfg, tmp_path)
    for name in ("last.pt", "previous.pt"):
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[:-10])
        sidecar(folder / name).unlink()  # no sidecar: the load check alone must catch it
    with pytest.raises(CheckpointError, match=f"no usable checkpoint: {folder / 'last.pt'} .*truncated or corrupt.*"
                                              f"{folder / 'previous.pt'}"):
        train(cfg, tmp_path)


def test_finished_run_with_a_truncated_final_checkpoint_says_which_file(tiny_data, tiny_cfg, tmp_path):
    cfg = tiny_cfg("pipeline=two_stage")
    train(cfg, tmp_path)
    final = tmp_path / "checkpoints" / "stage2" / "final.pt"
    final.write_bytes(final.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=f"says finished, but: checkpoint {final} has 1000 bytes"):
        train(cfg, tmp_path)
    with pytest.raises(CheckpointError, match=f"checkpoint {final} has 1000 bytes"):
        load_generator(tmp_path)


# -- 2. a crafted checkpoint is never unpickled ------------------------------------------------------------
def test_resume_refuses_a_crafted_checkpoint_without_running_it(tiny_data, tiny_cfg, tmp_path):
    assert payload_is_live(tmp_path)
    cfg = tiny_cfg("pipeline=stage1")
    train(cfg, tmp_path / "run", stop_after=1)
    last = tmp_path / "run" / "checkpoints" / "stage1" / "last.pt"
    sidecar(last).unlink()
    marker = tmp_path / "marker"
    write_crafted_checkpoint(last, marker)
    with pytest.raises(UnsafeFileError, match=f"refusing to load {last}: it holds Python objects"):
        train(cfg, tmp_path / "run")
    assert not marker.exists()


def test_an_empty_options_mapping_equals_an_absent_key_on_resume():
    """A config.yaml written before data.text_encoder_options existed computes what {} computes: no difference;
    and giving the mapping a keyword names that keyword alone (not also the empty mapping it replaced)."""
    from ganblocks.training.runconfig import config_differences

    old = {"data": {"text_encoder": "rnn", "wrong": "class"}}
    assert config_differences(old, {"data": {"text_encoder": "rnn", "text_encoder_options": {}, "wrong": "class"}}) == []
    new = {"data": {"text_encoder": "rnn", "text_encoder_options": {"epochs": 50}, "wrong": "class"}}
    stored = {"data": {"text_encoder": "rnn", "text_encoder_options": {}, "wrong": "class"}}
    assert config_differences(stored, new) == ["data.text_encoder_options.epochs: '<absent>' -> 50"]
    assert config_differences(new, stored) == ["data.text_encoder_options.epochs: 50 -> '<absent>'"]
