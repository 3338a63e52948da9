"""DDP under torchrun on CPU (gloo): two ranks train, shard each epoch, rank 0 writes the run, and it resumes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="needs torch.distributed with gloo")
def test_two_ranks_train_under_torchrun(tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "experiments.train", "profile=smoke", "pipeline=stage1", "device=cpu", "train.batch_size=8",
           "train.max_steps=4", "train.log_every=4", "train.checkpoint_every=2", "train.progress=false",
           f"run_dir={run}"]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "finished" and status["world_size"] == 2 and status["step"] == 4
    # An epoch is one pass over the data by both ranks together: each takes a disjoint half.
    from ganblocks.data import build_dataset

    n_train = len(build_dataset("synthbirds", "train", 64, text_encoder="bow", size="tiny"))
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 4 and log[-1]["epoch"] == pytest.approx(4 / ((n_train // 2) // 8))
    assert (run / "checkpoints" / "stage1" / "final.pt").is_file()
    assert "FutureWarning" not in done.stderr



@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="needs torch.distributed with gloo")
def test_two_ranks_resume_from_rank_zeros_checkpoint(tmp_path):
    """Only rank 0 checkpoints; every rank must resume from it (the loader state holds no rank) with its own
    RNG state, and land on the weights of a straight two-rank run (gloo's sum of two is order-free, so
    bitwise). With rank 0's RNG state on both ranks, both drew the same noise after the resume."""
    script = tmp_path / "pause.py"
    script.write_text("import sys\n"
                      "from experiments.config import compose\n"
                      "from ganblocks.training import train\n"
                      "stop = None if sys.argv[2] == 'none' else int(sys.argv[2])\n"
                      "print(train(compose(sys.argv[3:]), sys.argv[1], stop_after=stop).get('status'))\n")
    run = tmp_path / "ddp"
    overrides = ["profile=smoke", "pipeline=stage1", "device=cpu", "train.batch_size=8", "train.max_steps=4",
                 "train.log_every=1", "train.checkpoint_every=2", "train.progress=false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    for stop in ("2", "none"):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
               str(run), stop, *overrides]
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
        status = json.loads((run / "status.json").read_text())
        assert status["status"] == ("running" if stop == "2" else "finished")
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4] and status["world_size"] == 2

    straight = tmp_path / "straight"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           str(straight), "none", *overrides]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    a = torch.load(straight / "checkpoints" / "stage1" / "final.pt", weights_only=True)
    b = torch.load(run / "checkpoints" / "stage1" / "final.pt", weights_only=True)
    for part in ("generator", "discriminator"):
        for name, value in a[part].items():
            assert torch.equal(value, b[part][name]), f"{part}.{name} differs after the DDP resume"
    assert len(b["rng_per_rank"]) == 2
