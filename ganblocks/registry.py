"""Registries: one per kind of component, each a dict from a short name to a class.

A block variant is a registered class; configs name it by its short name, and that name is also its label
in tables. `build(kind, name, **kwargs)` constructs one; an unknown name fails at once with the list of
registered names of that kind.

    >>> from ganblocks.registry import register, build
    >>> @register("upsample", "nearest")
    ... class NearestUp(nn.Module): ...
    >>> block = build("upsample", "nearest", in_channels=64, out_channels=32)
"""

from __future__ import annotations

import difflib
import inspect
import re
from typing import Any, Callable, Iterator, TypeVar

KINDS: tuple[str, ...] = (
    "upsample",
    "residual",
    "downsample",
    "conditioning",
    "d_head",
    "stage",
    "generator",
    "discriminator",
    "text_encoder",
    "text_transform",
    "loss",
    "regulariser",
    "dataset",
    "metric",
    "damsm",
)

T = TypeVar("T")


class UnknownComponentError(ValueError):
    """A config named a component (or a kind) that is not registered."""


class Registry:
    """Short name -> class for one kind of component."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator that registers the class under `name`."""

        def decorator(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered by {self._entries[name]!r}")
            self._entries[name] = obj  # type: ignore[assignment]
            return obj

        return decorator

    def get(self, name: str, where: str | None = None) -> Callable[..., Any]:
        """The class registered as `name`; `where` (e.g. 'model.upsample') is named in the error."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            origin = f" (from {where})" if where else ""
            close = difflib.get_close_matches(str(name), self.names(), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownComponentError(
                f"unknown {self.kind} {name!r}{origin}; registered {self.kind} names: "
                f"{', '.join(self.names()) or '(none)'}{hint}"
            ) from None

    def build(self, name: str, /, *, where: str | None = None, **kwargs: Any) -> Any:
        """Construct the component registered as `name` with `kwargs`."""
        return self.get(name, where)(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def summary(self, name: str) -> str:
        """The first sentence of the registered class's docstring, whole (it may span several lines)."""
        return first_sentence(self.get(name).__doc__ or "")

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


def first_sentence(doc: str) -> str:
    """The first sentence of a docstring's first paragraph, on one line: up to the first '.', '!' or '?'
    followed by a capital letter or the paragraph's end ("et al. 2016", "e.g. StackGAN", "Fig. 3" and "x2."
    inside a shape do not end it); the whole paragraph when it has no such end."""
    paragraph = " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())
    end = re.search(r"(?<!\be\.g)(?<!\bi\.e)(?<!\bal)(?<!\bcf)(?<!\bvs)(?<!\bFig)(?<!\bSec)(?<!\bEq)(?<!\bEqs)"
                    r"[.!?](?=\s+[A-Z]|$)", paragraph)
    return paragraph[: end.end()] if end else paragraph


REGISTRIES: dict[str, Registry] = {kind: Registry(kind) for kind in KINDS}


def registry(kind: str) -> Registry:
    """The registry of one kind; an unknown kind lists the kinds."""
    try:
        return REGISTRIES[kind]
    except KeyError:
        raise UnknownComponentError(f"unknown component kind {kind!r}; kinds: {', '.join(KINDS)}") from None


def register(kind: str, name: str) -> Callable[[T], T]:
    """Decorator: register a class as `name` in the registry of `kind`."""
    return registry(kind).register(name)


def build(kind: str, name: str, /, *, where: str | None = None, **kwargs: Any) -> Any:
    """Construct the `kind` component registered as `name`."""
    return registry(kind).build(name, where=where, **kwargs)


def names(kind: str) -> list[str]:
    """Registered names of one kind, sorted."""
    return registry(kind).names()
