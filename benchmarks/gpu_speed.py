"""The speed measurements of scripts/gpu-speed beside pytest-benchmark, and the summary against issue 17's targets.

    python -m benchmarks.gpu_speed profile OUT/profile.json [--cpu-dry-run]   # top kernels, FLOPs, MFU
    python -m benchmarks.gpu_speed loop OUT/loop.json [--cpu-dry-run]         # the training loop's images/s
    python -m benchmarks.gpu_speed grid OUT/grid.json [--cpu-dry-run] [--pair]  # a whole grid's wall time
    python -m benchmarks.gpu_speed summary OUT                                # OUT/speed.json: targets met?

`--cpu-dry-run` runs the same code at the CPU's small width and a few steps, so every part but CUDA is
known to work end to end; its numbers are not speed claims. On CUDA the widths are the paper's (gf_dim 128,
df_dim 64, batch 64, 64 and 256 px, `official` preset), as in benchmarks/test_train_speed.py.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"stage1_speedup": 2.5, "stage2_speedup": 4.0, "stage2_mfu": 0.40, "grid_wall_s": 90.0, "loop_fraction": 0.90}
GRID_CUT_CPU = ["only=none,gaussian", "train.max_steps=4", "metrics.n_samples=64", "metrics.figures=false",
                "metrics.rank_captions=8", "metrics.evaluator_renders_per_class=12", "metrics.evaluator_epochs=2",
                "metrics.min_class_accuracy=0", "metrics.min_attribute_accuracy=0"]


def _setting(cpu_dry_run: bool) -> tuple[str, str]:
    if cpu_dry_run:
        return "cpu", "small"
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: pass --cpu-dry-run to check the script's CPU-runnable parts")
    return "cuda", "paper"


def _stage(device: str, width: str, stage: str, path: str):
    from benchmarks.test_train_speed import PATHS, STAGES, bench_config, fresh_stage_cfg
    from ganblocks.training.build import build_stage, configure_backends

    cfg = bench_config(device, width, PATHS[path])
    dev = torch.device(device)
    configure_backends(dev, cfg.train.cpu_threads)
    st = build_stage(cfg, fresh_stage_cfg(cfg, stage), STAGES[stage], tempfile.mkdtemp(prefix="speed-"), dev)
    return cfg, st, dev


def _time_steps(cfg, st, dev, batches, steps: int) -> float:
    """Median seconds of one `train_step` over `steps` timed steps (device synchronized per step)."""
    from ganblocks.training.step import train_step

    times = []
    for batch in itertools.islice(itertools.cycle(batches), steps):
        t0 = time.perf_counter()
        train_step(st, batch)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def profile(out: Path, cpu_dry_run: bool, top: int = 25) -> dict:
    """Per stage: the fast step's time, model FLOPs, TFLOP/s and MFU; the eager fast step's top kernels."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    from benchmarks.test_train_speed import epochs
    from ganblocks.training.flops import mfu, peak_flops, train_step_flops
    from ganblocks.training.step import train_step

    device, width = _setting(cpu_dry_run)
    report = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "width": width,
              "torch": torch.__version__, "stages": {}}
    for stage in ("stage1", "stage2"):
        entry = {}
        for path in ("fast", "fast_eager"):
            cfg, st, dev = _stage(device, width, stage, path)
            batches = list(itertools.islice(epochs(st.loader), 4))
            flops = train_step_flops(st, batches[0])
            warm, timed = (10, 30) if device == "cuda" else (1, 3)
            _time_steps(cfg, st, dev, batches, warm)
            seconds = _time_steps(cfg, st, dev, batches, timed)
            precision = "bf16" if st.plan.amp == "bf16" else "tf32"
            peak = peak_flops(dev, precision)
            entry[path] = {"plan": st.plan.to_json(), "ms_per_step": round(seconds * 1e3, 3),
                           "images_per_s": round(len(batches[0]) / seconds, 1), "flops_per_step": flops,
                           "tflop_per_s": round(flops / seconds / 1e12, 3), "peak_precision": precision,
                           "mfu": None if peak is None else round(mfu(flops, seconds, peak), 4)}
            if path == "fast_eager":  # kernels one by one (a replayed graph shows as one launch)
                activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
                n = 5 if device == "cuda" else 2
                with torch_profile(activities=activities) as prof:
                    for batch in itertools.islice(itertools.cycle(batches), n):
                        train_step(st, batch)
                    if device == "cuda":
                        torch.cuda.synchronize()
                entry["top_kernels"], entry["busy_ms_per_step"] = _top(prof, device, n, top)
        report["stages"][stage] = entry
    _write(out, report)
    return report


