"""Does training help? A trained Stage-I against its own untrained weights, on the built-in evaluator.

    python -m experiments.check_stage1 run_dir=outputs/check [profile=auto] [n_captions=1000] [split=test]
                                       [any experiments.train override]

Trains `pipeline=stage1` into run_dir (resuming if it is there), keeping the step-0 weights of the very same
run as the untrained baseline. Both generators draw one image for each of `n_captions` captions of `split`:
`test` (default) holds unseen classes, as CUB's test split, so it asks whether G composes attributes it never
saw together; `train` holds the captions G trained on, so it asks whether G learnt its own data at all. The
built-in evaluator of that split (trained on fresh renders the GAN never sees; class head over the split's
classes) scores:
  class_accuracy:     the predicted class is the caption's image's class (chance = 1 / test classes);
  attribute_accuracy: per caption-named attribute, the evaluator's attribute head agrees with the caption
                      (and `per_attribute`, the same for each attribute, beside `per_attribute_chance`).
Each accuracy comes with its binomial standard error (`*_se`). Real test images (centre crop) and
`caption_ceiling_class_accuracy` bound what is reachable: a generator that drew exactly what each caption
names, and anything for what it leaves out, would name the class with probability 1 / (the split's classes
whose attributes agree with the caption). Writes run_dir/check_stage1.json (split=test) or
run_dir/check_stage1_train.json (split=train) and prints it.

`profile=auto` (the default, as everywhere) is `smoke` on CPU: it proves the check runs, in about
a minute on 2 cores (the first time also builds the data and trains the evaluator, several minutes,
cached after). The numbers that answer the question need `profile=cpu` (Stage-I at 64 px, 1,000 steps: about
10 minutes on CPU, plus ~8 once to pre-train its text encoder) or `profile=small` on a GPU.

Examples:
  python -m experiments.check_stage1 run_dir=outputs/check                 # smoke on CPU, small on CUDA
  python -m experiments.check_stage1 run_dir=outputs/check profile=cpu n_captions=5000
  python -m experiments.check_stage1 run_dir=outputs/check profile=cpu split=train
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

OPTIONS = {  # key -> (default, what it is); every other key=value is an experiments.train override
    "run_dir": ("required", "the run folder (resumed when it is there)"),
    "n_captions": ("1000", "captions scored (one image each, trained and untrained)"),
    "seed": ("0", "which captions and which noise"),
    "split": ("test", "test (unseen classes) | train (the captions G trained on)"),
}
SPLITS = ("test", "train")
EXPECTED_TIME = {"smoke": "about a minute on CPU", "cpu": "about 10 minutes on CPU (+8 once for its text encoder)",
                 "small": "over half an hour on CPU, 1-2 minutes on a GPU (estimate)", "paper": "hours on a GPU"}


def result_path(run_dir: Path, split: str) -> Path:
    return run_dir / ("check_stage1.json" if split == "test" else f"check_stage1_{split}.json")


def check(run_dir: Path, overrides: list[str], n_captions: int = 1000, seed: int = 0, split: str = "test") -> dict:
    from experiments.config import compose
    from ganblocks.evaluation.builtin import evaluator_for_dataset
    from ganblocks.evaluation.evaluator import center_crop
    from ganblocks.evaluation.sampling import generate
    from ganblocks.io import atomic_torch_save, atomic_write_json
    from ganblocks.training import assemble, load_generator, train
    from ganblocks.training.checkpoint import load_checkpoint

    if split not in SPLITS:
        raise ValueError(f"split={split!r}; expected one of {', '.join(SPLITS)}")
    cfg = compose(["pipeline=stage1", *overrides])
    stage = cfg.pipeline.stages[0]
    untrained_path = run_dir / "untrained_generator.pt"
    if not untrained_path.is_file():
        train(cfg, run_dir, stop_after=0)  # builds the models and checkpoints step 0
        atomic_torch_save(untrained_path, load_checkpoint(run_dir / "checkpoints" / stage.name / "last.pt")["generator"])
    status = train(cfg, run_dir)
    if status["status"] != "finished":
        raise RuntimeError(f"training did not finish: {status}")

    test = assemble.build_training_dataset(cfg, int(stage.imsize), split=split)
    m = cfg.metrics  # the profile's evaluator recipe (smoke: a quick judge; small: the committed one)
    evaluator = evaluator_for_dataset(test, image_size=int(m.evaluator_size),
                                      renders_per_class=int(m.evaluator_renders_per_class),
                                      free_renders=int(m.evaluator_free_renders), epochs=int(m.evaluator_epochs),
                                      width=int(m.evaluator_width), progress=False)
    head_classes = torch.tensor(evaluator.meta["class_ids"])
    n = min(n_captions, len(test) * len(test.captions[0]))
    pick = torch.randperm(len(test) * len(test.captions[0]), generator=torch.Generator().manual_seed(seed))[:n]
    image_idx, caption_idx = pick // len(test.captions[0]), pick % len(test.captions[0])
    text = torch.as_tensor(test.embeddings)[image_idx, caption_idx].float()
    true_class = test.class_ids[image_idx]

    def scores(images: torch.Tensor) -> dict:
        out = evaluator.outputs(images)
        class_acc = float((head_classes[out.class_logits.argmax(1)] == true_class).float().mean())
        names = [spec[0] for spec in test.attribute_spec]
        hits, total = [0] * len(names), [0] * len(names)
        for k, (i, c) in enumerate(zip(image_idx.tolist(), caption_idx.tolist())):
            for attribute, value in test.caption_attributes[i][c].items():
                hits[int(attribute)] += int(out.attribute_logits[int(attribute)][k].argmax()) == int(value)
                total[int(attribute)] += 1
        attr_acc = sum(hits) / max(sum(total), 1)
        return {"class_accuracy": round(class_acc, 4), "class_accuracy_se": round(_se(class_acc, n), 4),
                "attribute_accuracy": round(attr_acc, 4), "attribute_accuracy_se": round(_se(attr_acc, sum(total)), 4),
                "per_attribute": {name: round(h / t, 4) for name, h, t in zip(names, hits, total) if t}}

    trained = load_generator(run_dir)
    untrained = load_generator(run_dir)
    untrained.load_state_dict(torch.load(untrained_path, map_location="cpu", weights_only=True))
    result = {
        "what": f"Stage-I class / caption-attribute accuracy of generated images on {split}-split captions "
                f"({'unseen classes' if split == 'test' else 'the captions G trained on'}), scored by the built-in "
                "evaluator of that split (trained on fresh renders)",
        "split": split, "n_captions": n, "classes": len(head_classes), "chance_class_accuracy": round(1 / len(head_classes), 4),
        "evaluator": evaluator.name, "evaluator_heldout_accuracy": evaluator.accuracy,
        "profile": cfg.profile_name, "steps": status["step"], "images_per_sec": status["images_per_sec"],
        "caption_ceiling_class_accuracy": round(caption_ceiling(test, image_idx, caption_idx), 4),
        "per_attribute_chance": {spec[0]: round(1 / len(spec[1]), 4) for spec in test.attribute_spec},
        "trained": scores(generate(trained, text, 1, seed)[0]),
        "untrained": scores(generate(untrained, text, 1, seed)[0]),
        "real_images": scores(center_crop(test.images[image_idx], int(stage.imsize))),
    }
    atomic_write_json(result_path(run_dir, split), result)
    return result


def _se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / max(n, 1))


def caption_ceiling(test, image_idx: torch.Tensor, caption_idx: torch.Tensor) -> float:
    """Class accuracy of a perfect caption-follower: mean over captions of 1 / #test classes agreeing with it."""
    classes = test.class_ids.unique()
    class_attrs = torch.stack([test.attributes[test.class_ids == c][0] for c in classes])  # (C, A)
    total = 0.0
    for i, c in zip(image_idx.tolist(), caption_idx.tolist()):
        agree = torch.ones(len(classes), dtype=torch.bool)
        for attribute, value in test.caption_attributes[i][c].items():
            agree &= class_attrs[:, int(attribute)] == int(value)
        total += 1.0 / max(int(agree.sum()), 1)
    return total / max(len(image_idx), 1)


