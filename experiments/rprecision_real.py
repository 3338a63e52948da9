"""R-precision of real SynthBirds test images, two ways side by side: the attribute judge and the papers' DAMSM.

    python -m experiments.rprecision_real [size=small] [imsize=128] [out=FILE.json] [epochs=20] [dim=256] [width=32] [seed=0]

The real test images are split as the evaluation's `real` row splits them (`real_halves`: half A plays the
generated set, each image with one of its own captions). Each metric is computed on them with their own
captions and with the captions shuffled over the images (the text-blind control; chance 1 / 100):
  r_precision        the built-in attribute judge (the project's R-precision);
  r_precision_damsm  DAMSM sentence cosine with encoders pretrained on the train split (pretrain_damsm with
                     `epochs`, `dim`, `width`, cached by the dataset's content), rivals from other classes, 10 splits.
Prints one JSON object (also written to `out`), ending with a line naming the file.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch


def measure(size: str = "small", imsize: int = 128, epochs: int = 20, dim: int = 256, width: int = 32, seed: int = 0) -> dict:
    from ganblocks.data import build_dataset
    from ganblocks.evaluation.builtin import evaluator_for_dataset
    from ganblocks.evaluation.evaluator import center_crop
    from ganblocks.evaluation.reference import real_halves
    from ganblocks.evaluation.run import DEFAULTS
    from ganblocks.registry import build

    t0 = time.perf_counter()
    test = build_dataset("synthbirds", "test", imsize, None, size=size)
    evaluator = evaluator_for_dataset(test, image_size=DEFAULTS["evaluator_size"],
                                      renders_per_class=DEFAULTS["evaluator_renders_per_class"],
                                      free_renders=DEFAULTS["evaluator_free_renders"], epochs=DEFAULTS["evaluator_epochs"],
                                      width=DEFAULTS["evaluator_width"])
    samples = real_halves(center_crop(test.images, imsize), test, len(test), None, seed, evaluator=evaluator,
                          real_split="test", resize="real test images center-cropped")
    n = len(samples.fake) // 10 * 10
    judge = build("metric", "r_precision", mismatched=99)
    damsm = build("metric", "r_precision_damsm", n_images=n, splits=10, pretrain={"epochs": epochs, "dim": dim, "width": width})
    out = {"dataset": f"synthbirds {size}", "imsize": imsize, "n_images": len(samples.fake), "seed": seed,
           "pretrain": damsm.pretrain}
    perm = torch.randperm(len(samples.fake), generator=torch.Generator().manual_seed(seed + 1))
    shuffled = real_halves(center_crop(test.images, imsize), test, len(test), None, seed, evaluator=evaluator,
                           real_split="test", resize="real test images center-cropped")
    shuffled.fake_texts = [samples.fake_texts[int(i)] for i in perm]
    shuffled.fake_values, shuffled.fake_image_ids = samples.fake_values[perm], samples.fake_image_ids[perm]
    shuffled.fake_class_ids = samples.fake_class_ids[perm]
    for label, s in (("own captions", samples), ("shuffled captions", shuffled)):
        rec_j = judge(s)["r_precision"]
        rec_d = damsm(s)["r_precision_damsm"]
        out[label] = {"r_precision (judge)": [round(rec_j["value"], 4), round(rec_j["std"], 4)],
                      "r_precision_damsm": [round(rec_d["value"], 4), round(rec_d["std"], 4), round(rec_d["caption_se"], 4)]}
    out["damsm_encoders"] = rec_d["evaluator"]
    out["judge"] = rec_j["evaluator"]
    out["note"] = ("judge: [value, s.e. over caption groups]; damsm: [mean over 10 splits, std over splits, s.e. "
                   "over caption groups]; a caption group is a class here (as in the real row); chance 0.01")
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "-h" in argv or "--help" in argv:
        print(__doc__)
        return 0
    bad = [a for a in argv if "=" not in a]
    if bad:
        print(f"settings are key=value, got {bad}; accepted: size, imsize, out, epochs, dim, width, seed", file=sys.stderr)
        return 2
    args = dict(a.split("=", 1) for a in argv)
    unknown = set(args) - {"size", "imsize", "out", "epochs", "dim", "width", "seed"}
    if unknown:
        print(f"unknown settings {sorted(unknown)}; accepted: size, imsize, out, epochs, dim, width, seed", file=sys.stderr)
        return 2
    result = measure(args.get("size", "small"), int(args.get("imsize", 128)), int(args.get("epochs", 20)),
                     int(args.get("dim", 256)), int(args.get("width", 32)), int(args.get("seed", 0)))
    text = json.dumps(result, indent=1)
    print(text)
    if "out" in args:
        from ganblocks.io import atomic_write_json

        atomic_write_json(Path(args["out"]), result)
        print(f"wrote {args['out']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
