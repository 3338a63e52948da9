"""The training loop: every stage of `cfg.pipeline`, one D step then one G step per batch.

    status = train(cfg, run_dir)          # trains, or resumes from run_dir/checkpoints, and returns status

    stage = build_stage(cfg, cfg.pipeline.stages[0], 0, run_dir, device)  # one stage, resumed, untrained
    train_step(cfg, stage, batch, device)  # one D step then one G step (what the loop and benchmarks run)

Phases of a stage: build data and models (from registry names, `assemble.py`), restore the last
checkpoint if there is one, then train. The loop reads records, never variant names: D's conditioning
comes from `D.condition_input`, the loss asks the heads for logits and the conditioning block for its
regulariser. On CUDA the step runs under bf16 autocast with channels_last, TF32 and fused Adam, and never
syncs with the host: losses are summed on the device and read every `train.log_every` steps. On CPU it
runs float32 and is bit-for-bit reproducible, resume included.

Run folder: config.yaml, status.json, log.jsonl, samples/<stage>_<step>.png (captioned sheets),
checkpoints/<stage>/{last,previous,final,diverged}.pt (each with a .pt.json size + sha256 sidecar),
tensorboard/ (with `train.tensorboard=true`).
A run folder continues only under a config that computes the same (`runconfig.check_same_config`); a
resume restores the newest good checkpoint (last.pt, else previous.pt, with a warning) and cuts
log.jsonl back to its step, so the log holds each (stage, step) once, as an uninterrupted run's.
"""

from __future__ import annotations

import copy
import inspect
import io
import math
import os
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from torch import Tensor, nn

from ganblocks.io import append_jsonl, atomic_write_bytes, atomic_write_text
from ganblocks.registry import build
from ganblocks.sheets import compose_sheet
from ganblocks.training import assemble, graphs, precision
from ganblocks.training.tensorboard_log import TensorBoardLogger
from ganblocks.training.checkpoint import (
    cut_log,
    finals_present,
    load_generator,
    load_latest,
    remove_checkpoint,
    restore_stage,
    save_checkpoint,
    sidecar,
    stage_state,
)
from ganblocks.training.runconfig import check_same_config
from ganblocks.training.state import read_status, rng_state, seed_everything, write_status
from ganblocks.types import Batch, DiscriminatorOutput, GeneratorOutput


class _PairScorer(nn.Module):
    """D applied to real and fake images under several conditions, in one forward (one DDP call per step).

    forward(real (B, 3, S, S) | None, fake (B', 3, S, S) | None, real_conditions, fake_conditions)
        -> (outputs for real under each condition, outputs for fake under each condition).
    The image is encoded once and its features scored by the head once per condition, as the official code.
    """

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.discriminator = discriminator

    def forward(self, real, fake, real_conditions=(), fake_conditions=()):
        out_real, out_fake = [], []
        if real is not None:
            features = self.discriminator.encode(real)
            out_real = [self.discriminator.head(features, c) for c in real_conditions]
        if fake is not None:
            features = self.discriminator.encode(fake)
            out_fake = [self.discriminator.head(features, c) for c in fake_conditions]
        return out_real, out_fake


