"""What every text encoder is: `encode(captions) -> float32 (N, dim)`, a `dim`, and a `cache_key()`."""

from __future__ import annotations

import re

import torch

_TOKEN = re.compile(r"[a-z0-9]+")


def tokenize(caption: str) -> list[str]:
    """Lower-case word tokens of a caption ('A red-bird.' -> ['a', 'red', 'bird'])."""
    return _TOKEN.findall(caption.lower())


class TextEncoder:
    """Base of the registered text encoders: captions -> float32 (N, dim) sentence embeddings.

    `context_keys` lists the keyword arguments `build_dataset` may pass when it builds an encoder by name
    (e.g. the dataset an encoder is trained on).

    `reads_dataset_embeddings` (False here) marks an encoder without a model of its own (`precomputed`): a
    loader of the StackGAN layout then reads `<split>/<encoder.filename or its default>` and hands the
    (N, n_captions, D) embeddings to `encoder.add(captions, embeddings)` instead of calling `encode`. The
    loader asks this attribute, not the encoder's class, so ganblocks.data never imports ganblocks.text.
    """

    dim: int
    context_keys: tuple[str, ...] = ()
    reads_dataset_embeddings: bool = False

    def encode(self, captions: list[str]) -> torch.Tensor:
        """(N captions) -> float32 (N, dim)."""
        raise NotImplementedError(f"{type(self).__name__} must implement encode()")

    def cache_key(self) -> str:
        """A string that changes whenever the embeddings of the same captions would change."""
        raise NotImplementedError(f"{type(self).__name__} must implement cache_key()")

    def __call__(self, captions: list[str]) -> torch.Tensor:
        return self.encode(captions)


def check_captions(captions: list[str], where: str) -> list[str]:
    """Captions must be a list of non-empty strings; the error names the first bad one."""
    if isinstance(captions, str):
        raise TypeError(f"{where}.encode expects a list of captions, got one string {captions[:40]!r}")
    for i, c in enumerate(captions):
        if not isinstance(c, str) or not c.strip():
            raise ValueError(f"{where}.encode: caption {i} is empty or not a string ({c!r})")
    return list(captions)
