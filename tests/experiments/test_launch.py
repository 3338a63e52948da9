"""experiments.train before Hydra starts: a refused config leaves no folder; torchrun ranks share one run folder."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch.distributed

from experiments.launch import prepare_argv, remove_if_empty

REPO = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **extra}


def test_refused_config_leaves_no_folder(tmp_path):
    """No run_dir given: Hydra would have made outputs/<date>/<time>/ with .hydra/ and an empty log."""
    done = subprocess.run([sys.executable, "-m", "experiments.train", "profile=smoke", "model.upsample=bicubik"],
                          cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "unknown upsample 'bicubik' (from model.upsample)" in done.stderr and "did you mean 'bicubic'" in done.stderr
    assert list(tmp_path.iterdir()) == [], [str(p) for p in tmp_path.rglob("*")]


def test_a_folder_refused_inside_hydra_is_removed_only_when_hydra_alone_wrote_it(tmp_path):
    run = tmp_path / "outputs" / "2026-12-01" / "02-00-00"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (run / "train.log").write_text("")
    other = tmp_path / "outputs" / "2026-12-01" / "01-00-00"
    other.mkdir()
    assert remove_if_empty(run, stop_at=tmp_path)
    assert not run.exists() and other.is_dir()  # the date folder stays: it holds another run
    assert remove_if_empty(other, stop_at=tmp_path)
    assert list(tmp_path.iterdir()) == []  # outputs/<date>/ and outputs/ went with their last run

    kept = tmp_path / "kept"
    (kept / ".hydra").mkdir(parents=True)
    (kept / "status.json").write_text("{}")
    (kept / "train.log").write_text("")
    assert not remove_if_empty(kept, stop_at=tmp_path) and (kept / "status.json").is_file()
    (kept / "status.json").unlink()
    (kept / "train.log").write_text("a line\n")  # a log with content is a record: kept
    assert not remove_if_empty(kept, stop_at=tmp_path)


def test_prepare_argv_validates_and_leaves_flags_and_single_process_runs_alone(monkeypatch):
    from experiments.config import ConfigError

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(ConfigError, match="bicubik"):
        prepare_argv(["profile=smoke", "model.upsample=bicubik"])
    assert prepare_argv(["profile=smoke", "hydra.job.name=x"]) == ["profile=smoke", "hydra.job.name=x"]
    assert prepare_argv(["-m", "seed=0,1"]) == ["-m", "seed=0,1"]  # Hydra's own flags: Hydra decides


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="needs torch.distributed with gloo")
def test_ranks_started_seconds_apart_share_rank_zeros_run_folder(tmp_path):
    """torchrun without run_dir=: each rank used to resolve outputs/<date>/<time> on its own clock."""
    port = _free_port()
    cmd = [sys.executable, "-m", "experiments.train", "profile=smoke", "pipeline=stage1", "device=cpu",
           "train.batch_size=8", "train.max_steps=2", "train.log_every=2", "train.checkpoint_every=2",
           "train.sample_every=2", "train.progress=false"]
    procs = []
    for rank in (0, 1):
        env = _env(tmp_path, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2",
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        procs.append(subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
        if rank == 0:
            time.sleep(2.2)  # rank 1 starts two clock seconds later: its own timestamp would differ
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    runs = sorted(p.parent for p in tmp_path.glob("outputs/*/*/.hydra"))
    assert len(runs) == 1, [str(r) for r in runs]
    status = json.loads((runs[0] / "status.json").read_text())
    assert status["status"] == "finished" and status["world_size"] == 2 and status["step"] == 2
    assert all(str(runs[0]) in out for out, _ in outs)  # both ranks report the same folder


def test_only_rank_zero_reports_the_status():
    """Under torchrun rank 1 used to print a stale `running:` (or crash on an empty status) beside rank 0's."""
    from experiments.train import outcome

    run = Path("outputs/2026-01-01/12-00-00")
    assert outcome({"status": "finished", "reason": None}, run) == (
        f"finished: {run} (status.json, log.jsonl, samples/, checkpoints/)", 0)
    assert outcome({"status": "diverged", "reason": "NaN in loss_d"}, run)[1] == 3
    for stale in ({"status": "running"}, {}):  # read before rank 0 wrote `finished`; a diverged rank's {}
        line, code = outcome(stale, run, rank=1)
        assert code == 0 and line == f"rank 1: done; rank 0 reports the status of {run}"
