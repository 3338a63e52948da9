"""Compose and validate a training config: `compose(overrides) -> DictConfig`, checked before any work.

Hydra composes experiments/conf (found relative to this file, so it works from any cwd); then every
registry name, value range and choice is checked, and a bad one fails with the key, the value and what
is accepted. `profile=auto` (the default) becomes `small` on CUDA and `smoke` on CPU.

    >>> cfg = compose(["profile=smoke", "model.conditioning=mixture"])
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.errors import HydraException
from hydra.initialize import get_gh_backup, restore_gh_from_backup
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parent / "conf"
PROFILES = ("smoke", "cpu", "small", "paper", "auto")

# key -> registry kind, for every key that names a registered component.
REGISTRY_KEYS: dict[str, str] = {
    "model.upsample": "upsample",
    "model.residual": "residual",
    "model.conditioning": "conditioning",
    "model.d_head": "d_head",
    "model.stage2_d_head": "d_head",
    "data.name": "dataset",
    "data.text_encoder": "text_encoder",
    "loss.name": "loss",
}

CHOICES: dict[str, tuple[Any, ...]] = {
    "data.wrong": ("class", "shift"),
    "train.amp": ("bf16", "fp32"),
    "model.text_twice": (True, False),
    "loss.gan_int": (True, False),
    "train.channels_last": (True, False),
    "train.compile": (True, False),
    "train.progress": (True, False),
}

# key -> (minimum, maximum, inclusive-min, allow None, integer)
RANGES: dict[str, tuple[float, float, bool, bool, bool]] = {
    "seed": (0, float("inf"), True, False, True),
    "train.batch_size": (1, float("inf"), True, False, True),
    "train.lr": (0, float("inf"), False, False, False),
    "train.epochs": (1, float("inf"), True, False, True),
    "train.max_steps": (1, float("inf"), True, True, True),
    "train.lr_halve_every": (1, float("inf"), True, True, True),
    "train.ema_decay": (0, 1, False, True, False),
    "train.checkpoint_every": (1, float("inf"), True, False, True),
    "train.log_every": (1, float("inf"), True, False, True),
    "train.sample_every": (1, float("inf"), True, False, True),
    "train.n_samples": (1, 64, True, False, True),
    "train.nan_at_step": (0, float("inf"), True, True, True),
    "train.cpu_threads": (1, 1024, True, True, True),
    "loss.kl_weight": (0, float("inf"), True, False, False),
    "loss.gan_int_beta": (0, 1, True, False, False),
    "model.num_residual": (0, 64, True, True, True),
    "model.gf_dim": (1, 4096, True, True, True),
    "model.df_dim": (1, 4096, True, True, True),
    "model.condition_dim": (1, 4096, True, True, True),
    "model.noise_dim": (1, 4096, True, True, True),
    "model.stage1_size": (16, 1024, True, False, True),
    "model.stage2_size": (16, 1024, True, False, True),
}


class ConfigError(ValueError):
    """A config value is invalid; the message names the key, the value and what is accepted."""


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose experiments/conf/config.yaml with Hydra `overrides` and validate it.

    Args:
        overrides: Hydra override strings, e.g. ["profile=smoke", "model.upsample=bilinear"].

    Returns:
        The composed config (struct mode: unknown keys raise), with `profile=auto` resolved.

    Raises:
        ConfigError: an unknown key, group option or registry name, or a value out of range.
    """
    overrides = resolve_auto_profile(list(overrides))
    backup = get_gh_backup()  # keep a caller's Hydra (e.g. inside @hydra.main) intact
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose(config_name="config", overrides=overrides)
    except HydraException as error:
        raise ConfigError(_explain(error, overrides)) from None
    finally:
        restore_gh_from_backup(backup)
    validate(cfg)
    return cfg


def resolve_auto_profile(overrides: list[str], cuda: bool | None = None) -> list[str]:
    """Replace `profile=auto` (explicit or the default) by `small` on CUDA and `smoke` on CPU."""
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    concrete = "small" if cuda else "smoke"
    profile = [o for o in overrides if re.fullmatch(r"\+*profile=.*", o)]
    if not profile:
        return overrides + [f"profile={concrete}"]
    return [f"profile={concrete}" if o in profile and o.split("=", 1)[1] == "auto" else o for o in overrides]


