"""`bow`: a deterministic, training-free bag of hashed words and bigrams projected to `dim` dimensions."""

from __future__ import annotations

import zlib

import numpy as np
import torch

from ganblocks.registry import register
from ganblocks.text.base import TextEncoder, check_captions, tokenize

STOPWORDS = frozenset("a an the this that is are has have with and of its it on in to bird".split())


@register("text_encoder", "bow")
class BagOfWordsEncoder(TextEncoder):
    """Hashed words + bigrams, each a fixed random Gaussian direction, summed: (N,) -> (N, dim).

    Each feature's direction is seeded by a CRC32 of the feature and `seed`, so embeddings are identical
    across processes and machines. The sum is scaled to unit RMS per component (norm sqrt(dim)), the scale
    of the char-CNN-RNN embeddings the conditioning layers were designed for. Stop words are dropped;
    bigrams weigh `bigram_weight`.
    """

    option_low = {"dim": 1, "bigram_weight": 0}  # data.text_encoder_options bounds (ganblocks.data.text_options)

    def __init__(self, dim: int = 1024, seed: int = 0, bigram_weight: float = 0.5) -> None:
        if dim < 1:
            raise ValueError(f"bow dim={dim}: expected a positive int")
        self.dim, self.seed, self.bigram_weight = int(dim), int(seed), float(bigram_weight)
        self._vectors: dict[str, np.ndarray] = {}

    def _vector(self, feature: str) -> np.ndarray:
        vec = self._vectors.get(feature)
        if vec is None:
            rng = np.random.default_rng([self.seed, zlib.crc32(feature.encode())])
            vec = self._vectors[feature] = rng.standard_normal(self.dim).astype(np.float32)
        return vec

    def encode(self, captions: list[str]) -> torch.Tensor:
        captions = check_captions(captions, "bow")
        out = np.zeros((len(captions), self.dim), np.float32)
        for i, caption in enumerate(captions):
            words = [w for w in tokenize(caption) if w not in STOPWORDS]
            for w in words:
                out[i] += self._vector(w)
            for a, b in zip(words, words[1:]):
                out[i] += self.bigram_weight * self._vector(f"{a} {b}")
            norm = np.linalg.norm(out[i])
            if norm > 0:
                out[i] *= np.sqrt(self.dim) / norm
        return torch.from_numpy(out)

    def cache_key(self) -> str:
        return f"bow-d{self.dim}-s{self.seed}-b{self.bigram_weight}-v1"
