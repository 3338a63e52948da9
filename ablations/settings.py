"""What one grid invocation was asked for (`Settings`, saved as DIR/launch.json) and the code it may load.

Seams for tests and other engines: `run_grid` and `run_spec` take `compose_fn`, `train_fn` and
`evaluate_fn` (callables, or "module:function" strings so that launcher jobs in other processes can load
them), defaulting to the real ones. A name read from a file in an output folder (launch.json) is code
chosen by whoever wrote that folder: it is loaded only when it is the default, or the user allowed it
($GANBLOCKS_TRUSTED_FNS, which the launcher sets for its own jobs from the names it was given).
"""

from __future__ import annotations

import importlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ablations.grids import PROFILES, GridError, parse_only

TRUSTED_FNS_ENV = "GANBLOCKS_TRUSTED_FNS"  # comma-separated "module:function" names the user allows
LAUNCH = "launch.json"

ComposeFn = Callable[[list[str]], Any]
TrainFn = Callable[[Any, Path], dict]
EvaluateFn = Callable[..., dict]

_DEFAULTS = {
    "compose_fn": "experiments.config:compose",
    "train_fn": "ganblocks.training:train",
    "evaluate_fn": "ganblocks.evaluation:evaluate_run",
    "rank_fn": "ganblocks.evaluation:rank_proxy",
}


# ---------------------------------------------------------------------------------------------------------
# Settings of one grid invocation


@dataclass
class Settings:
    """What one `python -m ablations.run` was asked for, after defaults; saved as DIR/launch.json."""

    grid: str
    profile: str  # concrete: one of ablations.grids.PROFILES (experiments/conf/profile/*.yaml but auto)
    out_dir: Path
    seeds: int | None = None
    only: list[str] | None = None
    overrides: tuple[str, ...] = ()
    compose_fn: Callable | str | None = None  # seams: callables or "module:function"; None = the real ones
    train_fn: Callable | str | None = None
    evaluate_fn: Callable | str | None = None
    rank_fn: Callable | str | None = None  # cross-run rank proxy, used by the collector

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["out_dir"] = str(self.out_dir)
        d["overrides"] = list(self.overrides)
        for role in _DEFAULTS:
            d[role] = fn_name(d[role])
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Settings":
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        d["out_dir"] = Path(d["out_dir"])
        d["overrides"] = tuple(d.get("overrides") or ())
        return cls(**d)


def resolve_profile(profile: str | None) -> str:
    """`auto` -> `small` when CUDA is available, else `smoke`; other names are checked and returned."""
    profile = profile or "auto"
    if profile == "auto":
        import torch

        return "small" if torch.cuda.is_available() else "smoke"
    if profile not in PROFILES:
        raise GridError(f"unknown profile {profile!r} (from profile=); accepted: {', '.join(PROFILES)}, auto")
    return profile


def default_out_dir(grid: str, profile: str) -> Path:
    return Path("ablation_runs") / f"{grid}-{profile}"


def fn_name(fn: Callable | str | None) -> str | None:
    """"module:function" for an importable callable (what launch.json stores); None stays None."""
    if fn is None or isinstance(fn, str):
        return fn
    qual = getattr(fn, "__qualname__", "")
    if "<" in qual or not getattr(fn, "__module__", None):
        return None  # a local function: usable in this process only
    return f"{fn.__module__}:{qual}"


class UntrustedCallableError(GridError):
    """A file in an output folder names code to run that the user did not allow."""


def trusted_fns() -> set[str]:
    """The "module:function" names the user allowed through $GANBLOCKS_TRUSTED_FNS."""
    return {n.strip() for n in os.environ.get(TRUSTED_FNS_ENV, "").split(",") if n.strip()}


def trusted_env(settings: "Settings") -> dict[str, str]:
    """os.environ plus the settings' own seam names in $GANBLOCKS_TRUSTED_FNS (for the launcher's jobs,
    which read those names back from launch.json)."""
    names = trusted_fns() | {n for n in (fn_name(getattr(settings, role)) for role in _DEFAULTS) if n}
    return {**os.environ, TRUSTED_FNS_ENV: ",".join(sorted(names))}


def load_fn(fn: Callable | str | None, role: str, *, source: str | os.PathLike | None = None) -> Callable:
    """A callable, or one named "module:function" (None = the real one for `role`).

    Args:
        source: the file `fn` was read from, when it was read from one (launch.json). Such a name is
            imported only when it is `role`'s default or listed in $GANBLOCKS_TRUSTED_FNS.

    Raises:
        UntrustedCallableError: `fn` came from `source` and is neither the default nor allowed.
        ImportError: the name cannot be imported.
    """
    if callable(fn):
        return fn
    spec = fn or _DEFAULTS[role]
    if source is not None and spec != _DEFAULTS[role] and spec not in trusted_fns():
        raise UntrustedCallableError(
            f"{source} names {role}={spec!r}: a file in an output folder cannot choose code to run. Pass it "
            f"yourself ({role}= as an argument or on the command line), or allow it with "
            f"{TRUSTED_FNS_ENV}={spec}; the default is {_DEFAULTS[role]!r}."
        )
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ImportError(f"{role}={spec!r} cannot be loaded ({err}); expected 'package.module:function'") from err


def git_sha() -> str:
    """The checked-out commit of this source tree (suffix '-dirty' when it has local changes), or 'unknown'."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def make_settings(
    grid: str,
    profile: str | None = "auto",
    seeds: int | str | None = None,
    out_dir: str | os.PathLike | None = None,
    only: str | Sequence[str] | None = None,
    overrides: Sequence[str] = (),
    compose_fn: ComposeFn | str | None = None,
    train_fn: TrainFn | str | None = None,
    evaluate_fn: EvaluateFn | str | None = None,
    rank_fn: Callable | str | None = None,
) -> Settings:
    """Settings with defaults filled in (profile resolved, default out_dir, only= parsed)."""
    concrete = resolve_profile(profile)
    try:
        n_seeds = None if seeds in (None, "", "null") else int(seeds)
    except (TypeError, ValueError):
        raise GridError(f"seeds={seeds!r} (from seeds=) must be a positive integer") from None
    return Settings(
        grid=grid,
        profile=concrete,
        out_dir=Path(out_dir) if out_dir else default_out_dir(grid, concrete),
        seeds=n_seeds,
        only=parse_only(only),
        overrides=tuple(overrides),
        compose_fn=compose_fn,
        train_fn=train_fn,
        evaluate_fn=evaluate_fn,
        rank_fn=rank_fn,
    )
