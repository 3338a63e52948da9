"""Text-following against training steps: one Stage-I run, scored at several steps by the built-in evaluator.

    python -m experiments.learning_curve run_dir=DIR out=FILE.jsonl steps=0,250,500,1000 [n_captions=1000]
                                         [profile=cpu] [any training override]
    python -m experiments.learning_curve table FILE.jsonl ...      # the points as one Markdown table
`until=STEP` measures the points up to STEP and leaves the run paused there; the same command without it
continues the curve (exact resume).

Trains `pipeline=stage1` into run_dir, pausing (exact resume) at each of `steps` (0 = the untrained
weights; the last one is the run's `train.max_steps`, set from it). At each point the generator (EMA
weights when the run keeps them) draws one image for each of `n_captions` test-split captions (unseen
classes; fixed captions and noise across points and runs, whatever the text encoder) and the evaluator of
the test split scores:
  class_accuracy:  the evaluator's class head names the caption's image's class (chance 1 / 50);
  coarse_accuracy: mean over the coarse attributes (4 part colours, size, beak, tail) of how often the
                   evaluator's attribute head reads the value the caption names (as the `attributes`
                   metric's attr_coarse);
  r_precision:     the caption ranks first among 1 + 99 captions of other images, of any class, under the
                   judge (as the `r_precision` metric; chance 0.01). Curves made before this was fixed
                   (every file in docs/results/learning/curves/) drew rivals by mistake among the captions of
                   rows whose index differs from the caption's class id, so a rival could be another caption of
                   the image itself;
  judge_margin:    R-precision's continuous twin: the judge's score (mean log-probability of the named
                   values) of the image's own caption minus the mean over the same 99 mismatched ones, in
                   nats (0 for images that ignore the text); a paired measure with a small standard error;
with binomial standard errors, and the training log's means over the last logged interval (loss_d,
d_real, d_wrong, d_fake, KL, ...). A first line (`point: "real"`) scores real test images for the same
captions. Each point is appended to `out` as it is measured, so an interrupted curve resumes.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

OPTIONS = ("run_dir", "out", "steps", "n_captions", "seed", "until")


def _se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / max(n, 1))


def score(evaluator, images: torch.Tensor, values: torch.Tensor, class_ids: torch.Tensor, image_ids: torch.Tensor,
          pool_values: torch.Tensor, pool_image_ids: torch.Tensor, seed: int = 0) -> dict:
    """Class, coarse-attribute and R-precision scores of uint8 (K, 3, S, S) images for K captions.

    values: (K, A) named attribute values (-1 unnamed); class_ids: (K,) the captions' classes; image_ids: (K,)
    the dataset rows they describe; pool_values, pool_image_ids: every caption of the split and its row
    (`caption_pool`): the R-precision rivals are captions of other rows, of any class, as in the metric.
    """
    from ganblocks.metrics.base import caption_scores
    from ganblocks.metrics.judge import draw_mismatched, r_precision_hits

    out = evaluator.outputs(images)
    head_classes = torch.tensor(evaluator.meta["class_ids"])
    k = len(values)
    class_acc = float((head_classes[out.class_logits.argmax(1)] == class_ids).float().mean())
    coarse = [a for a, info in enumerate(evaluator.attributes) if not info.fine and bool((values[:, a] >= 0).any())]
    per_attr, n_coarse = {}, 0
    for a in coarse:
        named = values[:, a] >= 0
        per_attr[evaluator.attributes[a].name] = float((out.attribute_logits[a][named].argmax(1) == values[named, a]).float().mean())
        n_coarse += int(named.sum())
    coarse_acc = sum(per_attr.values()) / max(len(per_attr), 1)
    logp = [logits.double().log_softmax(1) for logits in out.attribute_logits]
    # R-precision and the margin read only the attributes judged at this size (coarse ones at 64 px)
    values, pool_values = (evaluator.judged_values(v, int(images.shape[-1])) for v in (values, pool_values))
    mismatched = draw_mismatched(image_ids, pool_image_ids, 99, seed)
    hits = r_precision_hits(logp, values, pool_values, mismatched)
    r_prec = float(hits.mean())
    scores = caption_scores(logp, torch.cat([values[:, None], pool_values[mismatched]], dim=1))  # (K, 100)
    margin = scores[:, 0] - scores[:, 1:].mean(1)
    return {"class_accuracy": round(class_acc, 4), "class_accuracy_se": round(_se(class_acc, k), 4),
            "coarse_accuracy": round(coarse_acc, 4), "coarse_accuracy_se": round(_se(coarse_acc, n_coarse), 4),
            "r_precision": round(r_prec, 4), "r_precision_se": round(float(hits.std()) / math.sqrt(k), 4),
            "judge_margin": round(float(margin.mean()), 4), "judge_margin_se": round(float(margin.std()) / math.sqrt(k), 4),
            "per_coarse_attribute": {name: round(v, 4) for name, v in per_attr.items()}}


def _generator_at(cfg, run_dir: Path):
    """The Stage-I generator of run_dir's newest checkpoint (last.pt while paused, else final.pt)."""
    from ganblocks.training import assemble
    from ganblocks.training.checkpoint import load_checkpoint

    stage = cfg.pipeline.stages[0]
    folder = run_dir / "checkpoints" / stage.name
    path = folder / "last.pt" if (folder / "last.pt").is_file() else folder / "final.pt"
    state = load_checkpoint(path, map_location="cpu")
    G, _ = assemble.build_stage_models(cfg, stage, state["text_dim"], None)
    G.load_state_dict(state["ema"] if state.get("ema") is not None else state["generator"])
    return G.eval().requires_grad_(False), int(state.get("step", -1))


