"""Compose and validate a training config: `compose(overrides) -> DictConfig`, checked before any work.

Hydra composes experiments/conf (found relative to this file, so it works from any cwd); then the result is
checked against one schema, experiments/schema.py (every key's type, range, choices or registry kind), and
every stage's models are constructed on the meta device. Every problem is reported at once, each naming the
key, the value and what is accepted; an unknown key (also one added with Hydra's `+`) lists the keys of its
section with a did-you-mean. `profile=auto` (the default) becomes `small` on CUDA and `smoke` on CPU.

    >>> cfg = compose(["profile=smoke", "model.conditioning=mixture"])
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import os
import re
import sys
import typing
from pathlib import Path
from typing import Any, Sequence, get_type_hints

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.errors import HydraException
from hydra.initialize import get_gh_backup, restore_gh_from_backup
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, ListConfig, OmegaConf

from experiments.schema import RunConfig

CONF_DIR = Path(__file__).resolve().parent / "conf"
PROBE_TEXT_DIM = 20  # models are built for validation before the data tells the real embedding size; 20 is
#                      also a packed DAMSM caption (D = 1, 19 D + 1), the text AttnGAN's training models take


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
        return unknown_key_message(missing_key.group(1), overrides)
    group = re.search(r"Could not find '([^/']+)/([^']+)'", text)
    if group:
        options = sorted(p.stem for p in (CONF_DIR / group.group(1)).glob("*.yaml"))
        return f"unknown {group.group(1)} {group.group(2)!r}; accepted: {', '.join(options)}"
    return f"could not compose the config with overrides {overrides}: {text}"


def unknown_key_message(key: str, overrides: Sequence[str] = ()) -> str:
    """'unknown config key K (from the override O); keys under P: ...; did you mean ...?' from the schema."""
    parent, _, leaf = key.rpartition(".")
    node: Any = RunConfig
    for part in re.sub(r"\[\d+\]", ".0", parent).split(".") if parent else []:  # a[1].b -> a.0.b
        if part.isdigit() and typing.get_origin(node) is list:  # an item of a list: its element type
            node = typing.get_args(node)[0]
            continue
        hints = get_type_hints(node) if dataclasses.is_dataclass(node) else {}
        node = hints.get(part)
    if typing.get_origin(node) is dict:  # a new keyword of an options mapping (Hydra adds keys only with +)
        return (f"{key}: {parent} holds no keyword {leaf!r} yet; add one with a leading +, e.g. "
                f"+{key}=VALUE (each keyword is then checked against what it configures)")
    if not dataclasses.is_dataclass(node):  # the parent itself is unknown: explain that one instead
        return unknown_key_message(parent, overrides)
    known = [f.name for f in dataclasses.fields(node)]
    close = difflib.get_close_matches(leaf, known, n=1)
    source = [o for o in overrides if (o.lstrip("+~").split("=", 1)[0] + ".").startswith(key + ".")]
    where = f"under {parent!r}" if parent else "at the top level"
    return (f"unknown config key {key!r}" + (f" (from the override {source[0]!r})" if source else "")
            + f"; keys {where}: {', '.join(known)}" + (f"; did you mean {parent + '.' if parent else ''}{close[0]}?" if close else "")
            + ("" if source and not source[0].startswith("+") else " (a key added with + would be ignored, so it is refused)"))


def validate(cfg: DictConfig) -> None:
    """Check a composed config against experiments/schema.py, then build its models on the meta device.

    Every unknown or missing key, wrong type, non-finite number, out-of-range value, unknown choice and
    unregistered name is collected; then every `metrics.options` keyword is checked against its metric's
    constructor, and each pipeline stage's generator and discriminator is constructed without memory (torch's
    meta device), so a size or width no model accepts (model.stage2_size=100) fails here, naming its key, and
    not after the stages before it have trained.

    Raises:
        ConfigError: listing every problem, one per line.
    """
    import ganblocks  # noqa: F401  (registers every component)

    problems = _check(cfg, RunConfig, "", {})
    if not problems:
        stage_names = [s.name for s in cfg.pipeline.stages]
        for i, stage in enumerate(cfg.pipeline.stages):
            if stage.fixed is not None and stage.fixed not in stage_names[:i]:
                problems.append(f"pipeline.stages[{i}].fixed={stage.fixed!r} names no earlier stage; earlier stages: "
                                f"{stage_names[:i]}")
    if not problems and cfg.train.cuda_graph is True:
        problems.extend(_graph_problem(cfg))
    if not problems and cfg.train.tensorboard is True:
        from ganblocks.training.tensorboard_log import missing_reason

        problems.extend(filter(None, [missing_reason()]))
    if not problems:
        problems = _check_preset_fits_pipeline(cfg)
    if not problems:
        problems = _check_text_encoder(cfg)
    if not problems:
        problems = _check_metric_options(cfg) + _check_models(cfg)
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def _check(value: Any, kind: Any, key: str, meta: dict) -> list[str]:
    """Problems of `value` (at config key `key`) against the schema type `kind` and its field metadata."""
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, (DictConfig, dict)):
            return [f"{key}={value!r}; expected a section with keys {', '.join(f.name for f in dataclasses.fields(kind))}"]
        hints = get_type_hints(kind)
        problems = [unknown_key_message(f"{key}.{k}" if key else str(k)) for k in value if k not in hints]
        for f in dataclasses.fields(kind):
            sub = f"{key}.{f.name}" if key else f.name
            if f.name not in value or (isinstance(value, DictConfig) and OmegaConf.is_missing(value, f.name)):
                problems.append(f"{sub} is missing; set it in experiments/conf or with {sub}=VALUE")
            else:
                problems += _check(value[f.name], hints[f.name], sub, dict(f.metadata))
        return problems
    args = typing.get_args(kind)
    if type(None) in args:  # X | None
        return [] if value is None else _check(value, next(a for a in args if a is not type(None)), key, meta)
    origin = typing.get_origin(kind)
    if origin is list:
        if not isinstance(value, (ListConfig, list, tuple)):
            return [f"{key}={value!r}; expected a list"]
        if "length" in meta and len(value) != meta["length"]:
            return [f"{key}={list(value)!r}; expected a list of {meta['length']} items, each {_describe(args[0], meta)}"]
        return [p for i, item in enumerate(value) for p in _check(item, args[0], f"{key}[{i}]", meta)]
    if origin is dict:
        if not isinstance(value, (DictConfig, dict)):
            return [f"{key}={value!r}; expected a mapping"]
        problems = [p for k in value for p in _check(str(k), args[0], f"{key} key {k!r}", meta)]
        return problems + [p for k in value for p in _check(value[k], args[1], f"{key}.{k}", {})]
    return _check_scalar(value, kind, key, meta)


def _check_scalar(value: Any, kind: Any, key: str, meta: dict) -> list[str]:
    expected = _describe(kind, meta)
    if kind is Any:
        return []
    if kind is bool:
        return [] if isinstance(value, bool) else [f"{key}={value!r}; expected {expected}"]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        return [f"{key}={value!r}; expected {expected}"]
    if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
        return [f"{key}={value!r}; expected {expected}"]
    if kind is str and not isinstance(value, str):
        return [f"{key}={value!r}; expected {expected}"]
    if "registry" in meta:
        from ganblocks.registry import UnknownComponentError, registry

        try:
            registry(meta["registry"]).get(value, where=key)
        except UnknownComponentError as error:
            return [str(error)]
    if "choices" in meta and value not in meta["choices"]:
        return [f"{key}={value!r}; expected one of {list(meta['choices'])}"]
    if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
        return [f"{key}={value!r}; expected {meta.get('accepted', meta['pattern'])}"]
    low, high, above, below = (meta.get(k) for k in ("low", "high", "above", "below"))
    if ((low is not None and value < low) or (high is not None and value > high)
            or (above is not None and value <= above) or (below is not None and value >= below)):
        why = f" ({meta['why']})" if "why" in meta else ""
        return [f"{key}={value!r} is out of range; expected {expected}{why}"]
    return []


def _describe(kind: Any, meta: dict) -> str:
    """'an integer >= 1', 'a finite number > 0 and <= 1', 'true or false', ... for a type and its metadata."""
    text = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}.get(kind, str(kind))
    bounds = [f"{op} {meta[k]}" for k, op in (("low", ">="), ("above", ">"), ("below", "<"), ("high", "<=")) if k in meta]
    return text + (" " + " and ".join(bounds) if bounds else "")


def _check_metric_options(cfg: DictConfig) -> list[str]:
    """metrics.options.<name>.<keyword>: each keyword must be one the metric's constructor takes."""
    from ganblocks.registry import registry

    problems = []
    for name, kwargs in cfg.metrics.options.items():
        params = inspect.signature(registry("metric").get(name)).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            continue
        for keyword in kwargs:
            if keyword not in params:
                close = difflib.get_close_matches(str(keyword), list(params), n=1)
                problems.append(f"metrics.options.{name}.{keyword}: metric {name!r} takes no keyword {keyword!r}; "
                                f"it takes: {', '.join(params) or 'none'}" + (f"; did you mean {close[0]}?" if close else ""))
    return problems


