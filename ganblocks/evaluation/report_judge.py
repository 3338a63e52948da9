"""How well the built-in judge reads pixels: counterfactual flips, blur, held-out accuracy; a JSON report.

    python -m ganblocks.evaluation.report_judge                 # writes docs/results/evaluator.json
    python -m ganblocks.evaluation.report_judge --export        # also commits the weights (artifacts.py)
    python -m ganblocks.evaluation.report_judge out=PATH pairs=200 size=small

Measures of the evaluator the tables use (the `small` and `default` builds share it):
- held-out class accuracy (class-faithful renders) and per-attribute accuracy (free renders);
- counterfactual flip rate per attribute: render a bird, render it again with the same seed and one
  attribute changed to another value, and count how often the judge's reading follows to the new value,
  at 64 px (where coarse attributes show) and at 128 and 256 px (where fine ones do too);
- blur drop: fine-attribute accuracy on sharp 128 px free renders minus that on the same renders blurred
  (Gaussian, sigma 2.5 px), over the fine attributes judged at 128 px: a judge that reads fine detail loses it
  with the detail;
- the detail reader (`ganblocks.evaluation.detail`) that supplies some attributes' logits, its settings and
  held-out accuracy, and the image side each attribute is judged from (`min_size`).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganblocks.evaluation.builtin import free_rows, row_renderer
from ganblocks.evaluation.evaluator import Evaluator, attribute_infos, center_crop

DEFAULT_OUT = Path("docs/results/evaluator.json")
PAIR_SEED = 5000   # counterfactual pairs render with (PAIR_SEED + attribute, i): no build, class or free render
BLUR_SEED = 6000


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of uint8 images (kernel radius ceil(3 sigma), reflected borders); same shape."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    img = images.float()
    c = img.shape[1]
    pad = torch.nn.functional.pad(img, (radius, radius, 0, 0), mode="reflect")
    img = torch.nn.functional.conv2d(pad, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    pad = torch.nn.functional.pad(img, (0, 0, radius, radius), mode="reflect")
    img = torch.nn.functional.conv2d(pad, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return img.round().clamp(0, 255).to(torch.uint8)


def render_at(dataset: Any, rows: Tensor, seed: int, size: int) -> Tensor:
    """Renders of attribute rows as the GAN's images of side `size` look: drawn at the load size, centre-cropped."""
    return center_crop(row_renderer(dataset)(rows, seed, size * 76 // 64), size).contiguous()


def counterfactual_pairs(dataset: Any, attribute: int, n: int, size: int, seed: int = PAIR_SEED) -> tuple:
    """`n` renders and their twins that differ only in `attribute` (set to another value drawn uniformly).

    Returns (images, twins, rows, twin_rows): uint8 (n, 3, size, size) twice, int64 (n, A) twice.
    """
    rows = free_rows(dataset.attribute_spec, n, seed + attribute)
    k = attribute_infos(dataset.attribute_spec)[attribute].num_values
    shift = torch.randint(1, k, (n,), generator=torch.Generator().manual_seed(seed + 100 + attribute))
    twin_rows = rows.clone()
    twin_rows[:, attribute] = (rows[:, attribute] + shift) % k
    return (render_at(dataset, rows, seed + attribute, size), render_at(dataset, twin_rows, seed + attribute, size),
            rows, twin_rows)


def flip_rates(evaluator: Evaluator, dataset: Any, size: int, n: int, attributes: list[int] | None = None,
               seed: int = PAIR_SEED) -> dict[str, dict]:
    """Per attribute, on `n` counterfactual pairs at `size` px:

    follows: share of twins the judge reads as the new value (the counterfactual accuracy);
    changes: share of pairs whose reading differs between the render and its twin;
    original: share of the original renders read correctly.
    """
    infos = evaluator.attributes
    out = {}
    for a in attributes if attributes is not None else range(len(infos)):
        images, twins, rows, twin_rows = counterfactual_pairs(dataset, a, n, size, seed)
        before = evaluator.outputs(images).attribute_logits[a].argmax(1)
        after = evaluator.outputs(twins).attribute_logits[a].argmax(1)
        # shares as counts / n in Python floats: a float32 mean of 90 hits in 100 is 0.89999998, not 0.9
        out[infos[a].name] = {"follows": int((after == twin_rows[:, a]).sum()) / n,
                              "changes": int((after != before).sum()) / n,
                              "original": int((before == rows[:, a]).sum()) / n, "pairs": n}
    return out


def blur_drop(evaluator: Evaluator, dataset: Any, size: int = 128, sigma: float = 2.5, n: int = 400,
              seed: int = BLUR_SEED) -> dict:
    """Fine-attribute accuracy of the judge on `n` free renders at `size` px, sharp and blurred (sigma px)."""
    rows = free_rows(dataset.attribute_spec, n, seed)
    images = render_at(dataset, rows, seed, size)
    judged = set(evaluator.judged_at(size))
    fine = [a for a, info in enumerate(evaluator.attributes) if info.fine and a in judged]

    def accuracy(x: Tensor) -> float:
        logits = evaluator.outputs(x).attribute_logits
        return float(torch.stack([(logits[a].argmax(1) == rows[:, a]).float().mean() for a in fine]).mean())

    sharp, blurred = accuracy(images), accuracy(gaussian_blur(images, sigma))
    return {"size": size, "sigma": sigma, "n": n, "attributes": [evaluator.attributes[a].name for a in fine],
            "fine_sharp": sharp, "fine_blurred": blurred, "drop": sharp - blurred}


def benchmark_evaluator(size: str = "small", progress: bool = True, train_detail: bool = False) -> tuple:
    """The evaluator the tables use for the built-in dataset `size` (metrics defaults), and its test classes.
    `train_detail`: train (and cache) the detail reader when none ships or is cached (for --export)."""
    from ganblocks.evaluation.builtin import evaluator_for_dataset, synthbirds_classes
    from ganblocks.evaluation.run import DEFAULTS

    test = synthbirds_classes(size, "test")
    evaluator = evaluator_for_dataset(test, image_size=int(DEFAULTS["evaluator_size"]),
                                      renders_per_class=int(DEFAULTS["evaluator_renders_per_class"]),
                                      free_renders=int(DEFAULTS["evaluator_free_renders"]),
                                      epochs=int(DEFAULTS["evaluator_epochs"]), width=int(DEFAULTS["evaluator_width"]),
                                      detail=not train_detail, progress=progress)
    if train_detail:
        from ganblocks.evaluation.builtin import DETAIL_RECIPE, detail_reader_for
        from ganblocks.evaluation.detail import DetailedEvaluator

        reader = detail_reader_for(test, evaluator, DETAIL_RECIPE, progress, train=True)
        evaluator = evaluator if reader is None else DetailedEvaluator(evaluator, reader)
    return evaluator, test


def report(evaluator: Evaluator, dataset: Any, pairs: int = 200, blur_n: int = 400) -> dict:
    """Everything the module docstring lists, as one JSON-able dict."""
    fine = [a for a, i in enumerate(evaluator.attributes) if i.fine]
    detail = evaluator.meta.get("detail")
    return {
        "evaluator": evaluator.name,
        "version": evaluator.meta.get("version"),
        "artifact": evaluator.meta.get("artifact"),
        "recipe": evaluator.meta.get("trained_on"),
        "settings": {k: evaluator.meta.get(k) for k in ("image_size", "width", "feature_dim", "epochs", "batch_size",
                                                         "lr", "low_res_fraction", "seed")},
        "min_size": {i.name: i.min_size for i in evaluator.attributes},
        "detail_reader": None if detail is None else {
            k: detail.get(k) for k in ("key", "version", "weights", "artifact", "reads", "batch_size", "lr",
                                       "other_fraction", "seed", "n_train", "n_heldout", "accuracy", "train_s",
                                       "train_s_per_branch", "threads")},
        "heldout": {"n_class_renders": evaluator.meta.get("n_heldout"),
                    "n_free_renders": evaluator.meta.get("n_free_heldout"), **evaluator.accuracy},
        "flip_rate": {"64": flip_rates(evaluator, dataset, 64, pairs),
                      "128": flip_rates(evaluator, dataset, 128, pairs),
                      "256": flip_rates(evaluator, dataset, 256, pairs, fine)},
        "blur": blur_drop(evaluator, dataset, 128, 2.5, blur_n),
    }


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(__doc__.strip())
        return 0
    export = "--export" in args
    opts = dict(a.split("=", 1) for a in args if "=" in a)
    unknown = [a for a in args if a != "--export" and "=" not in a] + \
        [k for k in opts if k not in ("out", "pairs", "size", "blur_n")]
    if unknown:
        print(f"report_judge: unknown argument(s) {unknown}; accepted: out=PATH pairs=N blur_n=N size=NAME "
              "--export --help", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    evaluator, test = benchmark_evaluator(opts.get("size", "small"), train_detail=export)
    if export:
        from ganblocks.evaluation.artifacts import export as export_weights, export_detail

        base = getattr(evaluator, "base", evaluator)
        if "artifact" not in base.meta:  # committed weights stay byte for byte as they are
            print(f"exported {export_weights(base)}", file=sys.stderr)
        if getattr(evaluator, "detail", None) is not None:
            print(f"exported {export_detail(evaluator.detail)}", file=sys.stderr)
    result = report(evaluator, test, int(opts.get("pairs", 200)), int(opts.get("blur_n", 400)))
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    out = Path(opts.get("out", DEFAULT_OUT))
    from ganblocks.io import atomic_write_json

    atomic_write_json(out, result)
    print(json.dumps({k: result[k] for k in ("evaluator", "heldout", "blur")}, indent=1))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
