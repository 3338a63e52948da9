"""SynthBirds captions: a small grammar with synonyms and varied order; only true attributes are named."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ganblocks.data.synthbirds.attributes import ATTRIBUTE_INDEX, SPEC, _as_label_row

_COLOR_SYNONYMS = {
    "red": ("red", "scarlet", "crimson"),
    "orange": ("orange", "tangerine"),
    "yellow": ("yellow", "golden"),
    "green": ("green", "leaf green"),
    "blue": ("blue", "azure"),
    "purple": ("purple", "violet"),
    "brown": ("brown", "chestnut"),
    "black": ("black", "jet black"),
    "white": ("white", "snowy white"),
    "grey": ("grey", "gray"),
    "pink": ("pink", "rosy"),
    "teal": ("teal", "blue green"),
}
_PHRASES: dict[str, dict[str, tuple[str, ...]] | tuple[str, ...]] = {
    "body_color": ("a {c} body", "{c} body feathers", "a mostly {c} body"),
    "wing_color": ("{c} wings", "{c} wing feathers", "{c} colored wings"),
    "head_color": ("a {c} head", "a {c} crown", "a {c} colored head"),
    "breast_color": ("a {c} breast", "a {c} belly", "a {c} chest"),
    "beak_shape": {
        "short": ("a short beak", "a short stubby bill", "a small cone shaped beak"),
        "long": ("a long pointed beak", "a long thin bill", "a long sharp beak"),
        "hooked": ("a hooked beak", "a curved bill", "a hooked bill"),
        "thick": ("a thick beak", "a heavy bill", "a thick strong beak"),
    },
    "tail_shape": {
        "pointed": ("a pointed tail", "a long pointy tail"),
        "fan": ("a fan shaped tail", "a fanned tail"),
        "forked": ("a forked tail", "a split tail"),
        "square": ("a square tail", "a square tipped tail"),
    },
    "breast_pattern": {
        "plain": ("a plain breast", "an unmarked belly"),
        "striped": ("thin stripes on its breast", "a finely striped belly", "fine streaks on the chest"),
    },
    "wing_bars": {
        "none": ("no wing bars", "wings without bars"),
        "present": ("pale wing bars", "thin bars on the wings", "two wing bars"),
    },
    "eye_ring": {
        "none": ("no eye ring",),
        "present": ("an eye ring", "a pale ring around the eye", "a thin eye ring"),
    },
    "back_pattern": {
        "plain": ("a plain back", "an unspotted back"),
        "spotted": ("small spots on its back", "a speckled back", "a finely spotted back"),
    },
}
_SIZE_WORDS = {"small": ("small", "little", "tiny"), "medium": ("medium sized", "mid sized"), "large": ("large", "big")}
_OPENERS = ("this {s}bird has {x}", "a {s}bird with {x}", "this is a {s}bird with {x}", "the {s}bird has {x}",
            "{x} make up this {s}bird", "this {s}bird is covered with {x}")


def _phrase(attr: int, value: int, rng: np.random.Generator) -> str:
    a = SPEC[attr]
    table = _PHRASES[a.name]
    if isinstance(table, dict):
        options = table[a.values[value]]
        return options[int(rng.integers(len(options)))]
    syn = _COLOR_SYNONYMS[a.values[value]]
    return table[int(rng.integers(len(table)))].format(c=syn[int(rng.integers(len(syn)))])


def make_caption(
    attributes: Mapping[int | str, int | str] | Sequence[int],
    rng: np.random.Generator | int = 0,
    subset: Sequence[int] | None = None,
) -> tuple[str, dict[int, int]]:
    """A caption naming a random subset of `attributes` (or exactly `subset`), and what it names.

    Args:
        attributes: {attribute name or index: value name or index}, or a full label row (A,).
        rng: a numpy Generator or a seed.
        subset: attribute indices to name; default a random 2-5 of the given ones (a present fine
            attribute is included with probability 0.4, an absent one with 0.1).

    Returns:
        (caption, {attribute index: value index}) where the dict holds exactly the attributes named.
    """
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    labels = _as_label_row(attributes)
    if subset is None:
        coarse = [i for i in labels if not SPEC[i].fine]
        k = min(len(coarse), int(rng.integers(2, 5)))
        chosen = [int(i) for i in rng.permutation(coarse)[:k]] if coarse else []
        for i in (i for i in labels if SPEC[i].fine):
            present = labels[i] != 0
            if rng.random() < (0.4 if present else 0.1):
                chosen.append(i)
        if not chosen:
            chosen = [next(iter(labels))]
    else:
        chosen = [int(i) for i in subset]
        missing = [i for i in chosen if i not in labels]
        if missing:
            raise ValueError(f"subset names attributes {missing} that are not in the given attributes")
    named = {i: labels[i] for i in chosen}
    size_idx = ATTRIBUTE_INDEX["size"]
    size = ""
    if size_idx in named:
        words = _SIZE_WORDS[SPEC[size_idx].values[named[size_idx]]]
        size = words[int(rng.integers(len(words)))] + " "
    parts = [_phrase(i, named[i], rng) for i in rng.permutation([i for i in chosen if i != size_idx])]
    if not parts:  # only the size was chosen
        return f"this is a {size}bird", named
    body = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    opener = _OPENERS[int(rng.integers(len(_OPENERS)))]
    if opener.startswith("{x}") and len(parts) == 1:
        opener = _OPENERS[0]
    return opener.format(s=size, x=body), named
