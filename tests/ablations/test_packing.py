"""Packing a grid's runs onto one machine (`jobs=auto|K`): how many, the memory estimate, the CLI, and a real
smoke grid whose packed rows equal the rows of its runs one by one."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from ablations import run as cli
from ablations.grids import GridError
from ablations.packing import GiB, auto_jobs, estimate_run_bytes, job_environment
from ablations.runner import RESULTS, run_grid
from experiments.config import compose
from ganblocks.io import read_jsonl
from tests.ablations.test_end_to_end import TINY


def test_cpu_packs_one_run_per_core_and_never_more_than_the_runs():
    assert auto_jobs(pending=9, cores=2)[0] == 2
    assert auto_jobs(pending=1, cores=2)[0] == 1
    assert "2 cores -> 2 jobs" in auto_jobs(pending=3, cores=2)[1]
    assert job_environment(2, cores=2) == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    assert job_environment(2, cores=16)["OMP_NUM_THREADS"] == "8"


def test_cuda_packs_what_fits_in_free_memory_capped_by_cores_and_runs():
    assert auto_jobs(9, cores=16, free_bytes=[100 * GiB], run_bytes=2 * GiB)[0] == 9  # 40 fit, 9 to do
    assert auto_jobs(9, cores=16, free_bytes=[10 * GiB], run_bytes=3 * GiB)[0] == 2  # 8 GiB usable / 3
    assert auto_jobs(9, cores=4, free_bytes=[100 * GiB], run_bytes=1 * GiB)[0] == 4
    assert auto_jobs(9, cores=16, free_bytes=[10 * GiB, 10 * GiB], run_bytes=3 * GiB)[0] == 4  # 2 per GPU
    assert auto_jobs(9, cores=16, free_bytes=[1 * GiB], run_bytes=3 * GiB)[0] == 1  # never below one
    with pytest.raises(ValueError, match="run_bytes=0"):
        auto_jobs(9, cores=16, free_bytes=[GiB], run_bytes=0)


def test_memory_estimate_grows_linearly_with_the_batch_and_with_the_profile():
    small32, small64 = (estimate_run_bytes(compose(["profile=small", "device=cpu", f"train.batch_size={b}"]))
                        for b in (32, 64))
    paper = estimate_run_bytes(compose(["profile=paper", "device=cpu"]))
    assert GiB < small32 < small64 < paper
    assert (small64 - small32) % (4 * 3 * 32) == 0  # 4 bytes x 3 passes x 32 more images x elements/image
    assert paper > 10 * GiB  # paper width at 256 px with batch 64 needs a big GPU's share


def test_jobs_implies_the_joblib_launcher_and_bad_values_are_refused():
    runner, _, _ = cli.parse_args(["grid=ca_variants", "jobs=auto"])
    assert runner["launcher"] == "joblib"
    for bad in ("jobs=0", "jobs=many"):
        with pytest.raises(GridError, match="expected auto or a positive integer"):
            cli.parse_args(["grid=ca_variants", bad])
    with pytest.raises(GridError, match="jobs= applies to launcher=joblib only"):
        cli.parse_args(["grid=ca_variants", "jobs=2", "launcher=submitit_local"])


def _weights_hash(run_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(run_dir.glob("checkpoints/*/final.pt")):
        state = torch.load(path, map_location="cpu", weights_only=False)
        for part in ("generator", "discriminator"):
            for key, value in sorted(state[part].items()):
                digest.update(key.encode() + value.numpy().tobytes())
    return digest.hexdigest()


VOLATILE = ("wall_s", "attempt", "time", "images_per_s", "git_sha")


def _rows(out: Path) -> dict:
    rows = {}
    for r in read_jsonl(out / RESULTS):
        rows[(r["variant"], r["metric"])] = {k: v for k, v in r.items() if k not in VOLATILE}
    return rows


@pytest.mark.slow
def test_two_runs_packed_two_at_a_time_give_the_rows_and_weights_of_one_by_one(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    alone = run_grid("ca_variants", "smoke", 1, tmp_path / "alone", "none,gaussian", TINY, plots=False,
                     log=lambda s: None)
    packed = tmp_path / "packed"
    lines = []
    runner = {"grid": "ca_variants", "profile": "smoke", "seeds": "1", "out_dir": str(packed),
              "only": "none,gaussian", "launcher": "joblib", "jobs": "2", "gpus": "0"}
    cli.launch(runner, list(TINY), [], log=lines.append)
    assert any("n_jobs=2" in line for line in lines)
    assert _rows(alone) == _rows(packed) and len(_rows(alone)) > 2
    for variant in ("none", "gaussian"):
        run = Path("runs") / variant / "seed0"
        assert _weights_hash(alone / run) == _weights_hash(packed / run)