@dataclass
class _Distributed:
    """Where this process sits: rank 0 of 1 unless launched by torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "_Distributed":
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return cls(dist.get_rank(), world_size, int(os.environ.get("LOCAL_RANK", "0")))


@dataclass
class Stage:
    """Everything one stage trains and tracks (built by `build_stage`, advanced by `train_step`)."""

    index: int
    name: str
    G: nn.Module
    D: nn.Module
    G_step: nn.Module  # G, possibly compiled / DDP-wrapped
    D_step: nn.Module  # _PairScorer(D), possibly compiled / DDP-wrapped
    ema: nn.Module | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    sched_g: torch.optim.lr_scheduler.LRScheduler
    sched_d: torch.optim.lr_scheduler.LRScheduler
    loader: Any
    loss: Any
    total_steps: int
    steps_per_epoch: int
    text_dim: int
    sample_text: Tensor
    sample_noise: Tensor
    step: int = 0
    sums: dict[str, Tensor] = field(default_factory=dict)
    nonfinite: Tensor | None = None
    params: dict[str, int] = field(default_factory=dict)  # {"G": trainable, "G_total", "D"} parameter counts
    sample_captions: list[str] = field(default_factory=list)  # the texts of sample_text, for the sheets
    plan: precision.StepPlan | None = None  # autocast dtype, memory format, Adam kind, CUDA graph (precision.py)
    graph: graphs.GraphedStep | None = None  # the captured step, made on the first graphed step


def train(cfg: DictConfig, run_dir: str | os.PathLike, *, stop_after: int | None = None) -> dict:
    """Train every stage of `cfg.pipeline` into `run_dir`, resuming from its checkpoints; return the status.

    Args:
        cfg: a config from `experiments.config.compose` (validated).
        run_dir: the run folder; created if missing. Calling again on the same folder resumes.
        stop_after: stop (with a checkpoint, status "running") after this many steps in this call; for
            pausing a run and for the resume test. None trains to the end.

    Returns:
        The content of run_dir/status.json: {"status": "finished" | "diverged" | "running", "reason",
        "step", "stage", "images_per_sec": {stage: float}, "params": {stage: {"G", "D"}}, ...}.
        A "failed" status is written before an exception propagates.

    Raises:
        ConfigMismatchError: run_dir holds a run made with a config that computes something else (before
            anything is written; the message names the keys).
        CheckpointError: a finished run's final.pt, or every checkpoint of a stage to resume, is bad.
        UnsafeFileError: a checkpoint holds Python objects (a crafted file); it is never unpickled.
        DeviceError: `device=cuda[:N]` on a machine without CUDA (before anything is written).
        DatasetError: the data is missing or bad (the message names the file; status "failed").
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_same_config(run_dir, cfg)
    dist = _Distributed.from_env()
    previous = read_status(run_dir)
    if previous and previous["status"] == "finished" and finals_present(cfg, run_dir):
        return previous  # the caller decides what to do with a finished run
    if previous and previous["status"] == "diverged":
        return previous
    device = _device(cfg, dist)  # before anything is written: a missing GPU leaves no trace
    if dist.main:
        atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        write_status(run_dir, "running", None, pipeline=cfg.pipeline.name, profile=cfg.profile_name)
    configure_backends(cfg, device)
    steps_left = [stop_after if stop_after is not None else math.inf]
    try:
        for index, stage_cfg in enumerate(cfg.pipeline.stages):
            final = run_dir / "checkpoints" / stage_cfg.name / "final.pt"
            if final.is_file():
                continue
            outcome = _train_stage(cfg, stage_cfg, index, run_dir, device, dist, steps_left)
            if outcome is not None:  # diverged or paused
                return outcome
    except BaseException as error:
        if dist.main:
            write_status(run_dir, "failed", f"{type(error).__name__}: {error}")
        raise
    last = cfg.pipeline.stages[-1].name
    return write_status(run_dir, "finished", None, stage=last) if dist.main else read_status(run_dir) or {}


class DeviceError(RuntimeError):
    """The config's `device` names hardware this machine does not have (raised before anything is written)."""


def _device(cfg: DictConfig, dist: _Distributed) -> torch.device:
    if dist.world_size > 1 and torch.cuda.is_available():
        torch.cuda.set_device(dist.local_rank)
        return torch.device("cuda", dist.local_rank)
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device={cfg.device!r} but CUDA is not available; use device=cpu or device=auto")
    return device


def configure_backends(cfg: DictConfig, device: torch.device) -> None:
    """Process-wide settings `train` applies before any stage: CPU threads; TF32 and cuDNN autotune on CUDA."""
    if device.type == "cpu" and cfg.train.get("cpu_threads") is not None:
        torch.set_num_threads(int(cfg.train.cpu_threads))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def _autocast(cfg: DictConfig, device: torch.device, plan: precision.StepPlan | None = None):
    if plan is not None:
        return precision.autocast(plan, device)
    if device.type == "cuda" and cfg.train.amp == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


# ----------------------------------------------------------------------------------------------------------
# One stage
# ----------------------------------------------------------------------------------------------------------
def _train_stage(cfg, stage_cfg, index, run_dir, device, dist, steps_left) -> dict | None:
    s = build_stage(cfg, stage_cfg, index, run_dir, device, dist)
    if dist.main:
        cut_log(run_dir / "log.jsonl", [st.name for st in cfg.pipeline.stages], s.name, s.step)
        write_status(run_dir, "running", None, stage=s.name, step=s.step,
                     params={**(read_status(run_dir) or {}).get("params", {}), s.name: s.params},
                     precision={**(read_status(run_dir) or {}).get("precision", {}), s.name: s.plan.to_json()})
    board = TensorBoardLogger.open(cfg, run_dir) if dist.main else None  # None unless train.tensorboard
    try:
        return _loop(cfg, s, run_dir, run_dir / "checkpoints" / stage_cfg.name, device, dist, steps_left, board)
    finally:
        if board is not None:
            board.close()


