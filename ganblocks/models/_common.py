"""Helpers shared by the model files: argument checks, conditioning construction, input checks, D conditions."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch
from torch import Tensor, nn

from ganblocks.registry import build


def check_positive(model: str, **values: Any) -> None:
    """Raise naming the first value that is not a positive int."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{model}: {name}={value!r}; expected a positive int")


def doublings(model: str, name: str, size: int, base: int) -> int:
    """How many x2 steps lead from `base` to `size`; `size` must be `base` times a power of two."""
    if not isinstance(size, int) or size < base or size % base or not math.log2(size // base).is_integer():
        raise ValueError(f"{model}: {name}={size!r}; expected {base} times a power of two (e.g. 64, 128, 256)")
    return int(math.log2(size // base))


def build_conditioning(
    name: str, text_dim: int, condition_dim: int, kwargs: Mapping[str, Any] | None, where: str
) -> nn.Module:
    """The registered conditioning block `name` with the model's dims and its own keywords."""
    return build("conditioning", name, where=where, text_dim=text_dim, condition_dim=condition_dim, **dict(kwargs or {}))


def flat(*blocks: nn.Module) -> list[nn.Module]:
    """Layers of Sequential blocks laid out flat (official flat Sequential names); other modules as they are."""
    layers: list[nn.Module] = []
    for block in blocks:
        layers.extend(block if isinstance(block, nn.Sequential) else [block])
    return layers


def check_input(model: str, name: str, x: Tensor, dim: int) -> None:
    """`x` must be (B, dim)."""
    if x.dim() != 2 or x.shape[1] != dim:
        raise ValueError(f"{model}: {name} of shape {tuple(x.shape)}; expected (B, {dim})")


def discriminator_conditions(condition_input: str, text: Tensor, wrong_text: Tensor, cond: Any,
                             encode: Callable[[Tensor], Any]) -> tuple[Tensor, Tensor]:
    """A discriminator's condition for the matching and for the mismatched captions, as it takes them.

    "text" (paper): the raw embeddings (B, D), which the D compresses itself. "cond_mean" (official): the
    generator's conditioning mean `cond.mean` (B, N_g), detached, and `encode(wrong_text).mean` for the
    mismatched captions (encode = the generator's conditioning block; run without gradients).

    Raises:
        ValueError: another `condition_input`.
    """
    if condition_input == "text":
        return text, wrong_text
    if condition_input == "cond_mean":
        with torch.no_grad():
            wrong_mean = encode(wrong_text).mean
        return cond.mean.detach(), wrong_mean.detach()
    raise ValueError(f"condition_input={condition_input!r}; expected 'cond_mean' or 'text'")
