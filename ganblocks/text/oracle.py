"""`oracle`: the caption's parsed SynthBirds attributes as a one-hot vector. FOR DIAGNOSIS ONLY.

This encoder reads the built-in dataset's caption grammar back into the attribute values a caption names,
so it knows exactly what a perfect text encoder could know and nothing more. It exists to separate "the
text encoder loses the caption" from "the GAN does not use what it is given" (docs/results/learning.md).
It is never a published configuration: it only works on `synthbirds` captions, and a table made with it
measures the GAN alone, not a text-to-image system.
"""

from __future__ import annotations

import re

import torch

from ganblocks.registry import register
from ganblocks.text.base import TextEncoder, check_captions


def _phrase_table() -> list[tuple[str, int, int]]:
    """Every phrase the synthbirds grammar can write for an attribute value: [(phrase, attribute, value)],
    longest first (so 'leaf green body feathers' is matched before 'green body feathers')."""
    from ganblocks.data import synthbirds as sb
    from ganblocks.data.synthbirds import captions as grammar  # the grammar's word tables, read as they are

    table: list[tuple[str, int, int]] = []
    for attr, spec in enumerate(sb.SPEC):
        if spec.name == "size":
            for value, name in enumerate(spec.values):
                table += [(f"{word} bird", attr, value) for word in grammar._SIZE_WORDS[name]]
            continue
        phrases = grammar._PHRASES[spec.name]
        for value, name in enumerate(spec.values):
            if isinstance(phrases, dict):
                table += [(p, attr, value) for p in phrases[name]]
            else:
                table += [(p.format(c=c), attr, value) for p in phrases for c in grammar._COLOR_SYNONYMS[name]]
    return sorted(table, key=lambda item: -len(item[0]))


@register("text_encoder", "oracle")
class OracleAttributeEncoder(TextEncoder):
    """FOR DIAGNOSIS ONLY, never for published tables: a SynthBirds caption -> the one-hot vector of the
    attribute values it names, (N,) -> (N, sum of the attributes' value counts) = (N, 67).

    Each attribute has a block of one-hot slots (12 per colour, 3 sizes, 4 beaks, 4 tails, 2 per fine
    attribute); an attribute the caption does not name leaves its block zero. The vector is scaled to L2
    norm `norm` (default 32 = sqrt(1024), the norm of `bow` and of the 1024-d char-CNN-RNN embeddings): the
    conditioning and discriminator FC layers start at N(0, 0.02), so an unscaled one-hot (norm ~2) reaches
    them 16x weaker and the discriminator ignores the text for hundreds of steps
    (docs/results/learning.md). Parsing inverts `ganblocks.data.synthbirds.make_caption` (longest phrase first); a caption that
    names no attribute it can read raises ValueError, so a changed grammar cannot silently give zeros.

    Raises:
        ValueError: when built for a dataset other than synthbirds (`dataset`), or a caption cannot be parsed.
    """

    context_keys = ("dataset",)
    option_above = {"norm": 0}  # data.text_encoder_options bound (ganblocks.data.text_options): 0 gives zero vectors

    def __init__(self, dataset: str = "synthbirds", norm: float = 32.0) -> None:
        if dataset != "synthbirds":
            raise ValueError(f"text_encoder 'oracle' parses SynthBirds captions only; data.name={dataset!r}. "
                             "It is a diagnosis tool for the built-in dataset (use bow or rnn elsewhere)")
        from ganblocks.data import synthbirds as sb

        self.norm = float(norm)
        self.sizes = [len(a.values) for a in sb.SPEC]
        self.offsets = [sum(self.sizes[:i]) for i in range(len(self.sizes))]
        self.dim = sum(self.sizes)
        self._table = [(re.compile(r"\b" + re.escape(p) + r"\b"), attr, value) for p, attr, value in _phrase_table()]

    def parse(self, caption: str) -> dict[int, int]:
        """The {attribute index: value index} a synthbirds caption names (as `make_caption` returns it)."""
        text, named = caption.lower(), {}
        for pattern, attr, value in self._table:
            match = pattern.search(text)
            if match is None or attr in named:
                continue
            named[attr] = value
            text = text[: match.start()] + "#" * (match.end() - match.start()) + text[match.end():]
        if not named:
            raise ValueError(f"oracle: caption {caption!r} names no synthbirds attribute it can parse")
        return named

    def encode(self, captions: list[str]) -> torch.Tensor:
        captions = check_captions(captions, "oracle")
        out = torch.zeros(len(captions), self.dim)
        for i, caption in enumerate(captions):
            for attr, value in self.parse(caption).items():
                out[i, self.offsets[attr] + value] = 1.0
        return out * (self.norm / out.norm(dim=1, keepdim=True))

    def cache_key(self) -> str:
        return f"oracle-synthbirds-n{self.norm}-v2"
