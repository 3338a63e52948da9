"""The run-status record: one spelling per field, old status.json files read, wrong types named."""

from __future__ import annotations

import json

import pytest

from ganblocks.training.state import RunStatus, read_status, write_status

# A status.json as the trainer wrote it before the record existed (a finished two-stage run, Dec 2026).
OLD_FILE = {
    "device": "cpu",
    "images_per_sec": {"stage1": 100.0, "stage2": 300.0},
    "params": {"stage1": {"D": 198209, "G": 237896, "G_total": 237896},
               "stage2": {"D": 500000, "G": 400000, "G_total": 637896}},
    "pipeline": "two_stage",
    "precision": {"stage1": {"dtype": "float32", "graphed": False}},
    "profile": "cpu",
    "reason": None,
    "stage": "stage2",
    "status": "finished",
    "step": 1000,
    "updated": "2026-12-01T03:00:36",
    "world_size": 1,
}


def test_an_old_status_file_reads_into_the_record_and_writes_back_unchanged(tmp_path):
    (tmp_path / "status.json").write_text(json.dumps({**OLD_FILE, "note": "a key the record does not name"}))
    status = RunStatus.read(tmp_path)
    assert (status.status, status.stage, status.step, status.world_size) == ("finished", "stage2", 1000, 1)
    assert status.images_per_sec == {"stage1": 100.0, "stage2": 300.0}
    assert status.extra == {"note": "a key the record does not name"}
    assert status.to_json() == {**OLD_FILE, "note": "a key the record does not name"}
    assert read_status(tmp_path) == status.to_json()
    assert RunStatus.read(tmp_path / "nowhere") is None and read_status(tmp_path / "nowhere") is None


def test_the_harness_facts_are_the_final_generator_and_the_harmonic_mean_rate():
    status = RunStatus.from_json(OLD_FILE)
    assert status.generator_params() == 637896  # Stage-II's G_total: the frozen Stage-I counted
    assert status.run_images_per_sec() == pytest.approx(150.0)  # 2 / (1/100 + 1/300): equal images per stage
    assert RunStatus("running").generator_params() is None and RunStatus("running").run_images_per_sec() is None
    assert RunStatus("running", params={"stage1": {"G": 12}}).generator_params() == 12  # no G_total: G


def test_write_status_keeps_earlier_fields_and_returns_the_record(tmp_path):
    write_status(tmp_path, "running", None, pipeline="two_stage", profile="smoke")
    write_status(tmp_path, "running", None, stage="stage1", step=4, images_per_sec={"stage1": 80.0}, custom=[1, 2])
    record = write_status(tmp_path, "finished", None, stage="stage1")
    assert record == json.loads((tmp_path / "status.json").read_text())
    assert (record["pipeline"], record["profile"], record["step"], record["custom"]) == ("two_stage", "smoke", 4, [1, 2])
    assert record["images_per_sec"] == {"stage1": 80.0} and record["status"] == "finished"
    assert "images_per_s" not in record and "images_per_second" not in record


def test_a_field_of_the_wrong_type_is_named_and_nothing_is_written(tmp_path):
    write_status(tmp_path, "running", None, step=3)
    before = (tmp_path / "status.json").read_text()
    with pytest.raises(ValueError, match=r"images_per_sec=120\.0 \(float\); expected an object \{stage: number\}"):
        write_status(tmp_path, "running", None, images_per_sec=120.0)
    with pytest.raises(ValueError, match=r"status 'done'; expected one of \('running', 'finished'"):
        write_status(tmp_path, "done")
    assert (tmp_path / "status.json").read_text() == before
    (tmp_path / "status.json").write_text(json.dumps({"status": "finished", "params": 1234567}))
    with pytest.raises(ValueError, match=r"status\.json: params=1234567 \(int\); expected an object \{stage: "):
        RunStatus.read(tmp_path)
    (tmp_path / "status.json").write_text("{not json")
    with pytest.raises(ValueError, match="status.json is not JSON"):
        read_status(tmp_path)
    with pytest.raises(ValueError, match="no 'status' key"):
        RunStatus.from_json({"step": 3})
