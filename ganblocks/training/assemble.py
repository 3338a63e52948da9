"""From a config to the things a stage trains: dataset, batch loader, generator and discriminator.

Everything is built from registry names and preset keywords (`ganblocks.models.presets`); the config's
`model.*` values override the preset's where the model takes that keyword (null keeps the preset's).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from ganblocks.registry import registry

# cfg.model key -> generator keyword; the Stage-II-only ones are passed to models whose preset has them.
_GENERATOR_KEYS = {"gf_dim": "gf_dim", "noise_dim": "noise_dim", "condition_dim": "condition_dim",
                   "upsample": "upsample", "conditioning": "conditioning", "residual": "residual",
                   "num_residual": "num_residual", "text_twice": "text_twice"}
_DISCRIMINATOR_KEYS = {"df_dim": "df_dim", "condition_dim": "condition_dim"}


def build_training_dataset(cfg: DictConfig, imsize: int, split: str = "train"):
    """`ganblocks.data.build_dataset` for the run's data config at `imsize` (loader options it accepts)."""
    from ganblocks.data.dataset import build_dataset, text_encoder_spec

    options = {"size": cfg.data.size, "seed": 0}  # the dataset's own seed is fixed: runs share one build
    loader_fn = registry("dataset").get(cfg.data.name, where="data.name")
    accepted = inspect.signature(loader_fn).parameters
    options = {k: v for k, v in options.items() if k in accepted}
    return build_dataset(cfg.data.name, split, int(imsize),
                         text_encoder=text_encoder_spec(cfg.data.text_encoder, text_encoder_options(cfg)),
                         root=cfg.data.root, **options)


def text_encoder_options(cfg: DictConfig) -> dict:
    """`data.text_encoder_options` as a plain dict ({} when the key is absent, e.g. a run saved before it).

    Raises:
        TextEncoderOptionsError: a keyword, kind or value the encoder does not take (a crafted config.yaml)."""
    from ganblocks.data.text_options import check_options

    options = cfg.data.get("text_encoder_options")
    check_options(cfg.data.text_encoder, options)  # a crafted config.yaml: one line naming the key
    return dict(OmegaConf.to_container(options, resolve=True)) if options else {}


def build_loader(cfg: DictConfig, dataset: Any, device: torch.device, seed: int, rank: int = 0,
                 world_size: int = 1):
    """The epoch iterator of `Batch` records on `device` (crop + flip on the batch); under DDP, this rank's
    disjoint shard of each epoch."""
    from ganblocks.data import BatchLoader

    return BatchLoader(dataset, batch_size=int(cfg.train.batch_size), device=device, seed=seed,
                       wrong=cfg.data.wrong, drop_last=True, rank=rank, world_size=world_size)


def build_stage_models(cfg: DictConfig, stage: DictConfig, text_dim: int,
                       fixed: nn.Module | None = None) -> tuple[nn.Module, nn.Module]:
    """(G, D) of one pipeline stage, from its registry names, the preset and the `model.*` overrides.

    Args:
        cfg: the run config (`model.*`, `model.preset`).
        stage: one entry of `cfg.pipeline.stages` (generator, discriminator, d_head, imsize).
        text_dim: D of the caption embeddings.
        fixed: a trained generator to hold frozen inside this one (Stage-I inside Stage-II), or None.
    """
    from ganblocks.models.presets import discriminator_kwargs, generator_kwargs

    preset = cfg.model.preset
    g_name, d_name = stage.generator, stage.discriminator
    g_base = generator_kwargs(g_name, preset)
    g_over: dict[str, Any] = {"text_dim": text_dim, **_output_sizes(cfg, stage, g_base)}
    for key, keyword in _GENERATOR_KEYS.items():
        if keyword in g_base and cfg.model[key] is not None:
            g_over[keyword] = cfg.model[key]
    if "stage1" in g_base:
        if fixed is not None:
            g_over["stage1"] = fixed
        else:  # a fresh Stage-I of the run's own shape (no trained one to hold)
            g_over["stage1"] = generator_kwargs("stage1", preset, **_shared_stage1(cfg, text_dim))
    G = registry("generator").build(g_name, where=f"pipeline stage {stage.name!r} generator",
                                    **generator_kwargs(g_name, preset, **g_over))
    if fixed is not None:
        frozen = getattr(G, "stage1", None)
        if frozen is not None:
            frozen.requires_grad_(False).eval()

    d_over: dict[str, Any] = {"text_dim": text_dim, "d_head": stage.d_head}
    for key, keyword in _DISCRIMINATOR_KEYS.items():
        if cfg.model[key] is not None:
            d_over[keyword] = cfg.model[key]
    where = f"pipeline stage {stage.name!r} discriminator"
    sizes = getattr(G, "sizes", None)  # a multi-scale generator (a tree) names its scales: one D per scale
    if sizes is None:
        D = registry("discriminator").build(d_name, where=where, **discriminator_kwargs(
            d_name, preset, image_size=int(stage.imsize), **d_over))
    else:
        D = nn.ModuleList(registry("discriminator").build(d_name, where=f"{where} ({size} px)", **discriminator_kwargs(
            d_name, preset, image_size=int(size), **d_over)) for size in sizes)
    return G, D


def discriminators(D: nn.Module) -> list[nn.Module]:
    """The discriminators of a stage's D module (`build_stage_models`), lowest scale first."""
    return list(D) if isinstance(D, nn.ModuleList) else [D]


def _output_sizes(cfg: DictConfig, stage: DictConfig, g_base: dict[str, Any]) -> dict[str, Any]:
    """The generator keywords that set its output size: `out_size` (one image), or a tree's `base_size` and
    `branches` (model.stage1_size doubled up to the stage's imsize: 64 -> 256 is 3 branches)."""
    imsize = int(stage.imsize)
    if "branches" not in g_base:
        return {"out_size": imsize} if "out_size" in g_base else {}
    base = int(cfg.model.stage1_size)
    branches, size = 1, base
    while size < imsize:
        branches, size = branches + 1, size * 2
    if size != imsize:
        raise ValueError(f"pipeline stage {stage.name!r}: imsize={imsize} is not model.stage1_size={base} "
                         f"doubled 0, 1 or 2 times; a tree's scales are {base}, {2 * base}, {4 * base}")
    return {"base_size": base, "branches": branches}


def _shared_stage1(cfg: DictConfig, text_dim: int) -> dict[str, Any]:
    shared = {"text_dim": text_dim, "out_size": int(cfg.model.stage1_size)}
    for key in ("gf_dim", "noise_dim", "condition_dim", "upsample", "conditioning"):
        if cfg.model[key] is not None:
            shared[key] = cfg.model[key]
    return shared


def conditioning_block(G: nn.Module) -> nn.Module:
    """The conditioning block whose output a generator returns as `cond` (its own, else its Stage-I's).

    D's "cond_mean" input for mismatched captions is this block's mean of the wrong embeddings.
    """
    from ganblocks.blocks.conditioning import ConditioningBlock

    frozen = getattr(G, "stage1", None)
    inner = {id(m) for m in frozen.modules()} if frozen is not None else set()
    blocks = [m for m in G.modules() if isinstance(m, ConditioningBlock)]
    own = [m for m in blocks if id(m) not in inner]
    if own or blocks:
        return (own or blocks)[0]
    raise ValueError(f"generator {type(G).__name__} has no conditioning block; a discriminator with "
                     "condition_input='cond_mean' needs one (use condition_input='text')")