def build_stage(cfg: DictConfig, stage_cfg: DictConfig, index: int, run_dir: str | os.PathLike,
                device: torch.device, dist: _Distributed | None = None) -> Stage:
    """Data, models, optimizers and schedules of one stage, restored from `run_dir` when it has a checkpoint.

    Seeds the global RNG as `train` does for this stage, so a step after `build_stage` is the step `train`
    would take. Does not write to `run_dir` (the loop writes status and checkpoints).

    Args:
        cfg: a config from `experiments.config.compose`; `cfg.train.*` picks bf16 autocast, channels_last,
            torch.compile (fused Adam is used on CUDA).
        stage_cfg: one entry of `cfg.pipeline.stages`. Its `fixed` stage's final generator is loaded from
            `run_dir`; pass a copy with `fixed: null` for a fresh Stage-I inside Stage-II.
        index: the stage's position in the pipeline (seeds).
        run_dir: the run folder (checkpoints/<stage>/last.pt is restored when present).
        device: where the stage trains.
        dist: the process's place under torchrun; None for a single process.

    Returns:
        The `Stage`, at step 0 or at the restored step.
    """
    dist = dist if dist is not None else _Distributed()
    run_dir = Path(run_dir)
    stage_dir = run_dir / "checkpoints" / stage_cfg.name
    seed_everything(int(cfg.seed) + 1000 * index + dist.rank)  # same start whether or not earlier stages ran in this process

    # Load dataset.
    dataset = assemble.build_training_dataset(cfg, int(stage_cfg.imsize))
    loader = assemble.build_loader(cfg, dataset, device, seed=int(cfg.seed) + 1000 * index, rank=dist.rank,
                                   world_size=dist.world_size)
    text_dim = int(dataset.embeddings.shape[-1])

    # Construct networks.
    fixed = None
    if stage_cfg.fixed is not None:
        fixed = load_generator(run_dir, device="cpu", stage=stage_cfg.fixed, ema=True)
    G, D = assemble.build_stage_models(cfg, stage_cfg, text_dim, fixed)
    G, D = G.to(device), D.to(device)
    plan = precision.plan_stage(cfg, stage_cfg, device, dist.world_size)
    if device.type == "cuda" and plan.channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    ema = None
    if cfg.train.ema_decay is not None:
        ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_g = precision.make_adam([p for p in G.parameters() if p.requires_grad], cfg, plan)
    opt_d = precision.make_adam([p for p in D.parameters() if p.requires_grad], cfg, plan)
    steps_per_epoch = max(1, len(loader))
    total_steps = int(cfg.train.max_steps) if cfg.train.max_steps is not None else int(cfg.train.epochs) * steps_per_epoch
    halve = None if cfg.train.lr_halve_every is None else int(cfg.train.lr_halve_every) * steps_per_epoch
    factor = (lambda step: 0.5 ** (step // halve)) if halve else (lambda step: 1.0)
    sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, factor)
    sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, factor)
    G_step, D_step = G, _PairScorer(D)
    if cfg.train.compile:
        G_step, D_step = torch.compile(G_step), torch.compile(D_step)
    if dist.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        # BatchNorm statistics stay per rank (no buffer broadcast before each of a step's several forwards);
        # newer torch spells it forward_sync_buffers, older broadcast_buffers.
        no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(DDP).parameters
                   else {"broadcast_buffers": False})
        G_step = DDP(G_step, device_ids=ids, **no_sync)
        D_step = DDP(D_step, device_ids=ids, **no_sync)

    # Fixed captions and noise for the sample grids (a private generator: sampling never moves the global RNG).
    n = min(int(cfg.train.n_samples), len(dataset.embeddings))
    sample_text = torch.as_tensor(dataset.embeddings[:n, 0]).float().to(device)
    sample_noise = torch.randn(n, G.noise_dim, generator=torch.Generator().manual_seed(int(cfg.seed))).to(device)

    s = Stage(index, stage_cfg.name, G, D, G_step, D_step, ema, opt_g, opt_d, sched_g, sched_d, loader,
              build("loss", cfg.loss.name, where="loss.name", kl_weight=cfg.loss.kl_weight),
              total_steps, steps_per_epoch, text_dim, sample_text, sample_noise)
    s.params = {"G": _count(G, trainable=True), "G_total": _count(G), "D": _count(D)}
    s.plan = plan
    s.sample_captions = [str(caps[0]) for caps in getattr(dataset, "captions", [])[:n]]

    # Resume from the newest good checkpoint. Loaded on the CPU: RNG and loader states must stay CPU byte
    # tensors; load_state_dict moves weights and optimizer moments to where the models live.
    warn = (lambda message: warnings.warn(message, RuntimeWarning, stacklevel=3)) if dist.main else (lambda m: None)
    state, _ = load_latest([stage_dir / "last.pt", stage_dir / "previous.pt"], warn, map_location="cpu")
    if state is not None:
        restore_stage(s, state, dist.rank)
    return s


