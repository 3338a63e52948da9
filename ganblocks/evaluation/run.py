"""`evaluate_run(run_dir)`: generate a run's evaluation images, compute every configured metric, write
`metrics.json` and `figures/` in the run folder.

The metrics settings are `DEFAULTS` below, overridden by the run config's `metrics` node (composed from
experiments/conf/metrics/*.yaml) and then by the `cfg` passed in.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from ganblocks.evaluation.builtin import TABLE_RECIPE, evaluator_for_dataset
from ganblocks.evaluation.evaluator import Evaluator, center_crop, describe
from ganblocks.evaluation.pixels import resize
from ganblocks.evaluation.reference import real_halves, real_reference
from ganblocks.evaluation.samples import EvalSamples, MetricRefused
from ganblocks.evaluation.sampling import caption_pool, evaluation_captions, generate
from ganblocks.data.dataset import DatasetError
from ganblocks.io import UnsafeFileError, atomic_write_json, stable_hash
from ganblocks.registry import build

DEFAULTS: dict[str, Any] = {
    "names": ["is", "fid", "kid", "r_precision", "attributes", "diversity", "pixelation"],
    "n_samples": 1000,                   # generated images = n_captions x n_per_caption
    "n_per_caption": 10,                 # noise draws per caption (the papers: 10 per test caption)
    "n_real": None,                      # real images of the split (null = all)
    "real_split": "test",
    "image_size": None,                  # score at this size (px): generated images resized to it (bilinear,
                                         # antialiased), real ones drawn at it; null = the generator's output size
    "seed": 0,                           # which captions, which noise
    "batch_size": 64,
    "inception_weights": None,           # local Inception-v3 weights for datasets without a built-in evaluator
    "is_classifier": None,               # a user classifier for IS (TorchScript or Inception-v3 state dict)
    "require_is_classifier": False,      # refuse IS on real data without is_classifier (the paper protocol)
    "real_reference": True,              # score real test images through the same protocol (the `real` row)
    # the built-in evaluator: the tables' recipe, whose weights ship with ganblocks (builtin.TABLE_RECIPE)
    "evaluator_size": TABLE_RECIPE["image_size"],  # resolution it judges at (128+ sees the fine attributes)
    "evaluator_renders_per_class": TABLE_RECIPE["renders_per_class"],
    "evaluator_free_renders": TABLE_RECIPE["free_renders"],  # renders with attributes drawn per image (the judge's)
    "evaluator_epochs": TABLE_RECIPE["epochs"],
    "evaluator_width": TABLE_RECIPE["width"],
    "min_class_accuracy": 0.5,           # refuse an evaluator below these held-out accuracies
    "min_attribute_accuracy": 0.6,
    "options": {"is": {"splits": 10}, "kid": {"subsets": 100, "subset_size": 1000},
                "r_precision": {"mismatched": 99},
                "r_precision_damsm": {"n_images": 30000, "splits": 10, "mismatched": 99, "rivals": "other_classes",
                                      "text_encoder": None, "image_encoder": None, "captions_pickle": None,
                                      "words_num": None, "checkpoint": None, "pretrain": None}},
    "figures": True,
    "figure_captions": 6,
    "rank_captions": 50,                 # captions the rank proxy judges
    "rank_per_caption": 4,
    "progress": True,
}
JUDGE_METRICS = {"r_precision", "attributes", "diversity"}


def metrics_config(*layers: Any) -> DictConfig:
    """DEFAULTS merged with each layer in turn; a layer is a metrics node or a run config holding `metrics`."""
    merged = OmegaConf.create(DEFAULTS)
    for layer in layers:
        if layer is None:
            continue
        if isinstance(layer, DictConfig):  # resolved first: a grid's `metrics.image_size=${model.stage2_size}`
            layer = OmegaConf.to_container(layer, resolve=True)  # names a key outside the metrics node
        layer = OmegaConf.create(layer)
        if "metrics" in layer:
            layer = layer.metrics
        merged = OmegaConf.merge(merged, layer)
    unknown = set(merged) - set(DEFAULTS)
    if unknown:
        raise KeyError(f"unknown metrics settings {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    return merged


class MetricSettingError(ValueError):
    """A `metrics.*` setting no metric accepts (a missing file, an unknown name, a bad count), found before any
    image is generated; the message names the setting. `python -m experiments.evaluate` prints it in one line."""


class RunContext:
    """A run folder's config, generator, test data and evaluator, each built once when first asked for."""

    def __init__(self, run_dir: str | Path, cfg: Any = None) -> None:
        self.run_dir = Path(run_dir)
        path = self.run_dir / "config.yaml"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; is {self.run_dir} a run folder written by training?")
        self.run_cfg = OmegaConf.load(path)
        from ganblocks.data.text_options import check_options  # a crafted config.yaml: refused before any work

        check_options(self.run_cfg.data.text_encoder, self.run_cfg.data.get("text_encoder_options"))
        self.mcfg = metrics_config(self.run_cfg, cfg)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self._datasets: dict[tuple[int, str], Any] = {}
        self._evaluator: Evaluator | None = None
        self._generator = None

    def data_key(self) -> tuple:
        d = self.run_cfg.data
        return (d.name, d.get("size"), d.get("root"))

    def dataset(self, imsize: int, split: str | None = None) -> Any:
        """The run's evaluation split (or `split`) at `imsize`, embedded by the run's text encoder."""
        split = split or str(self.mcfg.real_split)
        if (imsize, split) not in self._datasets:
            from ganblocks.training.assemble import build_training_dataset

            self._datasets[imsize, split] = build_training_dataset(self.run_cfg, int(imsize), split=split)
        return self._datasets[imsize, split]

    def generator(self) -> torch.nn.Module:
        if self._generator is None:
            from ganblocks.training import load_generator

            self._generator = load_generator(self.run_dir, self.device)
        return self._generator

    def evaluator(self, progress: bool | None = None) -> Evaluator:
        """The built-in evaluator of the run's dataset, checked against the accuracy thresholds."""
        if self._evaluator is None:
            m = self.mcfg
            ds = self.dataset(int(m.evaluator_size))
            ev = evaluator_for_dataset(ds, image_size=int(m.evaluator_size),
                                       renders_per_class=int(m.evaluator_renders_per_class),
                                       free_renders=int(m.evaluator_free_renders),
                                       epochs=int(m.evaluator_epochs), width=int(m.evaluator_width),
                                       progress=bool(m.progress if progress is None else progress))
            ev.check(float(m.min_class_accuracy), float(m.min_attribute_accuracy))
            self._evaluator = ev.to(self.device)
        return self._evaluator