def _last_log(run_dir: Path) -> dict:
    path = run_dir / "log.jsonl"
    if not path.is_file():
        return {}
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    return json.loads(lines[-1]) if lines else {}


def curve(run_dir: Path, out: Path, steps: list[int], overrides: list[str], n_captions: int = 1000,
          seed: int = 0, split: str = "test", evaluator_kwargs: dict | None = None,
          until: int | None = None) -> list[dict]:
    """Train and score at each of `steps`; append each point to `out` (JSONL); return all points.

    split: whose captions G draws and whose evaluator scores ("test": unseen classes; "train": the
    captions G trains on). evaluator_kwargs: options of `evaluator_for_dataset` (renders_per_class, epochs,
    image_size), for quick checks; the default is the evaluator every table uses. until: measure only
    the points up to this step now (the run stays paused there; the same command without it continues).
    """
    from experiments.config import compose
    from ganblocks.evaluation.builtin import evaluator_for_dataset
    from ganblocks.evaluation.evaluator import center_crop
    from ganblocks.evaluation.sampling import caption_pool, evaluation_captions, generate
    from ganblocks.io import append_jsonl
    from ganblocks.training import assemble, train
    from ganblocks.training.state import read_status

    steps = sorted(set(int(s) for s in steps))
    cfg = compose(["pipeline=stage1", *overrides, f"train.max_steps={steps[-1]}"])
    stage = cfg.pipeline.stages[0]
    test = assemble.build_training_dataset(cfg, int(stage.imsize), split=split)
    evaluator = evaluator_for_dataset(test, progress=False, **(evaluator_kwargs or {}))
    captions = evaluation_captions(test, n_captions, seed)
    pool_values, pool_image_ids = caption_pool(test)
    done = [json.loads(ln) for ln in out.read_text().splitlines() if ln.strip()] if out.is_file() else []
    base = {"run": run_dir.name, "profile": cfg.profile_name, "text_encoder": cfg.data.text_encoder,
            "text_encoder_options": assemble.text_encoder_options(cfg),
            "kl_weight": float(cfg.loss.kl_weight), "preset": cfg.model.preset, "gf_dim": cfg.model.gf_dim,
            "df_dim": cfg.model.df_dim, "condition_dim": cfg.model.condition_dim, "noise_dim": cfg.model.noise_dim,
            "batch_size": int(cfg.train.batch_size), "lr": float(cfg.train.lr), "split": split, "n_captions": len(captions),
            "evaluator": evaluator.name, "overrides": overrides}
    if not any(p.get("point") == "real" for p in done):
        real = center_crop(test.images[captions.image_index], int(stage.imsize))
        point = {**base, "point": "real", **score(evaluator, real, captions.values, captions.class_ids,
                                                  captions.image_index, pool_values, pool_image_ids, seed)}
        append_jsonl(out, point)
        done.append(point)
    seconds = max([p.get("train_seconds", 0.0) for p in done] + [0.0])
    for target in steps:
        if any(p.get("step") == target for p in done):
            continue
        if until is not None and target > until:
            break
        status = read_status(run_dir) or {}
        current = int(status.get("step", 0) or 0) if status else 0
        t0 = time.perf_counter()
        status = train(cfg, run_dir, stop_after=max(target - current, 0))
        seconds += time.perf_counter() - t0
        if status.get("status") not in ("running", "finished"):
            raise RuntimeError(f"training stopped at step {status.get('step')}: {status}")
        G, at = _generator_at(cfg, run_dir)
        images = generate(G, captions.embeddings, 1, seed)[0]
        log = {k: round(v, 4) if isinstance(v, float) else v for k, v in _last_log(run_dir).items()
               if k not in ("stage", "step", "epoch")} if target > 0 else {}
        point = {**base, "point": "generated", "step": target, "checkpoint_step": at,
                 "train_seconds": round(seconds, 1),
                 **score(evaluator, images, captions.values, captions.class_ids, captions.image_index, pool_values,
                         pool_image_ids, seed),
                 "log": log}
        append_jsonl(out, point)
        done.append(point)
        print(json.dumps({k: point[k] for k in ("run", "step", "class_accuracy", "coarse_accuracy", "r_precision",
                                                "train_seconds")}), flush=True)
    return done


