"""`precomputed`: the caption embeddings shipped with a dataset (StackGAN's `*-embeddings.pickle`)."""

from __future__ import annotations

import numpy as np
import torch

from ganblocks.io import stable_hash
from ganblocks.registry import register
from ganblocks.text.base import TextEncoder


@register("text_encoder", "precomputed")
class PrecomputedEncoder(TextEncoder):
    """Embeddings read from the dataset's pickle (N x n_captions x D); `encode` looks captions up.

    The loader fills the lookup table with `add`; `encode` of a caption the dataset does not hold fails,
    since there is no model to embed new text with.
    """

    reads_dataset_embeddings = True  # the loader fills it from *-embeddings.pickle (see TextEncoder)

    def __init__(self, filename: str | None = None) -> None:
        self.filename = filename
        self.dim = 0
        self._table: dict[str, np.ndarray] = {}
        self._source = ""

    def add(self, captions: list[list[str]], embeddings: np.ndarray) -> None:
        """Register (N, n) captions with their (N, n, D) embeddings."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        self.dim = int(embeddings.shape[-1])
        for caps, embs in zip(captions, embeddings):
            for c, e in zip(caps, embs):
                if c:
                    self._table.setdefault(c, e)
        self._source = stable_hash([self._source, embeddings.shape, float(embeddings.sum())])

    def encode(self, captions: list[str]) -> torch.Tensor:
        if not self._table:
            raise ValueError("precomputed encoder has no embeddings: load a dataset with "
                             "text_encoder='precomputed' first (it reads *-embeddings.pickle)")
        missing = [c for c in captions if c not in self._table]
        if missing:
            raise KeyError(f"precomputed encoder has no embedding for caption {missing[0]!r} "
                           f"({len(missing)} of {len(captions)} unknown); only the dataset's captions are embedded")
        return torch.from_numpy(np.stack([self._table[c] for c in captions]).astype(np.float32))

    def cache_key(self) -> str:
        return f"precomputed-{self._source or 'empty'}"