def _check_preset_fits_pipeline(cfg: DictConfig) -> list[str]:
    """Every stage's generator and discriminator is one the preset holds (the tree needs a v2 preset, the
    StackGAN-v1 pipelines a v1 one); a mismatch names both keys and the presets that fit."""
    from ganblocks.models.presets import PRESETS

    preset, problems = cfg.model.preset, []
    if preset not in PRESETS:
        return []  # the model check reports an unknown preset with the accepted ones
    for stage in cfg.pipeline.stages:
        for kind in ("generator", "discriminator"):
            name = stage[kind]
            if name in PRESETS[preset][kind]:
                continue
            fits = sorted(p for p, entry in PRESETS.items() if name in entry[kind])
            problems.append(f"preset={preset} does not fit pipeline={cfg.pipeline.name} (stage {stage.name!r}): "
                            f"preset {preset!r} has no {kind} {name!r}; its {kind}s: {sorted(PRESETS[preset][kind])}; "
                            f"presets with {name!r}: {', '.join(fits) or 'none'}"
                            + (f" (e.g. preset={fits[0]})" if fits else ""))
            break
    return problems


def _check_text_encoder(cfg: DictConfig) -> list[str]:
    """data.text_encoder against the encoders a stage's generator declares it reads (`text_encoders`, if any):
    AttnGAN's packed models need word features, which only damsm_words packs into the caption rows."""
    from ganblocks.registry import registry

    problems = []
    for stage in cfg.pipeline.stages:
        accepted = getattr(registry("generator").get(stage.generator), "text_encoders", None)
        if accepted is not None and cfg.data.text_encoder not in accepted:
            problems.append(f"data.text_encoder={cfg.data.text_encoder!r}: generator {stage.generator!r} (pipeline stage "
                            f"{stage.name!r}) reads word features packed in each caption row, which this encoder does "
                            f"not give; accepted: {', '.join(accepted)}")
    from ganblocks.data.text_options import option_problems

    problems += option_problems(cfg.data.text_encoder, cfg.data.get("text_encoder_options"))
    return problems


