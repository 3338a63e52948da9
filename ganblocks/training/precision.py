"""How one stage's step runs: autocast dtype, memory format, Adam implementation, CUDA graph (a `StepPlan`).

    plan = plan_stage(cfg, stage_cfg, device, world_size=1)   # the rule below, applied to one stage
    opt = make_adam(params, cfg, plan)                         # for-loop | foreach | fused (+ capturable)
    with autocast(plan, device): ...

Settings (`train.*`, validated by experiments.config): `amp` = auto | bf16 | fp32, `channels_last` =
auto | true | false, `cuda_graph` = auto | true | false. An explicit value wins; `auto` takes the recorded
rule, chosen from measurements on one H200 (shared/FACTS.md, issue 17; official StackGAN architecture,
paper width, batch 64):

- A stage drawing <= 64 px (Stage-I) is launch-bound: eager, float32 (TF32 tensor cores) contiguous is
  fastest (10.5 ms; +channels_last 11.5, bf16 13.9, bf16+channels_last 15.2); captured in one CUDA graph,
  bf16 wins (7.1 ms against 8.6 fp32) because the graph removes the launches the casts added.
  So: graphed -> bf16 contiguous, eager -> fp32 contiguous.
- A larger stage (Stage-II) is compute-bound: bf16 + channels_last (38.6 ms; fp32 81.6, fp32+CL 59.7,
  bf16 63.3). A graph barely moves it (83 -> 82 ms) but costs nothing per step, so `auto` graphs it too.

`cuda_graph=auto` captures the step when it can: CUDA, one process (no torchrun), no torch.compile. Forcing
`cuda_graph=true` where it cannot raises `ValueError` naming the reason before any training.
On CPU every plan is float32, contiguous, for-loop Adam, eager: bit-for-bit the trainer's earlier CPU path
(exact resume and the CPU results are unchanged).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Iterable

import torch
from omegaconf import DictConfig

LAUNCH_BOUND_MAX_SIZE = 64  # px: stages drawing at most this are launch-bound at every width we measured
ADAM_IMPLS = ("for-loop", "foreach", "fused")


@dataclass(frozen=True)
class StepPlan:
    """How one stage's `train_step` runs; recorded per stage in status.json under "precision"."""

    amp: str  # "bf16" (autocast) | "fp32" (float32; TF32 tensor cores on CUDA)
    channels_last: bool  # models and images in channels_last memory format
    cuda_graph: bool  # the whole step captured once and replayed (ganblocks.training.graphs)
    adam: str  # "for-loop" | "foreach" | "fused"
    capturable: bool  # Adam keeps its step count on the device (needed inside a CUDA graph)
    rule: str  # why these were chosen, in one sentence

    def to_json(self) -> dict:
        return asdict(self)


def plan_stage(cfg: DictConfig, stage_cfg: DictConfig, device: torch.device, world_size: int = 1) -> StepPlan:
    """The plan of one stage from `cfg.train` and the recorded rule (module docstring).

    Args:
        cfg: the run config (`train.amp`, `train.channels_last`, `train.cuda_graph`, `train.compile`).
        stage_cfg: the stage's pipeline entry (its `imsize` says launch-bound or compute-bound).
        device: where the stage trains.
        world_size: processes under torchrun (a graph is captured only in a single process).

    Raises:
        ValueError: `train.cuda_graph=true` where a graph cannot run (CPU, torchrun, compile).
    """
    tr = cfg.train
    graph_setting = _setting(tr.get("cuda_graph", "auto"))
    blocker = graph_blocker(cfg, device, world_size)
    if graph_setting is True and blocker is not None:
        raise ValueError(f"train.cuda_graph=true but {blocker}; use train.cuda_graph=auto (captures where it "
                         f"can, eager elsewhere) or train.cuda_graph=false")
    if device.type != "cuda":
        return StepPlan("fp32", False, False, "for-loop", False, "CPU: float32 eager, for-loop Adam (bit-exact)")
    graphed = blocker is None and graph_setting in (True, "auto")
    launch_bound = int(stage_cfg.imsize) <= LAUNCH_BOUND_MAX_SIZE
    if launch_bound:
        rule_amp, rule_cl = ("bf16" if graphed else "fp32"), False
        why = (f"{stage_cfg.imsize} px stage is launch-bound: "
               + ("graphed bf16 contiguous (H200: 7.1 ms vs 8.6 fp32)" if graphed
                  else "eager fp32/TF32 contiguous (H200: 10.5 ms vs 13.9 bf16, 11.5 fp32+channels_last)"))
    else:
        rule_amp, rule_cl = "bf16", True
        why = f"{stage_cfg.imsize} px stage is compute-bound: bf16 + channels_last (H200: 38.6 ms vs 81.6 fp32)"
    amp = rule_amp if _setting(tr.amp) == "auto" else str(tr.amp)
    channels_last = rule_cl if _setting(tr.channels_last) == "auto" else bool(tr.channels_last)
    if amp != rule_amp or channels_last != rule_cl:
        why += f"; overridden by train.amp={tr.amp}, train.channels_last={tr.channels_last}"
    return StepPlan(amp, channels_last, graphed, "fused", graphed, why)


def graph_blocker(cfg: DictConfig, device: torch.device, world_size: int = 1) -> str | None:
    """Why the step cannot be captured in a CUDA graph here, or None when it can."""
    if device.type != "cuda":
        return f"the device is {device.type!r} (CUDA graphs need CUDA)"
    if world_size > 1:
        return f"the run has {world_size} processes (torchrun); graphs are captured in a single process only"
    if cfg.train.compile:
        return "train.compile=true (torch.compile and a hand-captured graph do not mix)"
    return None


def make_adam(params: Iterable[torch.nn.Parameter], cfg: DictConfig, plan: StepPlan,
              lr: float | None = None) -> torch.optim.Adam:
    """Adam with `lr` (None: `cfg.train.lr`) and `cfg.train.betas` in the plan's implementation.

    for-loop: foreach=False, fused=False (the official code's); foreach: one kernel per op over all tensors;
    fused: one kernel for the whole update. All three give the same update up to float rounding.
    """
    if plan.adam not in ADAM_IMPLS:
        raise ValueError(f"adam implementation {plan.adam!r}; expected one of {ADAM_IMPLS}")
    betas = tuple(float(b) for b in cfg.train.betas)
    lr = float(cfg.train.lr) if lr is None else float(lr)
    return torch.optim.Adam(list(params), lr=lr, betas=betas, foreach=plan.adam == "foreach",
                            fused=plan.adam == "fused", capturable=plan.capturable)


def discriminator_lr(cfg: DictConfig) -> float:
    """D's Adam learning rate: `cfg.train.lr_d`, or `cfg.train.lr` when it is null or absent (G always has `lr`).

    A separate D rate is the two time-scale update rule (TTUR; Heusel et al., NeurIPS 2017).
    """
    lr_d = cfg.train.get("lr_d")
    return float(cfg.train.lr if lr_d is None else lr_d)


def autocast(plan: StepPlan | None, device: torch.device):
    """bf16 autocast on CUDA when the plan asks for it (its weight-cast cache off inside a graph), else nothing."""
    if device.type == "cuda" and plan is not None and plan.amp == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=not plan.cuda_graph)
    return nullcontext()


def _setting(value) -> bool | str:
    """A tri-state config value: True, False or "auto" (strings "true"/"false" accepted)."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value
