"""DDP under torchrun on CPU (gloo): two ranks train, shard each epoch, and rank 0 writes the run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
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