def _explain(error: HydraException, overrides: list[str]) -> str:
    """A Hydra composition error rewritten to name the key and list what is accepted."""
    text = str(error)
    missing_key = re.search(r"Key '([^']+)' is not in struct", text) or re.search(
        r"Could not override '([^']+)'", text
    )
    if missing_key:
        key = missing_key.group(1)
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        known = _known_keys(parent)
        where = f"under {parent!r}" if parent else "at the top level"
        return f"unknown config key {key!r} (from the overrides {overrides}); keys {where}: {', '.join(known)}"
    group = re.search(r"Could not find '([^/']+)/([^']+)'", text)
    if group:
        options = sorted(p.stem for p in (CONF_DIR / group.group(1)).glob("*.yaml"))
        return f"unknown {group.group(1)} {group.group(2)!r}; accepted: {', '.join(options)}"
    return f"could not compose the config with overrides {overrides}: {text}"


def _known_keys(parent: str) -> list[str]:
    base = OmegaConf.load(CONF_DIR / "config.yaml")
    node = OmegaConf.select(base, parent) if parent else base
    if isinstance(node, DictConfig):
        return sorted(str(k) for k in node.keys() if k != "defaults")
    return []


def validate(cfg: DictConfig) -> None:
    """Check every registry name, choice and numeric range of a composed config; raise ConfigError."""
    import ganblocks  # noqa: F401  (registers every component)
    from ganblocks.registry import UnknownComponentError, registry

    problems: list[str] = []
    if cfg.profile_name not in PROFILES or cfg.profile_name == "auto":
        problems.append(f"profile_name={cfg.profile_name!r} was not resolved; expected one of smoke, cpu, small, paper")
    for key, kind in REGISTRY_KEYS.items():
        try:
            registry(kind).get(OmegaConf.select(cfg, key), where=key)
        except UnknownComponentError as error:
            problems.append(str(error))
    for i, stage in enumerate(cfg.pipeline.stages):
        for field, kind in (("generator", "generator"), ("discriminator", "discriminator"), ("d_head", "d_head")):
            try:
                registry(kind).get(stage[field], where=f"pipeline.stages[{i}].{field}")
            except UnknownComponentError as error:
                problems.append(str(error))
        if stage.fixed is not None and stage.fixed not in [s.name for s in cfg.pipeline.stages[:i]]:
            problems.append(
                f"pipeline.stages[{i}].fixed={stage.fixed!r} names no earlier stage; earlier stages: "
                f"{[s.name for s in cfg.pipeline.stages[:i]]}"
            )
    for key, accepted in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value not in accepted or (isinstance(value, (int, float)) and not isinstance(value, bool) and accepted[0] is True):
            problems.append(f"{key}={value!r}; expected one of {list(accepted)}")
    for key, (low, high, inclusive, nullable, integer) in RANGES.items():
        problems.extend(_check_range(key, OmegaConf.select(cfg, key), low, high, inclusive, nullable, integer))
    betas = list(cfg.train.betas)
    if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
        problems.append(f"train.betas={betas!r}; expected two numbers in [0, 1), e.g. [0.5, 0.999]")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(cfg.device)):
        problems.append(f"device={cfg.device!r}; expected auto, cpu, cuda or cuda:N")
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def _check_range(key: str, value: Any, low: float, high: float, inclusive: bool, nullable: bool, integer: bool) -> list[str]:
    if value is None:
        return [] if nullable else [f"{key}=None; expected a number"]
    kind = "an integer" if integer else "a number"
    bounds = f"{'>=' if inclusive else '>'} {low}" + (f" and <= {high}" if high != float("inf") else "")
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        return [f"{key}={value!r}; expected {kind} {bounds}" + (" or null" if nullable else "")]
    if value < low or (value == low and not inclusive) or value > high:
        return [f"{key}={value!r} is out of range; expected {kind} {bounds}" + (" or null" if nullable else "")]
    return []