def _loop(cfg, s: Stage, run_dir: Path, stage_dir: Path, device, dist, steps_left, board=None) -> dict | None:
    tr = cfg.train
    check_every = 1 if device.type == "cpu" else int(tr.log_every)  # host syncs only at log points on CUDA
    batch_images = int(tr.batch_size) * dist.world_size
    bar = None
    if dist.main and tr.progress:
        from ganblocks.progress import progress_bar

        bar = progress_bar(total=s.total_steps * batch_images, initial=s.step * batch_images, unit="img",
                           unit_scale=True, desc=s.name, dynamic_ncols=True, leave=False)
    batches = iter(s.loader)
    t_start, step_start = None, s.step
    t_log, step_log = time.perf_counter(), s.step
    while s.step < s.total_steps:
        if steps_left[0] <= 0:
            _checkpoint(s, stage_dir / "last.pt", dist)
            if bar is not None:
                bar.close()
            return write_status(run_dir, "running", f"paused after this call's steps (stop_after)", stage=s.name, step=s.step) if dist.main else {}
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(s.loader)
            batch = next(batches)
        train_step(cfg, s, batch, device)
        s.step += 1
        steps_left[0] -= 1
        if t_start is None:  # images/s excludes the first step (allocation, compilation)
            t_start, step_start = time.perf_counter(), s.step
        if bar is not None:
            bar.update(batch_images)

        if s.step % check_every == 0 or s.step == s.total_steps:
            if bool(s.nonfinite):
                if bar is not None:
                    bar.close()
                return _diverged(s, run_dir, stage_dir, dist)
        if s.step % int(tr.log_every) == 0 or s.step == s.total_steps:
            now = time.perf_counter()
            rate = (s.step - step_log) * batch_images / max(now - t_log, 1e-9)
            record = _log_record(s, rate)
            t_log, step_log = now, s.step
            if dist.main:
                append_jsonl(run_dir / "log.jsonl", record)
                if board is not None:
                    board.scalars(record)
                if bar is not None:
                    bar.set_postfix(d=f"{record['loss_d']:.3f}", g=f"{record['loss_g']:.3f}", refresh=False)
        if dist.main and (s.step % int(tr.sample_every) == 0 or s.step == s.total_steps):
            sheet = _write_samples(s, run_dir / "samples" / f"{s.name}_{s.step:07d}.png")
            if board is not None:
                board.sheet(s.name, s.step, sheet)
        if s.step % int(tr.checkpoint_every) == 0 and s.step < s.total_steps:
            _checkpoint(s, stage_dir / "last.pt", dist)
            if dist.main:
                write_status(run_dir, "running", None, stage=s.name, step=s.step)
    if bar is not None:
        bar.close()

    # Finish: the final checkpoint, the measured speed.
    elapsed = time.perf_counter() - t_start if t_start is not None else 0.0
    measured = (s.step - step_start) * batch_images / elapsed if elapsed > 0 and s.step > step_start else None
    _checkpoint(s, stage_dir / "final.pt", dist)
    if dist.main:
        remove_checkpoint(stage_dir / "last.pt")
        remove_checkpoint(stage_dir / "previous.pt")
        speeds = {**(read_status(run_dir) or {}).get("images_per_sec", {})}
        if measured is not None:
            speeds[s.name] = round(measured, 2)
        write_status(run_dir, "running", None, stage=s.name, step=s.step, images_per_sec=speeds,
                     device=str(device), world_size=dist.world_size)
    return None


