"""From a composed config to a trained run folder: fills `loop.training_loop`'s arguments and builds its stages.

    status = train(cfg, run_dir)                            # trains, or resumes, and returns the status
    stage = build_stage(cfg, cfg.pipeline.stages[0], 0, run_dir, device)   # one stage, resumed, untrained
    train_step(stage, batch)                                # one D step then one G step (step.py)

This is the only training module that reads a config (`experiments.config.compose`'s, or any object with
the same keys): the loop (`loop.py`) and the step (`step.py`) take explicit arguments. A pipeline stage
becomes a `step.Stage`: the generator, one `step.Pair` per discriminator (one per scale for a tree), the
text transform (`loss.text_transform`), the generator regularisers (`loss.regularisers`), optimizers,
schedules, EMA and the data loader, all built from registry names (`assemble.py`).
"""

from __future__ import annotations

import copy
import inspect
import os
import warnings
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from ganblocks.io import atomic_write_text
from ganblocks.registry import build
from ganblocks.training import assemble, precision
from ganblocks.training.checkpoint import finals_present, load_generator, load_latest, restore_stage
from ganblocks.training.distributed import Distributed, wrap_ddp
from ganblocks.training.loop import training_loop
from ganblocks.training.runconfig import check_same_config
from ganblocks.training.state import read_status, seed_everything, write_status
from ganblocks.training.step import DiscriminatorScorer, Pair, Stage


class DeviceError(RuntimeError):
    """The config's `device` names hardware this machine does not have (raised before anything is written)."""