def table(paths: list[Path]) -> str:
    """A Markdown table of every generated point of the curve files (one row per run and step)."""
    rows = ["| run | encoder | KL weight | gf/df | N_g | batch | lr | step | train s | class acc. | coarse attr. | "
            "R-precision | d_real | d_wrong | d_fake | KL |", "|" + " --- |" * 16]
    for path in paths:
        for p in (json.loads(ln) for ln in Path(path).read_text().splitlines() if ln.strip()):
            if p.get("point") != "generated":
                continue
            log = p.get("log", {})
            fmt = lambda k: f"{log[k]:.3f}" if k in log else ""  # noqa: E731
            rows.append(f"| {p['run']} | {p['text_encoder']} | {p['kl_weight']:g} | {p['gf_dim']}/{p['df_dim']} | "
                        f"{p['condition_dim']} | {p['batch_size']} | {p['lr']:g} | {p['step']} | {p['train_seconds']:.0f} | "
                        f"{p['class_accuracy']:.3f} ± {p['class_accuracy_se']:.3f} | "
                        f"{p['coarse_accuracy']:.3f} ± {p['coarse_accuracy_se']:.3f} | "
                        f"{p['r_precision']:.3f} ± {p['r_precision_se']:.3f} | {fmt('d_real')} | {fmt('d_wrong')} | "
                        f"{fmt('d_fake')} | {fmt('kl')} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["table"]:  # python -m experiments.learning_curve table FILE.jsonl ...
        print(table([Path(a) for a in argv[1:]]))
        return 0
    ours = OmegaConf.from_dotlist([a for a in argv if a.split("=", 1)[0] in OPTIONS])
    overrides = [a for a in argv if a.split("=", 1)[0] not in OPTIONS]
    if ours.get("run_dir") is None or ours.get("out") is None or ours.get("steps") is None:
        print("experiments.learning_curve: needs run_dir=<folder> out=<file.jsonl> steps=0,250,...", file=sys.stderr)
        return 2
    if not any(o.startswith("profile=") for o in overrides):
        overrides.insert(0, "profile=cpu")
    steps = ours.steps if not isinstance(ours.steps, (int, str)) else str(ours.steps).split(",")
    until = ours.get("until")
    curve(Path(ours.run_dir), Path(ours.out), [int(s) for s in steps], overrides, int(ours.get("n_captions", 1000)),
          int(ours.get("seed", 0)), until=None if until is None else int(until))
    return 0


if __name__ == "__main__":
    sys.exit(main())