def _top(prof, device: str, steps: int, top: int) -> tuple[list[dict], float]:
    """The `top` kernels (CUDA) or ops (CPU) by self time, per step, and the total busy ms per step."""
    attr = "self_device_time_total" if device == "cuda" else "self_cpu_time_total"
    averages = list(prof.key_averages())
    if device == "cuda" and averages and not hasattr(averages[0], attr):
        attr = "self_cuda_time_total"  # its name before torch 2.4
    events = [e for e in averages if getattr(e, attr, 0) > 0]
    if device == "cuda":  # device-side kernels and copies only, not the CPU ops that launched them
        events = [e for e in events if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA]
    total = sum(getattr(e, attr) for e in events) or 1.0
    events.sort(key=lambda e: -getattr(e, attr))
    rows = [{"name": e.key[:160], "calls_per_step": round(e.count / steps, 2),
             "ms_per_step": round(getattr(e, attr) / 1e3 / steps, 4),
             "share": round(getattr(e, attr) / total, 4)} for e in events[:top]]
    return rows, round(total / 1e3 / steps, 3)


def loop(out: Path, cpu_dry_run: bool) -> dict:
    """`ganblocks.training.train` of both stages (fast path): status.json's images/s and log.jsonl's windows."""
    from benchmarks.test_train_speed import PATHS, bench_config
    from ganblocks.training import train

    device, width = _setting(cpu_dry_run)
    steps, every = (300, 50) if device == "cuda" else (6, 2)
    cfg = bench_config(device, width, [*PATHS["fast"], f"train.max_steps={steps}", f"train.log_every={every}",
                                       f"train.checkpoint_every={steps}", f"train.sample_every={steps}",
                                       f"data.size={'small' if device == 'cuda' else 'tiny'}"])
    run_dir = Path(tempfile.mkdtemp(prefix="speed-loop-"))
    t0 = time.perf_counter()
    status = train(cfg, run_dir)
    wall = time.perf_counter() - t0
    windows: dict[str, list[float]] = {}
    for line in (run_dir / "log.jsonl").read_text().splitlines():
        record = json.loads(line)
        windows.setdefault(record["stage"], []).append(record["images_per_sec"])
    report = {"device": status.get("device"), "width": width, "steps_per_stage": steps, "wall_s": round(wall, 2),
              "status": status["status"], "images_per_sec": status.get("images_per_sec"),
              "precision": status.get("precision"), "log_windows": windows,
              "steady_images_per_sec": {k: statistics.median(v[1:] or v) for k, v in windows.items()}}
    _write(out, report)
    return report


def grid(out: Path, cpu_dry_run: bool, pair: bool) -> dict:
    """Wall time of `ablations.run grid=ca_variants profile=small seeds=3 jobs=auto` (the target), cache warm;
    with `pair`, also seeds=1 one by one against seeds=1 packed (the same 3 runs)."""
    if cpu_dry_run:
        base, seeds = ["grid=ca_variants", "profile=smoke", *GRID_CUT_CPU], 1
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    else:
        _setting(False)
        base, seeds, env = ["grid=ca_variants", "profile=small"], 3, None
    quiet = ["train.progress=false", "metrics.progress=false", "metrics.figures=false"]
    quiet = [q for q in quiet if not any(b.startswith(q.split("=")[0] + "=") for b in base)]
    report = {"args": base + quiet, "runs": {}}
    report["runs"]["warm_cache"] = _cli([*base, *quiet, "seeds=1", "only=none", "train.max_steps=2"], env)
    report["runs"]["target_packed"] = _cli([*base, *quiet, f"seeds={seeds}", "jobs=auto"], env)
    if pair:
        report["runs"]["seeds1_sequential"] = _cli([*base, *quiet, "seeds=1"], env)
        report["runs"]["seeds1_packed"] = _cli([*base, *quiet, "seeds=1", "jobs=auto"], env)
    _write(out, report)
    return report


