"""kill -9 at random moments of a real (tiny) training run, then the same command: the same result.

The command is `python -m experiments.train` on the built-in data at tiny widths. The uninterrupted run
gives the reference; the other run is killed with SIGKILL at 5 random moments of its training (each time
the same command is started again, and resumes), then run to the end. Its final weights, optimizer states
and log.jsonl (every field but the measured images/s) must equal the reference's.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ganblocks.io import read_jsonl
from ganblocks.training.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]
TINY = ["profile=smoke", "device=cpu", "train.progress=false", "model.gf_dim=4", "model.df_dim=4",
        "model.condition_dim=8", "model.noise_dim=8", "model.stage1_size=16", "model.stage2_size=32",
        "train.batch_size=4", "train.max_steps=40", "train.checkpoint_every=3", "train.log_every=2",
        "train.sample_every=10", "train.ema_decay=0.9", "model.conditioning=mixture"]


def command(run: Path) -> list[str]:
    return [sys.executable, "-m", "experiments.train", *TINY, f"run_dir={run}"]


def start(run: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(command(run), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def log_mtime(run: Path) -> int:
    path = run / "log.jsonl"
    return path.stat().st_mtime_ns if path.exists() else 0


def wait_for_training(proc: subprocess.Popen, run: Path, before: int, timeout: float = 120) -> None:
    """Until this process wrote to log.jsonl (its first record, or the cut back on resume: it trains now),
    or it ended. Start-up (imports, data, models) takes most of a tiny run's time; the kills are meant for
    its training, checkpointing and logging."""
    deadline = time.monotonic() + timeout
    while log_mtime(run) == before and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)


@pytest.mark.slow
def test_kill_9_at_five_random_moments_then_the_same_command_gives_the_uninterrupted_result(tiny_synthbirds, tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    proc = start(reference)
    wait_for_training(proc, reference, 0)
    t0 = time.monotonic()
    out, _ = proc.communicate(timeout=300)
    training_s = time.monotonic() - t0
    assert proc.returncode == 0, out.decode()

    seed = int(os.environ.get("GANBLOCKS_KILL_SEED", random.randrange(10**6)))
    rng = random.Random(seed)
    moments = [rng.uniform(0.0, training_s / 4) for _ in range(5)]  # leave training for all five
    hits, where = [], []  # alive when killed; the last log record then
    for delay in moments:
        before = log_mtime(killed)
        proc = start(killed)
        wait_for_training(proc, killed, before)
        time.sleep(delay)
        alive = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        records = read_jsonl(killed / "log.jsonl")
        hits.append(alive)
        where.append(f"{records[-1]['stage']}:{records[-1]['step']}" if records else "-")
    proc = start(killed)
    out, _ = proc.communicate(timeout=300)
    about = f"kill seed {seed} (GANBLOCKS_KILL_SEED), moments {[round(m, 2) for m in moments]} s, killed alive {hits}, last log record at each kill {where}"
    assert proc.returncode == 0, f"{about}\n{out.decode()}"
    assert sum(hits) >= 3, about  # most kills landed while it trained

    ignore = {"images_per_sec"}  # wall-clock measurements
    log = lambda run: [{k: v for k, v in r.items() if k not in ignore} for r in read_jsonl(run / "log.jsonl")]  # noqa: E731
    assert log(killed) == log(reference), about
    for stage in ("stage1", "stage2"):
        a = load_checkpoint(reference / "checkpoints" / stage / "final.pt")
        b = load_checkpoint(killed / "checkpoints" / stage / "final.pt")
        for part in ("generator", "discriminator", "ema"):
            for key, value in a[part].items():
                assert torch.equal(value, b[part][key]), f"{stage} {part}.{key}; {about}"
        for k, state in a["opt_g"]["state"].items():
            assert torch.equal(state["exp_avg"], b["opt_g"]["state"][k]["exp_avg"]), about
    assert not list((killed / "checkpoints").glob("*/last.pt")), about
