"""How many runs of a grid go at once: `python -m ablations.run grid=NAME jobs=auto` (or jobs=K).

    jobs, why = choose_jobs("auto", cfgs, pending=9)   # e.g. (9, "CUDA: 9 runs x 2.0 GiB fit in ...")

Runs are separate processes (the joblib launcher, `ablations.job`), so a packed run is the same program
as a run alone: same seeds, same config, same results (tests/ablations/test_packing.py checks the rows).

- CUDA: as many runs as fit in 80 % of the free memory of each visible GPU (`torch.cuda.mem_get_info`),
  by `estimate_run_bytes`, and at most one per CPU core (each process launches its own kernels and loads
  its own batches), and at most the runs still to do. Processes share a GPU by time-slicing; a small
  run leaves most of the GPU idle between its launches, which the others fill.
- CPU: one run per core, each with one intra-op thread (`OMP_NUM_THREADS=1` in the job's environment,
  the `smoke` profile's `train.cpu_threads=1`): 2 jobs on a 2-core machine.

`estimate_run_bytes` is an upper-bound guess, not a measurement: a CUDA context and cuDNN/cuBLAS
workspaces (1 GiB), weights + gradients + two Adam moments + EMA (20 bytes a parameter), and activations
(every leaf module's output for one image, counted by a forward on the meta device, x3 for the D step on
real and fake and the G step through D, x the batch, 4 bytes each).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

GiB = 2**30
CONTEXT_BYTES = 1 * GiB
BYTES_PER_PARAM = 20  # float32 weight, grad, exp_avg, exp_avg_sq, EMA
ACTIVATION_PASSES = 3  # D(real), D(fake) in the D step; D(G(z)) in the G step
MEMORY_FRACTION = 0.8  # of the free memory, left for runs
TEXT_DIM_BOUND = 1024  # the widest text embedding the loaders give (char-CNN-RNN); an upper bound


def cpu_cores() -> int:
    """Cores this process may use (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def estimate_run_bytes(cfg: Any) -> int:
    """Upper-bound GPU memory of one run of `cfg` (its largest stage), in bytes (module docstring)."""
    import torch

    from ganblocks.training import assemble

    batch = int(cfg.train.batch_size)
    worst = 0
    built: dict[str, Any] = {}
    with torch.device("meta"):
        for stage in cfg.pipeline.stages:
            fixed = built[stage.fixed] if stage.fixed is not None else None
            G, D = assemble.build_stage_models(cfg, stage, TEXT_DIM_BOUND, fixed)
            built[stage.name] = G
            params = sum(p.numel() for p in G.parameters()) + sum(p.numel() for p in D.parameters())
            per_image = _activations_per_image(G, D)
            worst = max(worst, BYTES_PER_PARAM * params + 4 * ACTIVATION_PASSES * batch * per_image)
    return CONTEXT_BYTES + worst


def _activations_per_image(G, D) -> int:
    """Elements of every leaf module's output in one G forward and one D encoding, per image (meta tensors)."""
    import torch

    from ganblocks.training import assemble

    count = [0]

    def hook(module, inputs, output):
        if not any(True for _ in module.children()) and torch.is_tensor(output):
            count[0] += output.numel()

    handles = [m.register_forward_hook(hook) for m in (*G.modules(), *D.modules())]
    try:
        out = G(torch.randn(2, TEXT_DIM_BOUND), torch.randn(2, G.noise_dim))  # 2: BatchNorm needs > 1 in training
        images = out.images if out.images is not None else (out.image,)  # a tree: one D per scale
        for d, image in zip(assemble.discriminators(D), images):
            d.encode(image)
    finally:
        for h in handles:
            h.remove()
    return count[0] // 2


def auto_jobs(pending: int, cores: int, free_bytes: Sequence[int] | None = None, run_bytes: int | None = None) -> tuple[int, str]:
    """Parallel runs for `pending` runs: by free GPU memory (one entry per GPU) and cores, or by cores on CPU.

    Returns (jobs >= 1, a sentence saying why).
    """
    pending, cores = max(1, int(pending)), max(1, int(cores))
    if not free_bytes:
        jobs = min(pending, cores)
        return jobs, f"CPU: {cores} cores -> {jobs} jobs of one thread each ({pending} runs to do)"
    if not run_bytes or run_bytes <= 0:
        raise ValueError(f"run_bytes={run_bytes!r}; expected a positive per-run memory estimate")
    fit = sum(int(MEMORY_FRACTION * free) // run_bytes for free in free_bytes)
    jobs = max(1, min(pending, cores, fit))
    return jobs, (f"CUDA: {fit} runs of ~{run_bytes / GiB:.1f} GiB fit in {MEMORY_FRACTION:.0%} of "
                  f"{sum(free_bytes) / GiB:.0f} GiB free on {len(free_bytes)} GPU(s); {cores} cores; "
                  f"{pending} runs to do -> {jobs} jobs")


def choose_jobs(value: str | int | None, cfgs: Sequence[Any], pending: int) -> tuple[int, str]:
    """`jobs=` of the runner: an integer >= 1 as given, or "auto" (`auto_jobs` on this machine).

    Raises:
        ValueError: `value` is neither a positive integer nor "auto".
    """
    if value is None or str(value) == "auto":
        import torch

        if torch.cuda.is_available() and cfgs:
            free = [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]
            return auto_jobs(pending, cpu_cores(), free, max(estimate_run_bytes(c) for c in cfgs))
        return auto_jobs(pending, cpu_cores())
    try:
        jobs = int(value)
    except (TypeError, ValueError):
        jobs = 0
    if jobs < 1:
        raise ValueError(f"jobs={value!r} (from jobs=); expected a positive integer or auto")
    return jobs, f"jobs={jobs} as given"


def job_environment(jobs: int, cores: int | None = None) -> dict[str, str]:
    """Environment for packed jobs: intra-op threads split over the cores (1 each when jobs >= cores)."""
    cores = cores or cpu_cores()
    threads = str(max(1, cores // max(1, jobs)))
    return {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