# ----------------------------------------------------------------------------------------------------------
# One step
# ----------------------------------------------------------------------------------------------------------
def train_step(cfg: DictConfig, s: Stage, batch: Batch, device: torch.device) -> None:
    """One D step then one G step (official order); losses summed on the device, nothing read back.

    Args:
        cfg: the run config (`loss.*`, `train.amp`, `train.channels_last`, `train.ema_decay`, ...).
        s: the stage from `build_stage`; its weights, optimizers, schedules, EMA and `sums` advance
            (`s.step` does not: the loop counts steps).
        batch: images (B, 3, S, S) in [-1, 1] at the stage's size, embeddings and wrong embeddings (B, D).
        device: the stage's device.
    """
    if s.plan is not None and s.plan.cuda_graph:
        return graphs.graphed_step(cfg, s, batch, device)  # the same step, captured once and replayed
    amp = _autocast(cfg, device, s.plan)
    B = len(batch)
    images = batch.images
    if device.type == "cuda" and (s.plan.channels_last if s.plan is not None else cfg.train.channels_last):
        images = images.contiguous(memory_format=torch.channels_last)
    text, wrong_text = batch.embeddings, batch.wrong_embeddings
    noise = torch.randn(B, s.G.noise_dim, device=device)
    g_text = text
    if cfg.loss.gan_int:  # GAN-INT: G also draws from interpolated captions, in the same forward (and so
        # the same BatchNorm statistics), as Reed et al.'s released main_cls_int.lua batches them
        beta = float(cfg.loss.gan_int_beta)
        g_text = torch.cat([text, beta * text + (1 - beta) * text.roll(1, dims=0)])
        noise = torch.cat([noise, torch.randn(B, s.G.noise_dim, device=device)])
    s.G.train()
    s.D.train()
    with amp:
        out: GeneratorOutput = s.G_step(g_text, noise)
        condition, wrong_condition = _d_conditions(s, out, g_text, wrong_text)

    # Discriminator step.
    with amp:
        (real_o, wrong_o), (fake_o,) = s.D_step(images, out.image[:B].detach(), (condition[:B], wrong_condition), (condition[:B],))
    loss_d, d_stats = s.loss.discriminator(real_o, wrong_o, fake_o)
    if cfg.train.nan_at_step is not None and s.step == int(cfg.train.nan_at_step):
        loss_d = loss_d * float("nan")  # test hook: a divergence on demand
    s.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    s.opt_d.step()

    # Generator step.
    with amp:
        _, (fake_g,) = s.D_step(None, out.image, (), (condition,))
    loss_g, g_stats = s.loss.generator(fake_g, out.cond.regulariser)
    s.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    s.opt_g.step()
    s.sched_g.step()
    s.sched_d.step()
    if s.ema is not None:
        _update_ema(s.ema, s.G, float(cfg.train.ema_decay))

    stats = {**d_stats, **g_stats, **{f"cond_{k}": v.detach().float() for k, v in out.cond.stats.items()}}
    finite = torch.isfinite(loss_d.detach()) & torch.isfinite(loss_g.detach())
    s.nonfinite = ~finite if s.nonfinite is None else s.nonfinite | ~finite
    for key, value in stats.items():
        value = value.detach().float()
        s.sums[key] = s.sums[key] + value if key in s.sums else value.clone()
    s.sums["_count"] = s.sums.get("_count", torch.zeros((), device=device)) + 1


def _d_conditions(s: Stage, out: GeneratorOutput, text: Tensor, wrong_text: Tensor) -> tuple[Tensor, Tensor]:
    """D's condition for the right and wrong captions, as the discriminator asks (`D.condition_input`).

    "cond_mean": the generator's conditioning mean, detached (official); the wrong captions go through
    G's own conditioning block. "text": the raw embeddings (D compresses them itself, the paper).
    """
    if s.D.condition_input == "text":
        return text, wrong_text
    if s.D.condition_input == "cond_mean":
        with torch.no_grad():
            wrong_mean = assemble.conditioning_block(s.G)(wrong_text).mean
        return out.cond.mean.detach(), wrong_mean.detach()
    raise ValueError(
        f"discriminator {type(s.D).__name__}.condition_input={s.D.condition_input!r}; expected 'cond_mean' or 'text'"
    )