def usage() -> str:
    from experiments.usage import render

    options = "\n".join(f"  {k}={d}".ljust(24) + f"  # {what}" for k, (d, what) in OPTIONS.items())
    return render(__doc__, [("Options (key=value)", options + "\n  KEY=VALUE               # any "
                             "experiments.train override (python -m experiments.train --help)")])


def main(argv: list[str] | None = None) -> int:
    from experiments.config import resolve_auto_profile
    from experiments.usage import wants_help

    argv = list(sys.argv[1:] if argv is None else argv)
    if wants_help(argv):
        print(usage(), end="")
        return 0
    ours = OmegaConf.from_dotlist([a for a in argv if a.split("=", 1)[0] in OPTIONS])
    overrides = [a for a in argv if a.split("=", 1)[0] not in OPTIONS]
    if ours.get("run_dir") is None:
        print("experiments.check_stage1: needs run_dir=<folder>", file=sys.stderr)
        return 2
    from experiments.config import ConfigError
    from experiments.launch import check_run_dir
    from ganblocks.io import NoSpaceError

    try:
        check_run_dir(str(ours.run_dir))  # a file in the way or a full disk: one line, before any work
    except (ConfigError, NoSpaceError) as error:
        print(f"experiments.check_stage1: {error}", file=sys.stderr)
        return 2
    overrides = resolve_auto_profile(overrides)
    profile = [o.split("=", 1)[1] for o in overrides if o.startswith("profile=")][-1]
    print(f"experiments.check_stage1: profile={profile}, expected {EXPECTED_TIME.get(profile, '?')} "
          "(plus the data and evaluator the first time)", file=sys.stderr)
    split = str(ours.get("split", "test"))
    if split not in SPLITS:
        print(f"experiments.check_stage1: split={split!r}; expected one of {', '.join(SPLITS)}", file=sys.stderr)
        return 2
    result = check(Path(ours.run_dir), overrides, int(ours.get("n_captions", 1000)), int(ours.get("seed", 0)), split)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