def _check_models(cfg: DictConfig) -> list[str]:
    """Construct every stage's G and D on the meta device (no memory, no init cost); a failure names its key."""
    import torch

    from ganblocks.training.assemble import build_stage_models

    problems: list[str] = []
    built: dict[str, Any] = {}
    for i, stage in enumerate(cfg.pipeline.stages):
        if stage.fixed is not None and stage.fixed not in built:
            continue  # the stage it holds could not be built: already reported
        raw = OmegaConf.to_container(stage, resolve=False)["imsize"]
        source = re.fullmatch(r"\$\{(.+)\}", str(raw))
        where = f"{source.group(1)}={stage.imsize}" if source else f"pipeline.stages[{i}].imsize={stage.imsize}"
        try:
            with torch.device("meta"):
                G, _ = build_stage_models(cfg, stage, PROBE_TEXT_DIM, built.get(stage.fixed))
        except Exception as error:  # noqa: BLE001 - any refusal of a model is a config error, reported as such
            problems.append(f"{where} (pipeline stage {stage.name!r}): the models cannot be built: "
                            f"{type(error).__name__}: {error}")
            continue
        built[stage.name] = G
    return problems


def _graph_problem(cfg: DictConfig) -> list[str]:
    """`train.cuda_graph=true` where the step cannot be captured (CPU, torchrun, compile)."""
    import torch

    from ganblocks.training.precision import graph_blocker

    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          "cpu" if cfg.device == "auto" else cfg.device)
    blocker = graph_blocker(cfg, device, int(os.environ.get("WORLD_SIZE", "1")))
    if blocker is None:
        return []
    return [f"train.cuda_graph=true but {blocker}; accepted: auto (captures where it can, eager elsewhere) or false"]