@torch.no_grad()
def _update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    ema_params = [p for p in ema.parameters()]
    params = [p.detach() for p in model.parameters()]
    torch._foreach_lerp_(ema_params, params, 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)


def _log_record(s: Stage, rate: float) -> dict:
    """Mean of every summed statistic since the last record (the only host sync of the loop)."""
    count = s.sums.pop("_count", None)
    values = {k: v for k, v in s.sums.items()}
    s.sums = {}
    if count is None:
        means = {}
    else:
        stacked = torch.stack([count] + list(values.values())).cpu()
        means = {k: float(x) / float(stacked[0]) for k, x in zip(values, stacked[1:])}
    return {"stage": s.name, "step": s.step, "epoch": s.step / s.steps_per_epoch, "lr": s.opt_g.param_groups[0]["lr"],
            "images_per_sec": round(rate, 2), **means}


def _diverged(s: Stage, run_dir: Path, stage_dir: Path, dist) -> dict:
    values = {k: float(v) / float(s.sums.get("_count", torch.ones(()))) for k, v in s.sums.items() if k in ("loss_d", "loss_g")}
    reason = f"non-finite loss in stage {s.name} by step {s.step} ({', '.join(f'{k}={v}' for k, v in values.items())})"
    _checkpoint(s, stage_dir / "diverged.pt", dist, every_rank=False)
    return write_status(run_dir, "diverged", reason, stage=s.name, step=s.step) if dist.main else {}


# ----------------------------------------------------------------------------------------------------------
# Checkpoints, samples
# ----------------------------------------------------------------------------------------------------------
def _checkpoint(s: Stage, path: Path, dist, *, every_rank: bool = True) -> None:
    """Rank 0 writes the stage's state (`checkpoint.stage_state`). Under DDP every rank's RNG state goes in
    too (`rng_per_rank`; a collective, so all ranks call this at the same step), so that after a resume each
    rank draws its own noise again rather than all of them rank 0's. `every_rank=False` (the diverged state,
    which ranks may reach at different steps) skips the collective and keeps rank 0's RNG state only.

    A new `last.pt` first moves the old one (with its sidecar) to `previous.pt`, the fallback when the new
    one turns out bad; every moment of that sequence leaves files `load_latest` can verify.
    """
    per_rank = _gather_rng_states(dist) if every_rank else None
    if not dist.main:
        return
    if path.name == "last.pt" and path.is_file():
        previous = path.with_name("previous.pt")
        sidecar(previous).unlink(missing_ok=True)
        os.replace(path, previous)
        if sidecar(path).is_file():
            os.replace(sidecar(path), sidecar(previous))
    save_checkpoint(path, stage_state(s, per_rank))


def _gather_rng_states(dist) -> list[dict] | None:
    """Every rank's `rng_state()`, indexed by rank (None for a single process)."""
    if dist.world_size <= 1:
        return None
    import torch.distributed

    states: list = [None] * dist.world_size
    torch.distributed.all_gather_object(states, rng_state())
    return states


@torch.no_grad()
def _write_samples(s: Stage, path: Path) -> Image.Image:
    """A sheet of the fixed captions and noise: one row per stage image (Stage-I row above for Stage-II),
    each caption above its column; written to `path` and returned."""
    model = s.ema if s.ema is not None else s.G
    was_training = model.training
    model.eval()
    with torch.random.fork_rng(devices=[s.sample_text.device] if s.sample_text.is_cuda else []):
        torch.manual_seed(0)
        out = model(s.sample_text, s.sample_noise)
    model.train(was_training)
    sheet = _sample_sheet(out, s.sample_captions)
    buffer = io.BytesIO()
    sheet.save(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())
    return sheet


def _sample_sheet(out: GeneratorOutput, captions: list[str]) -> Image.Image:
    size = out.image.shape[-1]
    as_uint8 = lambda x: ((nn.functional.interpolate(x.float(), size=size, mode="nearest").clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()  # noqa: E731
    rows = [(("Stage-I",), as_uint8(out.stage1_image))] if out.stage1_image is not None else []
    rows.append(((f"{size}px",), as_uint8(out.image)))
    return compose_sheet(rows, captions)


def _count(module: nn.Module, trainable: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)