def build_samples(ctx: RunContext) -> tuple[EvalSamples, Any, Any]:
    """Generate the run's evaluation images and gather what the metrics compare them with.

    Returns (samples, the evaluation captions, the test dataset at the scored resolution: `metrics.image_size`,
    default the generator's).

    Raises:
        MetricSettingError: `metrics.image_size` is not a whole number of pixels from 16 to 1024.
    """
    m = ctx.mcfg
    G = ctx.generator()
    size = scored_size(m, int(G.out_size))
    test = ctx.dataset(size)
    try:  # every setting the metrics can check is refused here, before any image is generated
        check_is_classifier(m, test)
        check_inception_weights(m, test)
        check_metrics(m, test)
    except (UnsafeFileError, DatasetError):
        raise  # a crafted or broken file: its own kind (the CLI exits 1 for those)
    except (ValueError, FileNotFoundError) as error:
        raise MetricSettingError(str(error)) from error
    has_judge = getattr(test, "attributes", None) is not None
    evaluator = ctx.evaluator() if has_judge else None
    n_per = int(m.n_per_caption)
    n_captions = max(1, -(-int(m.n_samples) // n_per))
    captions = evaluation_captions(test, n_captions, int(m.seed))
    if captions.embeddings is None:
        raise ValueError(f"the {m.real_split} split has no caption embeddings (data.text_encoder is unset)")
    fake, ids, _ = generate(G, captions.embeddings, n_per, int(m.seed), int(m.batch_size))
    fake = resize(fake, size)  # metrics.image_size: e.g. Stage-I's 64 px judged as 128 px images
    real = center_crop(test.images, size)
    real_ids = test.class_ids
    if m.n_real is not None and int(m.n_real) < len(real):
        pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(int(m.seed)))[: int(m.n_real)]
        real, real_ids = real[pick], real_ids[pick]
    pool_values, pool_images = caption_pool(test) if has_judge else (None, None)
    samples = EvalSamples(
        fake=fake, fake_caption_ids=ids, fake_class_ids=captions.class_ids[ids],
        fake_values=captions.values[ids] if captions.values is not None else None,
        fake_image_ids=captions.image_index[ids],
        real=real.contiguous(), real_class_ids=real_ids, pool_values=pool_values, pool_image_ids=pool_images,
        evaluator=evaluator, inception_weights=m.inception_weights, real_split=str(m.real_split),
        real_cache_key=stable_hash([test.dataset_hash, str(m.real_split), size, "center-crop", m.n_real, m.seed]),
        resize=resize_note(m, size, int(test.images.shape[-1]), evaluator, int(G.out_size)), seed=int(m.seed),
        is_classifier=m.is_classifier, fake_texts=[captions.texts[int(i)] for i in ids], dataset=test,
    )
    return samples, captions, test


def check_metrics(m: DictConfig, dataset: Any) -> None:
    """Each metric of `m.names` that can tell (a `check(dataset)` method) refuses its settings for `dataset`
    before any image is generated, e.g. `r_precision_damsm` on real data without DAMSM files."""
    options = OmegaConf.to_container(m.options, resolve=True) or {}
    for name in m.names:
        metric = build("metric", str(name), where="metrics.names", **options.get(str(name), {}))
        if hasattr(metric, "check"):
            metric.check(dataset)


def scored_size(m: DictConfig, out_size: int) -> int:
    """The resolution a run is scored at: `metrics.image_size`, or the generator's `out_size` when it is null.

    Raises:
        MetricSettingError: not a whole number of pixels from 16 to 1024 (names the value).
    """
    value = m.get("image_size")
    if value is None:
        return out_size
    if isinstance(value, bool) or not isinstance(value, int) or not 16 <= value <= 1024:
        raise MetricSettingError(f"metrics.image_size={value!r}: expected a whole number of pixels from 16 to 1024 "
                                 f"(the size generated images are resized to before scoring), or null for the "
                                 f"generator's own {out_size} px")
    return int(value)


def resize_note(m: DictConfig, size: int, load: int, evaluator: Evaluator | None, out_size: int | None = None) -> str:
    """How images reach the metrics' networks, recorded with every number (two protocols never look alike)."""
    real = f"real images center-cropped to {size} px from {load} px"
    if out_size is not None and out_size != size:
        real = f"generated images resized {out_size} -> {size} px (bilinear, antialiased, metrics.image_size); {real}"
    net = (f"evaluator resizes {size} -> {int(m.evaluator_size)} px (bilinear, antialiased)" if evaluator is not None
           else f"torch-fidelity Inception-v3 resizes {size} -> 299 px")
    if m.is_classifier:
        size_is = int((m.options or {}).get("is", {}).get("classifier_size", 299))
        net += f"; IS classifier resizes {size} -> {size_is} px (bilinear, antialiased)"
    return f"{real}; {net}"


def check_inception_weights(m: DictConfig, dataset: Any) -> None:
    """Refuse, before any image is generated, IS/FID/KID on a dataset without the built-in evaluator when
    `metrics.inception_weights` is unset or missing (IS with `metrics.is_classifier` needs no Inception)."""
    needs = {"fid", "kid"} | (set() if m.is_classifier else {"is"})
    if getattr(dataset, "attributes", None) is None and needs & {str(n) for n in m.names}:
        from ganblocks.evaluation.fidelity import inception_kwargs

        inception_kwargs(m.inception_weights)  # raises FileNotFoundError naming metrics.inception_weights


def check_is_classifier(m: DictConfig, dataset: Any) -> None:
    """Refuse, before any image is generated, an IS the protocol forbids or a classifier file that is missing."""
    if m.is_classifier:
        from ganblocks.evaluation.classifier import load_is_classifier

        load_is_classifier(m.is_classifier)  # a missing or unreadable file fails here, naming the setting
    elif bool(m.require_is_classifier) and "is" in m.names and getattr(dataset, "attributes", None) is None:
        raise ValueError(
            "metrics.require_is_classifier=true (the paper protocol, metrics=paper_protocol): the inception score "
            "of a real dataset needs the classifier the papers used (an Inception-v3 fine-tuned on the dataset's "
            "classes, for CUB and Oxford-102): set metrics.is_classifier=PATH (a TorchScript module or a "
            "torchvision Inception-v3 state dict), or metrics.require_is_classifier=false to score with the "
            "ImageNet Inception of metrics.inception_weights (the papers' COCO protocol)")


def evaluate_run(run_dir: str | Path, cfg: Any = None) -> dict[str, dict]:
    """Evaluate a finished run; writes `run_dir/metrics.json` and returns the metrics.

    `metrics.json` holds exactly the returned dict; `evaluation.json` beside it holds the settings, the
    evaluator's meta (held-out accuracy), the metrics refused for too few samples (`refused`: name -> message
    naming the setting), the real row with its own refusals (`real_reference`) and the figure paths;
    `figures/` the paper-style figures. Each record carries `real` (the real row's value) where there is one,
    and text metrics their `chance`.

    Args:
        run_dir: a run folder written by `ganblocks.training.train`.
        cfg:     metrics settings (a `metrics` node, or a full run config holding one); default: the run's.
    Returns:
        {result name: {value, std, n_samples, splits, evaluator, evaluator_accuracy, real_split, seed, ...}}.
    """
    from ganblocks.progress import long_step

    t0 = time.perf_counter()
    ctx = RunContext(run_dir, cfg)
    m = ctx.mcfg
    label = "/".join(ctx.run_dir.parts[-2:])  # e.g. gaussian/seed0 inside a grid
    with long_step(f"evaluating {label}", f"evaluated {ctx.run_dir}", total=1 + len(m.names) + 2, unit="step",
                   progress=bool(m.progress)) as step:
        samples, captions, test = build_samples(ctx)
        step.update()
        options = OmegaConf.to_container(m.options, resolve=True) or {}
        names = [str(n) for n in m.names if samples.evaluator is not None or n not in JUDGE_METRICS]
        # (a dataset without attributes has no judge: its metrics are left out, not faked)
        metric = lambda name: build("metric", name, where="metrics.names", **options.get(name, {}))  # noqa: E731
        results: dict[str, dict] = {}
        refused: dict[str, str] = {}
        for name in names:
            if step.bar is not None:
                step.bar.set_postfix_str(name, refresh=False)
            try:
                results.update(metric(name)(samples))
            except MetricRefused as err:  # too few samples for this metric: say so, keep the others
                refused[name] = str(err)
            step.update()
        reference = {"metrics": {}, "refused": {}}
        if m.real_reference:  # the `real` row: real test images through the same protocol (cached)
            size = int(samples.fake.shape[-1])
            halves = real_halves(center_crop(test.images, size), test, int(m.n_samples), m.n_real, int(m.seed),
                                 evaluator=samples.evaluator, inception_weights=m.inception_weights,
                                 real_split=samples.real_split, is_classifier=m.is_classifier,
                                 resize=resize_note(m, size, int(test.images.shape[-1]), samples.evaluator))
            # (real images are never resized from a generator's size: that note stays with the generated ones)
            reference = real_reference(halves, names, metric, [test.dataset_hash, samples.real_split, size, options])
            for name, rec in results.items():
                if name in reference["metrics"]:
                    rec["real"] = reference["metrics"][name]["value"]
        step.update()
        atomic_write_json(ctx.run_dir / "metrics.json", results)
        step.result = ctx.run_dir / "metrics.json"
        about = _about(ctx, samples, captions, m, refused, reference)
        step.update()
    about["wall_s"] = round(time.perf_counter() - t0, 3)
    atomic_write_json(ctx.run_dir / "evaluation.json", about)
    return results


def current_judge(run_dir: str | Path, cfg: Any = None) -> str | None:
    """The name of the evaluator `evaluate_run(run_dir, cfg)` would score the run with now, or None when the
    run's dataset has no attributes (no judge). Loads (or, for a recipe without committed weights, trains) the
    evaluator; generates no image. `ablations.reevaluate` compares it with the name a grid's rows hold.

    Raises:
        FileNotFoundError: run_dir has no config.yaml.
    """
    ctx = RunContext(run_dir, cfg)
    if getattr(ctx.dataset(int(ctx.mcfg.evaluator_size)), "attributes", None) is None:
        return None
    return ctx.evaluator(progress=False).name


def _about(ctx: RunContext, samples: EvalSamples, captions: Any, m: DictConfig, refused: dict, reference: dict) -> dict:
    """evaluation.json's content (without wall_s); draws figures/ when `m.figures`."""
    about = {"evaluator": describe(samples.evaluator) if samples.evaluator else samples.evaluator_label(),
             "evaluator_meta": samples.evaluator.meta if samples.evaluator else None,
             "settings": OmegaConf.to_container(m, resolve=True), "n_fake": len(samples.fake),
             "n_real": len(samples.real) if samples.real is not None else 0, "refused": refused,
             "real_reference": reference}
    if m.figures:
        from ganblocks.evaluation.figures import write_run_figures

        about["figures"] = write_run_figures(ctx, captions)
    return about
