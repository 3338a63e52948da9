"""Stand-ins for compose / train / evaluate, loaded by the runner through its documented seams.

They behave like the real pieces where the runner relies on it: compose rejects unknown keys and values,
train checkpoints every step and resumes from its checkpoint, writes status.json and log.jsonl, and can
fail, diverge or be interrupted; evaluate returns deterministic metrics that depend on the config.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from ganblocks.io import atomic_write_json, append_jsonl, stable_hash

STEPS = 6
INTERRUPT = {"variant": None, "at_step": None}  # set by a test: raise KeyboardInterrupt mid-run
CALLS: list[str] = []  # what train was called on, in order

BASE = {
    "profile_name": "smoke",
    "seed": 0,
    "model": {"conditioning": "gaussian", "upsample": "nearest", "d_head": "matching_aware", "stage2_d_head": "joint",
              "num_residual": None, "text_twice": True},
    "data": {"name": "synthbirds", "text_encoder": "bow"},
    "pipeline": {"name": "two_stage"},
    "metrics": {"image_size": None},
}
CONDITIONING = ("none", "gaussian", "mixture", "boom", "nan")  # boom: train raises; nan: diverges


def compose(overrides: list[str]) -> DictConfig:
    cfg = OmegaConf.create({**json.loads(json.dumps(BASE)), "run_dir": f"outputs/{time.time_ns()}"})
    OmegaConf.set_struct(cfg, True)
    for o in overrides:
        key, value = o.split("=", 1)
        if key == "profile":
            if value not in ("smoke", "small", "paper"):
                raise ValueError(f"unknown profile {value!r}; accepted: smoke, small, paper")
            cfg.profile_name = value
            continue
        if key == "pipeline":
            cfg.pipeline.name = value
            continue
        if OmegaConf.select(cfg, key, default="__missing__") == "__missing__":
            raise ValueError(f"unknown key {key!r}")
        OmegaConf.update(cfg, key, yaml.safe_load(value))
    if cfg.model.conditioning not in CONDITIONING:
        raise ValueError(f"unknown conditioning {cfg.model.conditioning!r}; registered: {', '.join(CONDITIONING)}")
    return cfg


def train(cfg: DictConfig, run_dir: Path) -> dict:
    run_dir = Path(run_dir)
    CALLS.append(str(run_dir))
    previous = json.loads((run_dir / "status.json").read_text()) if (run_dir / "status.json").exists() else {}
    if previous.get("status") in ("finished", "diverged"):  # as `ganblocks.training.train`: returned untouched,
        return previous  # config.yaml included (it keeps the metrics settings the run was trained with)
    OmegaConf.save(cfg, run_dir / "config.yaml")
    ckpt = run_dir / "checkpoint.json"
    step = json.loads(ckpt.read_text())["step"] if ckpt.exists() else 0
    if cfg.model.conditioning == "boom":
        raise RuntimeError("boom at step 0")
    for step in range(step, STEPS):
        if INTERRUPT["variant"] == cfg.model.conditioning and INTERRUPT["at_step"] == step:
            raise KeyboardInterrupt
        time.sleep(float(os.environ.get("FAKE_STEP_SECONDS", "0")))  # lets a test kill -9 mid-run
        append_jsonl(run_dir / "log.jsonl", {"step": step, "loss_d": 1.0 / (step + 1), "loss_g": 0.5 + 0.1 * step})
        atomic_write_json(ckpt, {"step": step + 1})
        if cfg.model.conditioning == "nan" and step == 2:
            status = {"status": "diverged", "reason": "loss_d is nan at step 2", "step": step}
            atomic_write_json(run_dir / "status.json", status)
            return status
    status = {"status": "finished", "reason": None, "step": STEPS, "stage": "stage1",
              "params": {"stage1": {"G": 1234567, "G_total": 1234567, "D": 7654321}},
              "images_per_sec": {"stage1": 100.0}}  # the RunStatus fields the harness reads
    atomic_write_json(run_dir / "status.json", status)
    return status


JUDGE = {"name": "fake-judge", "scale": 1.0, "fail": None}  # a test swaps the judge: its name, a factor on
# every value, and a conditioning whose evaluation raises (ablations.reevaluate's tests)


def judge(run_dir: Path) -> str:
    """The name `evaluate` scores with now (ablations.reevaluate's judge_fn seam)."""
    return JUDGE["name"]


def evaluate(run_dir: Path, cfg: DictConfig | None = None) -> dict[str, dict]:
    cfg = cfg or OmegaConf.load(Path(run_dir) / "config.yaml")
    if JUDGE["fail"] == cfg.model.conditioning:
        raise RuntimeError(f"evaluation of {cfg.model.conditioning} failed")
    h = int(stable_hash([cfg.model.conditioning, cfg.seed], 8), 16) / 16**8 * JUDGE["scale"]
    h *= (cfg.get("metrics") or {}).get("image_size") or 1  # scored at another size: other values
    out = {}
    for name, base in (("is", 2.0), ("fid", 80.0), ("r_precision", 0.3), ("attr_coarse", 0.5), ("attr_fine", 0.2), ("diversity", 0.4), ("kid", 0.05)):
        out[name] = {"value": base * (1 + h), "std": 0.01, "n_samples": 64, "splits": 2, "evaluator": JUDGE["name"],
                     "real": base * 3}
    for name, chance in (("r_precision", 0.01), ("attr_coarse", 0.25), ("attr_fine", 0.5)):
        out[name]["chance"] = chance
    atomic_write_json(Path(run_dir) / "metrics.json", out)
    return out


def rank(run_dirs: dict[str, Path]) -> dict[str, dict]:
    scores = {v: evaluate(d)["is"]["value"] for v, d in run_dirs.items()}
    ordered = sorted(scores, key=lambda v: -scores[v])
    return {v: {"value": float(ordered.index(v) + 1)} for v in scores}