def _cli(args: list[str], env) -> dict:
    out_dir = tempfile.mkdtemp(prefix="speed-grid-")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ablations.run", *args, f"out_dir={out_dir}"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    jobs = [ln for ln in proc.stdout.splitlines() if ln.startswith("jobs: ")]
    statuses = [json.loads(ln)["status"] for ln in Path(out_dir, "results.jsonl").read_text().splitlines()] \
        if Path(out_dir, "results.jsonl").is_file() else []
    return {"args": args, "wall_s": round(wall, 2), "rc": proc.returncode, "jobs": jobs[0][6:] if jobs else "1 (sequential)",
            "rows_ok": statuses.count("ok"), "rows": len(statuses), "stderr_tail": proc.stderr[-1500:] if proc.returncode else ""}


def summary(out_dir: Path) -> dict:
    """OUT/speed.json: each target of issue 17 with its measured value (None where a file is missing)."""
    def load(name):
        path = out_dir / name
        return json.loads(path.read_text()) if path.is_file() else None

    bench, prof, lp, gr = load("bench.json"), load("profile.json"), load("loop.json"), load("grid.json")
    medians = {}
    for b in (bench or {}).get("benchmarks", []):
        p = b.get("params") or {}
        if b["name"].startswith("test_train_step"):
            medians[(p.get("stage"), p.get("path"))] = (b["stats"]["median"], b.get("extra_info", {}))
    measured: dict[str, float | None] = {}
    for stage in ("stage1", "stage2"):
        plain, fast = medians.get((stage, "plain")), medians.get((stage, "fast"))
        measured[f"{stage}_speedup"] = round(plain[0] / fast[0], 3) if plain and fast else None
        measured[f"{stage}_fast_ms"] = round(fast[0] * 1e3, 3) if fast else None
        measured[f"{stage}_plain_ms"] = round(plain[0] * 1e3, 3) if plain else None
        if fast and lp and lp.get("steady_images_per_sec", {}).get(stage):
            bench_rate = fast[1].get("items_per_call", 64) / fast[0]
            measured[f"loop_fraction_{stage}"] = round(lp["steady_images_per_sec"][stage] / bench_rate, 3)
    measured["stage2_mfu"] = (medians.get(("stage2", "fast")) or (None, {}))[1].get("mfu")
    if measured["stage2_mfu"] is None and prof:
        measured["stage2_mfu"] = prof["stages"].get("stage2", {}).get("fast", {}).get("mfu")
    run = (gr or {}).get("runs", {}).get("target_packed")
    measured["grid_wall_s"] = run["wall_s"] if run and run["rc"] == 0 else None
    checks = {}
    for key, target in TARGETS.items():
        keys = [k for k in measured if k == key or k.startswith(key + "_stage")]
        for k in keys:
            value = measured[k]
            met = None if value is None else (value <= target if key == "grid_wall_s" else value >= target)
            checks[k] = {"value": value, "target": target, "met": met}
    dry_run = (prof or lp or {}).get("width") == "small"  # --cpu-dry-run: the checks prove the script, not speed
    report = {"dry_run": dry_run, "checks": checks, "measured": measured,
              "files": sorted(p.name for p in out_dir.glob("*.json"))}
    _write(out_dir / "speed.json", report)
    return report


def _write(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["profile", "loop", "grid", "summary"])
    parser.add_argument("out", type=Path, help="the JSON file to write (summary: the folder holding the others)")
    parser.add_argument("--cpu-dry-run", action="store_true", help="small widths on the CPU: checks, not numbers")
    parser.add_argument("--pair", action="store_true", help="grid: also seeds=1 one by one against packed")
    args = parser.parse_args(argv)
    if args.what == "profile":
        profile(args.out, args.cpu_dry_run)
    elif args.what == "loop":
        loop(args.out, args.cpu_dry_run)
    elif args.what == "grid":
        grid(args.out, args.cpu_dry_run, args.pair)
    else:
        report = summary(args.out)
        if report["dry_run"]:
            print("CPU dry run: small widths on a CPU; met / not met below say nothing about the GPU targets")
        for key, check in report["checks"].items():
            print(f"{key}: {check['value']} (target {check['target']}): {'met' if check['met'] else 'NOT met' if check['met'] is False else 'not measured'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