def train(cfg: DictConfig, run_dir: str | os.PathLike, *, stop_after: int | None = None) -> dict:
    """Train every stage of `cfg.pipeline` into `run_dir`, resuming from its checkpoints; return the status.

    Args:
        cfg: a config from `experiments.config.compose` (validated).
        run_dir: the run folder; created if missing. Calling again on the same folder resumes.
        stop_after: stop (with a checkpoint, status "running") after this many steps in this call; for
            pausing a run and for the resume test. None trains to the end.

    Returns:
        The content of run_dir/status.json (`loop.training_loop`). A finished or diverged run is returned
        as it is, untouched.

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
    dist = Distributed.from_env()
    previous = read_status(run_dir)
    if previous and previous["status"] == "finished" and finals_present(cfg, run_dir):
        return previous  # the caller decides what to do with a finished run
    if previous and previous["status"] == "diverged":
        return previous
    device = resolve_device(cfg.device, dist)  # before anything is written: a missing GPU leaves no trace
    if dist.main:
        atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    configure_backends(device, cfg.train.get("cpu_threads"))
    tr = cfg.train
    board = None
    if tr.tensorboard:
        from ganblocks.training.tensorboard_log import TensorBoardLogger

        board = lambda: TensorBoardLogger.open(cfg, run_dir)  # noqa: E731
    return training_loop(
        run_dir=run_dir,
        stages=[stage.name for stage in cfg.pipeline.stages],
        build_stage=lambda index: build_stage(cfg, cfg.pipeline.stages[index], index, run_dir, device, dist),
        dist=dist,
        log_every=int(tr.log_every),
        sample_every=int(tr.sample_every),
        checkpoint_every=int(tr.checkpoint_every),
        progress=bool(tr.progress),
        tensorboard=board,
        stop_after=stop_after,
        status_fields={"pipeline": cfg.pipeline.name, "profile": cfg.profile_name},
    )


def resolve_device(setting: str, dist: Distributed) -> torch.device:
    """The device of `device=auto|cpu|cuda|cuda:N` (under torchrun with CUDA: this rank's GPU).

    Raises:
        DeviceError: a CUDA device on a machine without CUDA.
    """
    if dist.world_size > 1 and torch.cuda.is_available():
        torch.cuda.set_device(dist.local_rank)
        return torch.device("cuda", dist.local_rank)
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(setting)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device={setting!r} but CUDA is not available; use device=cpu or device=auto")
    return device


def configure_backends(device: torch.device, cpu_threads: int | None = None) -> None:
    """Process-wide settings `train` applies before any stage: CPU threads; TF32 and cuDNN autotune on CUDA."""
    if device.type == "cpu" and cpu_threads is not None:
        torch.set_num_threads(int(cpu_threads))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def build_stage(cfg: DictConfig, stage_cfg: DictConfig, index: int, run_dir: str | os.PathLike,
                device: torch.device, dist: Distributed | None = None) -> Stage:
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
    dist = dist if dist is not None else Distributed()
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
    ema_decay = cfg.train.ema_decay
    ema = copy.deepcopy(G).eval().requires_grad_(False) if ema_decay is not None else None

    # Optimizers and schedules.
    opt_g = precision.make_adam([p for p in G.parameters() if p.requires_grad], cfg, plan)
    opt_d = precision.make_adam([p for p in D.parameters() if p.requires_grad], cfg, plan,
                                lr=precision.discriminator_lr(cfg))  # train.lr_d (TTUR), default train.lr
    steps_per_epoch = max(1, len(loader))
    total_steps = int(cfg.train.max_steps) if cfg.train.max_steps is not None else int(cfg.train.epochs) * steps_per_epoch
    total_steps = max(1, round(float(cfg.train.step_factor) * total_steps))
    halve = None if cfg.train.lr_halve_every is None else int(cfg.train.lr_halve_every) * steps_per_epoch
    factor = (lambda step: 0.5 ** (step // halve)) if halve else (lambda step: 1.0)
    sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, factor)
    sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, factor)

    # What the step trains: G against one (scale, D, loss) pair per discriminator.
    loss_kwargs = {"kl_weight": cfg.loss.kl_weight}
    discriminators = assemble.discriminators(D)
    names = [stage_cfg.name] if len(discriminators) == 1 else [f"{d.image_size}px" for d in discriminators]
    pairs = [Pair(name, scale, d, DiscriminatorScorer(d), build("loss", cfg.loss.name, where="loss.name", **loss_kwargs))
             for scale, (name, d) in enumerate(zip(names, discriminators))]
    G_step = G
    if cfg.train.compile:
        G_step = torch.compile(G_step)
        for pair in pairs:
            pair.D_step = torch.compile(pair.D_step)
    G_step = wrap_ddp(G_step, device, dist)
    for pair in pairs:
        pair.D_step = wrap_ddp(pair.D_step, device, dist)

    # Fixed captions and noise for the sample grids (a private generator: sampling never moves the global RNG).
    n = min(int(cfg.train.n_samples), len(dataset.embeddings))
    sample_text = torch.as_tensor(dataset.embeddings[:n, 0]).float().to(device)
    sample_noise = torch.randn(n, G.noise_dim, generator=torch.Generator().manual_seed(int(cfg.seed))).to(device)

    s = Stage(index=index, name=stage_cfg.name, G=G, D=D, G_step=G_step, pairs=pairs, ema=ema,
              ema_decay=ema_decay, opt_g=opt_g, opt_d=opt_d, sched_g=sched_g, sched_d=sched_d, loader=loader,
              device=device, text_transform=text_transform(cfg), conditioning=_conditioning_or_none(G),
              regularisers=regularisers(cfg, text_encoder=dataset.text_encoder, device=device),
              total_steps=total_steps, steps_per_epoch=steps_per_epoch,
              batch_size=int(cfg.train.batch_size), text_dim=text_dim, sample_text=sample_text,
              sample_noise=sample_noise, plan=plan)
    s.params = {"G": _count(G, trainable=True), "G_total": _count(G), "D": _count(D)}
    s.sample_captions = [str(caps[0]) for caps in getattr(dataset, "captions", [])[:n]]

    # Resume from the newest good checkpoint. Loaded on the CPU: RNG and loader states must stay CPU byte
    # tensors; load_state_dict moves weights and optimizer moments to where the models live.
    warn = (lambda message: warnings.warn(message, RuntimeWarning, stacklevel=3)) if dist.main else (lambda m: None)
    state, _ = load_latest([stage_dir / "last.pt", stage_dir / "previous.pt"], warn, map_location="cpu")
    if state is not None:
        restore_stage(s, state, dist.rank)
    return s


def text_transform(cfg: DictConfig):
    """The registered `loss.text_transform` (none | gan_int), given `loss.gan_int_beta` when it takes `beta`."""
    from ganblocks.registry import registry

    cls = registry("text_transform").get(cfg.loss.text_transform, where="loss.text_transform")
    accepted = inspect.signature(cls).parameters
    return cls(**({"beta": float(cfg.loss.gan_int_beta)} if "beta" in accepted else {}))


def regularisers(cfg: DictConfig, **context) -> list:
    """The registered generator regularisers named by `loss.regularisers`: the preset's keywords, then
    `loss.regulariser_options[name]` over them, and the run's objects each names in its `context_keys`
    (`text_encoder`: the dataset's, `device`: the stage's)."""
    from ganblocks.models.presets import regulariser_kwargs
    from ganblocks.registry import registry

    out = []
    for name in cfg.loss.regularisers:
        options = dict((cfg.loss.get("regulariser_options") or {}).get(name, {}))
        wanted = getattr(registry("regulariser").get(name, where="loss.regularisers"), "context_keys", ())
        out.append(build("regulariser", name, where="loss.regularisers",
                         **regulariser_kwargs(name, cfg.model.preset, **options),
                         **{k: v for k, v in context.items() if k in wanted}))
    return out


def _conditioning_or_none(G: torch.nn.Module):
    try:
        return assemble.conditioning_block(G)
    except ValueError:
        return None


def _count(module: torch.nn.Module, trainable: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)


__all__ = ["DeviceError", "train", "build_stage", "configure_backends", "resolve_device", "text_transform",
           "regularisers"]
