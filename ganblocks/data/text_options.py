"""`data.text_encoder_options` checked against the encoder it configures, before any work.

Used at config time (experiments.config) and whenever a spec is built into an encoder (`resolve_text_encoder`:
a run folder's config.yaml read again by sample or evaluate), so a bad keyword is one line naming it, never a
traceback from inside a constructor. Reads only the encoder class (its signature and declared attributes), so
ganblocks.data still never imports ganblocks.text.

What an encoder class may declare:
    context_keys: keywords the loader sets itself (dataset, root); never options.
    option_low / option_above: {keyword: bound} lower bounds (>= / >), e.g. {"epochs": 1} / {"lr": 0}.
    option_paths: keywords naming a file or folder that must exist (e.g. "checkpoint").
    option_required: keywords that must be given (e.g. the `damsm` encoder's checkpoint).
    options_forwarded_to: a callable (or "module:function") its **kwargs go to (their keywords are its
        parameters less `options_forwarded_fixed`, the ones the encoder passes itself); option_defaults: the
        defaults it uses over that callable's own (shown in messages).
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Mapping
from typing import Any

from ganblocks.registry import registry

_VAR = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class TextEncoderOptionsError(ValueError):
    """`data.text_encoder_options` names a keyword, kind or value the encoder does not take."""


def option_parameters(cls: Any) -> dict[str, inspect.Parameter]:
    """{keyword: Parameter} the options may give encoder class `cls` (constructor order; forwarded ones after)."""
    params = inspect.signature(cls).parameters
    takes = {k: p for k, p in params.items() if k != "self" and p.kind not in _VAR
             and k not in getattr(cls, "context_keys", ())}
    forwarded = getattr(cls, "options_forwarded_to", None)
    if isinstance(forwarded, str):  # "module:function", imported only when asked
        import importlib

        module, _, attr = forwarded.partition(":")
        forwarded = getattr(importlib.import_module(module), attr)
    if forwarded is not None and any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        fixed = set(getattr(cls, "options_forwarded_fixed", ())) | set(takes) | set(getattr(cls, "context_keys", ()))
        takes.update({k: p for k, p in inspect.signature(forwarded).parameters.items()
                      if k not in fixed and p.kind not in _VAR})
    return takes


def _kind(param: inspect.Parameter) -> tuple[str, Any] | None:
    """(what is accepted, test) from the kind of `param`'s default, else of its annotation; None: not checked."""
    default, note = param.default, str(param.annotation)
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    if isinstance(default, bool):
        return "true or false", lambda v: isinstance(v, bool)
    if isinstance(default, int) or (default is None and note.startswith("int")):
        return "an integer", lambda v: number(v) and isinstance(v, int)
    if isinstance(default, float):
        return "a finite number", lambda v: number(v) and math.isfinite(v)
    if isinstance(default, str) or (default is None and note.startswith("str")):
        return "a string", lambda v: isinstance(v, str) or (v is None and default is None)
    if default is None and note.startswith("dict"):
        return "a mapping {key: value}", lambda v: isinstance(v, Mapping) or v is None
    return None


def option_problems(name: str, options: Any, where: str = "data.text_encoder_options") -> list[str]:
    """Each problem of `options` for text encoder `name` as one line naming the key, the value and what is
    accepted ([] when none; an unregistered `name` is reported by the registry check, not here)."""
    import difflib

    if options is None:
        return []
    if not isinstance(options, Mapping):
        return [f"{where}={options!r}; expected a mapping of keywords for text encoder {name!r}"]
    try:
        cls = registry("text_encoder").get(name)
    except Exception:  # noqa: BLE001 - the name itself is refused elsewhere, with the registered names
        return []
    takes = option_parameters(cls)
    context = getattr(cls, "context_keys", ())
    problems = [f"{where}.{keyword}: text encoder {name!r} needs it (+{where}.{keyword}=VALUE); it is not set"
                for keyword in getattr(cls, "option_required", ()) if options.get(keyword) is None]
    for keyword, value in options.items():
        key = f"{where}.{keyword}"
        if keyword not in takes:
            close = difflib.get_close_matches(str(keyword), list(takes), n=1)
            set_by = f" ({keyword} is set by the loader from data.name/data.root)" if keyword in context else ""
            problems.append(f"{key}: text encoder {name!r} takes no keyword {keyword!r}{set_by}; it takes: "
                            f"{', '.join(takes) or 'none'}" + (f"; did you mean {close[0]}?" if close else ""))
            continue
        param = takes[keyword]
        kind = _kind(param)
        low, above = getattr(cls, "option_low", {}).get(keyword), getattr(cls, "option_above", {}).get(keyword)
        bound = f">= {low}" if low is not None else f"> {above}" if above is not None else ""
        expected = " ".join(filter(None, [kind[0] if kind else "a number" if bound else "", bound]))
        bad = kind is not None and not kind[1](value)
        if not bad and bound and isinstance(value, (int, float)) and not isinstance(value, bool):
            bad = (low is not None and value < low) or (above is not None and value <= above)
        expected = expected if bad else None
        if expected is None and keyword in getattr(cls, "option_paths", ()) and value is not None \
                and not os.path.exists(os.path.expanduser(str(value))):
            expected = "an existing file or folder" + ("" if keyword in getattr(cls, "option_required", ()) else
                                                       " (or leave it out: the cached one is used, trained when missing)")
        if expected is not None:
            default = getattr(cls, "option_defaults", {}).get(keyword, param.default)
            default = "" if default is inspect.Parameter.empty else f" (default {default!r})"
            problems.append(f"{key}={value!r}; text encoder {name!r} expects {expected}{default}")
    return problems


def check_options(name: str, options: Any, where: str = "data.text_encoder_options") -> None:
    """Raise TextEncoderOptionsError with every problem `option_problems` finds (one line each)."""
    problems = option_problems(name, options, where)
    if problems:
        raise TextEncoderOptionsError("; ".join(problems))
