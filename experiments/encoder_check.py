"""How much of a caption each text encoder keeps: caption -> class retrieval on the test split, and binding.

    python -m experiments.encoder_check out=FILE.json [encoders=bow,rnn,oracle] [size=small]
    python -m experiments.encoder_check out=FILE.json encoders=rnn,rnn:epochs=100   # NAME:KEY=VALUE:... options

For each encoder, the built-in dataset's test split (50 unseen classes, 10 captions per image) is embedded;
captions 0-4 of every image build a class centroid (mean of the unit-normalised embeddings), and each of
captions 5-9 retrieves the class whose centroid has the highest cosine:
  retrieval_accuracy: the retrieved class is the caption's class (chance 1 / 50), with its s.e.;
  ceiling:            the same for a perfect parser (1 / #classes that agree with what the caption names),
                      since a caption names ~4 of 11 attributes and several classes may agree with it.
Binding: the cosine between a caption and the same caption with two part colours swapped ("a violet crown
and teal body feathers" / "a teal crown and violet body feathers"): 1.0 means the encoder cannot tell which
part has which colour; and, for contrast, the cosine of two captions differing in one colour.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

SWAPS = (
    ("a violet crown and teal body feathers", "a teal crown and violet body feathers"),
    ("this bird has chestnut colored wings, a violet colored head", "this bird has violet colored wings, a chestnut colored head"),
    ("a small bird with a red breast and blue wings", "a small bird with a blue breast and red wings"),
)
ONE_COLOUR = (("a red crown", "a blue crown"), ("this bird has a yellow belly", "this bird has a green belly"))


def retrieval(embeddings: torch.Tensor, class_ids: torch.Tensor) -> tuple[float, int]:
    """(N, 10, D) embeddings -> accuracy of captions 5-9 retrieving their class from captions 0-4's centroids."""
    emb = F.normalize(embeddings.float(), dim=-1)
    classes = class_ids.unique()
    centroids = torch.stack([emb[class_ids == c, :5].reshape(-1, emb.shape[-1]).mean(0) for c in classes])
    queries = emb[:, 5:].reshape(-1, emb.shape[-1])
    truth = class_ids.repeat_interleave(5)
    predicted = classes[(queries @ F.normalize(centroids, dim=-1).T).argmax(1)]
    return float((predicted == truth).float().mean()), len(truth)


def ceiling(test) -> float:
    """Retrieval accuracy of a perfect parser on captions 5-9 (ties broken at random: 1 / #agreeing classes)."""
    classes = test.class_ids.unique()
    table = torch.stack([test.attributes[test.class_ids == c][0] for c in classes])
    total, n = 0.0, 0
    for i in range(len(test)):
        for c in range(5, len(test.captions[i])):
            agree = torch.ones(len(classes), dtype=torch.bool)
            for a, v in test.caption_attributes[i][c].items():
                agree &= table[:, int(a)] == int(v)
            total, n = total + 1.0 / max(int(agree.sum()), 1), n + 1
    return total / n


def encoder_spec(text: str) -> str | dict:
    """'rnn' -> 'rnn'; 'rnn:epochs=100:dim=128' -> {'name': 'rnn', 'epochs': 100, 'dim': 128} (YAML values)."""
    name, *options = text.split(":")
    if not options:
        return name
    return {"name": name, **{k: v for o in options for k, v in OmegaConf.from_dotlist([o]).items()}}


def spec_problems(encoders: list[str]) -> list[str]:
    """One line for each `encoders=` entry naming an unregistered encoder or options it does not take."""
    from ganblocks.data.text_options import option_problems
    from ganblocks.registry import UnknownComponentError, registry

    problems = []
    for text in encoders:
        spec = encoder_spec(text)
        name, options = (spec, {}) if isinstance(spec, str) else (spec["name"], {k: v for k, v in spec.items() if k != "name"})
        try:
            registry("text_encoder").get(name, where="encoders")
        except UnknownComponentError as error:
            problems.append(str(error))
            continue
        problems += [f"encoders={text}: {p}" for p in option_problems(name, options, where=name)]
    return problems


def check(encoders: list[str], size: str = "small") -> dict:
    from ganblocks.data.dataset import build_dataset, resolve_text_encoder

    result = {"what": "caption -> class retrieval on the test split (captions 0-4 of each image build class "
                      "centroids, captions 5-9 query), and cosine of captions with two part colours swapped",
              "dataset": f"synthbirds size={size} test split", "encoders": {}}
    for name in encoders:
        spec = encoder_spec(name)
        test = build_dataset("synthbirds", "test", 64, text_encoder=spec, size=size, seed=0)
        acc, n = retrieval(test.embeddings, test.class_ids)
        encoder = test.text_encoder if test.text_encoder is not None else resolve_text_encoder(spec, dataset="synthbirds")

        def cos(a: str, b: str) -> float:
            e = encoder.encode([a, b])
            return round(float(F.cosine_similarity(e[:1], e[1:])), 3)

        result["encoders"][name] = {
            "dim": int(test.embeddings.shape[-1]), "retrieval_accuracy": round(acc, 4),
            "retrieval_accuracy_se": round(math.sqrt(acc * (1 - acc) / n), 4), "n_queries": n,
            "classes": int(test.class_ids.unique().numel()),
            "swap_cosine": {f"{a} / {b}": cos(a, b) for a, b in SWAPS},
            "one_colour_cosine": {f"{a} / {b}": cos(a, b) for a, b in ONE_COLOUR},
        }
        result["chance"] = round(1 / int(test.class_ids.unique().numel()), 4)
        result["ceiling"] = round(ceiling(test), 4)
    return result


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = OmegaConf.from_dotlist(argv)
    if args.get("out") is None:
        print("experiments.encoder_check: needs out=<file.json>", file=sys.stderr)
        return 2
    from ganblocks.io import atomic_write_json

    encoders = str(args.get("encoders", "bow,rnn,oracle")).split(",")
    problems = spec_problems(encoders)
    if problems:  # before any encoder is trained or any data built
        print(f"experiments.encoder_check: {'; '.join(problems)}", file=sys.stderr)
        return 2
    result = check(encoders, str(args.get("size", "small")))
    atomic_write_json(Path(args.out), result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
