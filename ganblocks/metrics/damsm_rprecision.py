"""`r_precision_damsm`: R-precision in the papers' protocol (AttnGAN, DM-GAN, DF-GAN): DAMSM sentence cosine.

For each generated image, its own caption and `mismatched` (99) random captions of images of other classes
are ranked by the cosine between the DAMSM image encoder's global feature of the image and the DAMSM text
encoder's sentence feature of each caption; a hit is the true caption ranked first. `n_images` (30,000) images
are scored, shuffled and cut into `splits` (10) equal parts; the value is the mean of the parts' hit rates and
its std their std (numpy's, ddof 0), as DM-GAN's trainer.py prints "R mean, std" (which scores 2,999 of each
3,000 through an off-by-one; here every image counts). Rivals are drawn with replacement from every caption of
the evaluation split whose image has another class (`rivals="other_classes"`, DM-GAN's get_mis_caption; COCO
has one class per image), or of another image (`rivals="other_images"`). Chance is 1 / (1 + mismatched).

Encoders, in this order (`metrics.options.r_precision_damsm.*`):
  text_encoder + image_encoder  the released DAMSM files (text_encoder200.pth / image_encoder200.pth), loaded
                                strict with weights_only=True as `ganblocks.compat_attngan` loads them; their
                                vocabulary is AttnGAN's captions.pickle (the `attngan` dataset's, or
                                `captions_pickle=PATH`); captions longer than `words_num` keep a seeded random
                                subset of their words in order, as AttnGAN's get_caption.
  checkpoint                    a `python -m ganblocks.text.pretrain_damsm` run folder (or its final.pt).
  (neither, built-in dataset)   encoders pretrained on the run's SynthBirds train split with `pretrain`
                                settings, once, cached by the dataset's content hash and those settings.
Anything else (real data without the files) is refused before any image is generated, naming the settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganblocks.metrics.base import EvalSamples, MetricRefused, caption_se
from ganblocks.registry import register
from ganblocks.compat_attngan import official_scorer  # noqa: F401
from ganblocks.text.damsm_scorer import DAMSMScorer, pretrained_scorer, read_vocabulary  # noqa: F401

SETTING = "metrics.options.r_precision_damsm"
RIVALS = ("other_classes", "other_images")
PRETRAIN_DEFAULTS = {"epochs": 20, "imsize": 64, "dim": 256, "width": 32, "batch_size": 48, "lr": 2e-3, "seed": 0}
_SCORERS: dict[str, "DAMSMScorer"] = {}  # loaded / pretrained encoders, once per process and setting


def draw_rivals(class_ids: Tensor, image_ids: Tensor, pool_class_ids: Tensor, pool_image_ids: Tensor, n: int,
                seed: int, rivals: str = "other_classes") -> Tensor:
    """For each image, `n` pool indices (with replacement) of captions of another class / image: (N,) -> (N, n).

    Raises ValueError when the pool has no such caption for some image.
    """
    gen = torch.Generator().manual_seed(seed)
    key, pool_key = (class_ids, pool_class_ids) if rivals == "other_classes" else (image_ids, pool_image_ids)
    out = torch.empty(len(key), n, dtype=torch.long)
    for value in key.unique():
        rows = (key == value).nonzero().flatten()
        allowed = (pool_key != value).nonzero().flatten()
        if len(allowed) == 0:
            raise ValueError(f"r_precision_damsm: no caption in the pool belongs to {rivals.replace('_', ' ')} than "
                             f"{int(value)}")
        out[rows] = allowed[torch.randint(len(allowed), (len(rows), n), generator=gen)]
    return out


def rank_hits(codes: Tensor, true_sentences: Tensor, pool_sentences: Tensor, rivals: Tensor) -> Tensor:
    """1 where the true caption has the highest cosine of its 1 + R candidates (ties share: 1 / (1 + tied)).

    codes (N, D), true_sentences (N, D), pool_sentences (P, D), rivals (N, R) pool indices -> (N,) float64.
    """
    def unit(x: Tensor) -> Tensor:
        return x.double() / x.double().norm(dim=-1, keepdim=True).clamp(min=1e-8)

    c, t, p = unit(codes), unit(true_sentences), unit(pool_sentences)
    true = (c * t).sum(-1, keepdim=True)                      # (N, 1)
    others = torch.einsum("nd,nrd->nr", c, p[rivals])         # (N, R)
    beaten = (others > true).any(1)
    tied = (others == true).sum(1)
    return torch.where(beaten, 0.0, 1.0 / (1 + tied.double()))


@register("metric", "r_precision_damsm")
class DAMSMRPrecision:
    """R-precision as the AttnGAN / DM-GAN papers: DAMSM sentence cosine, 1 true + 99 mismatched captions,
    30,000 images in 10 splits (mean and std over splits); chance 1 %; higher is better.

    Args:
        n_images: images scored, a seeded random subset of the generated ones; fewer generated images is a
            refusal (`MetricRefused`) naming metrics.n_samples.
        splits: equal parts the scored images are cut into.
        mismatched: rival captions per image (99).
        rivals: "other_classes" (DM-GAN) or "other_images".
        text_encoder, image_encoder: the released DAMSM files (both or neither).
        captions_pickle: AttnGAN's captions.pickle for their vocabulary (default: the dataset's, `attngan` data).
        words_num: words kept per caption for the released encoder (birds 18, COCO 12; default: the dataset's).
        checkpoint: a pretrain_damsm run folder.
        pretrain: pretrain_damsm settings for the built-in dataset (epochs, imsize, dim, width, batch_size, lr, seed).
    """

    def __init__(self, n_images: int = 30000, splits: int = 10, mismatched: int = 99, rivals: str = "other_classes",
                 text_encoder: str | None = None, image_encoder: str | None = None,
                 captions_pickle: str | None = None, words_num: int | None = None, checkpoint: str | None = None,
                 pretrain: dict | None = None) -> None:
        if splits < 1 or n_images < splits or mismatched < 1:
            raise ValueError(f"{SETTING}: n_images={n_images}, splits={splits}, mismatched={mismatched}; expected "
                             "n_images >= splits >= 1 and mismatched >= 1")
        if rivals not in RIVALS:
            raise ValueError(f"{SETTING}.rivals={rivals!r}; expected one of {RIVALS}")
        if (text_encoder is None) != (image_encoder is None):
            raise ValueError(f"{SETTING}: give both text_encoder and image_encoder (the released DAMSM "
                             f"text_encoder*.pth and image_encoder*.pth), got text_encoder={text_encoder!r}, "
                             f"image_encoder={image_encoder!r}")
        for key, value in (("text_encoder", text_encoder), ("image_encoder", image_encoder),
                           ("captions_pickle", captions_pickle)):
            if value is not None and not Path(value).expanduser().is_file():
                raise FileNotFoundError(f"{SETTING}.{key}={value!r} is not a file")
        if checkpoint is not None:
            final = Path(checkpoint).expanduser()
            if not (final / "final.pt" if final.is_dir() else final).is_file():
                raise FileNotFoundError(f"{SETTING}.checkpoint={checkpoint!r}: no pretrain_damsm checkpoint there "
                                        "(expected DIR/final.pt or the file itself, written when `python -m "
                                        "ganblocks.text.pretrain_damsm --out DIR` finishes)")
        unknown = set(pretrain or {}) - set(PRETRAIN_DEFAULTS)
        if unknown:
            raise ValueError(f"{SETTING}.pretrain: unknown keys {sorted(unknown)}; accepted: {sorted(PRETRAIN_DEFAULTS)}")
        self.n_images, self.splits, self.mismatched, self.rivals = int(n_images), int(splits), int(mismatched), rivals
        self.text_encoder, self.image_encoder, self.captions_pickle = text_encoder, image_encoder, captions_pickle
        self.words_num, self.checkpoint = words_num, checkpoint
        self.pretrain = {**PRETRAIN_DEFAULTS, **(pretrain or {})}

    def check(self, dataset: Any) -> None:
        """Refuse, before any image is generated, a dataset these settings give no encoders for."""
        if self.text_encoder is not None:
            if self.captions_pickle is None and "wordtoix" not in getattr(dataset, "meta", {}):
                raise ValueError(f"{SETTING}: the released DAMSM text encoder needs the vocabulary it was trained with: "
                                 f"set {SETTING}.captions_pickle=PATH (AttnGAN's captions.pickle) or use data.name=attngan")
        elif self.checkpoint is None and getattr(dataset, "name", None) != "synthbirds":
            raise ValueError(
                f"{SETTING}: the papers' R-precision on {getattr(dataset, 'name', 'this dataset')!r} needs DAMSM encoders: "
                f"set {SETTING}.text_encoder=PATH and {SETTING}.image_encoder=PATH (AttnGAN's released "
                f"text_encoder200.pth / image_encoder200.pth, with data.name=attngan or {SETTING}.captions_pickle), or "
                f"{SETTING}.checkpoint=DIR (python -m ganblocks.text.pretrain_damsm --out DIR); only the built-in "
                "synthbirds dataset is pretrained on automatically")

    def scorer(self, dataset: Any) -> DAMSMScorer:
        """The encoders these settings name (loaded, or pretrained and cached, once per process)."""
        from ganblocks.io import cache_dir, stable_hash

        self.check(dataset)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        meta = getattr(dataset, "meta", {})
        if self.text_encoder is not None:
            from ganblocks.evaluation.classifier import file_fingerprint

            vocab_key = self.captions_pickle or stable_hash(sorted(meta["wordtoix"].items()))
            words = int(self.words_num or meta.get("words_num", 18))
            key = stable_hash(["official", file_fingerprint(Path(self.text_encoder)),
                               file_fingerprint(Path(self.image_encoder)), vocab_key, words])
            if key not in _SCORERS:
                wordtoix = meta.get("wordtoix") if self.captions_pickle is None else read_vocabulary(self.captions_pickle)
                _SCORERS[key] = official_scorer(self.text_encoder, self.image_encoder, wordtoix, words, device=device)
            return _SCORERS[key]
        if self.checkpoint is not None:
            key = stable_hash(["checkpoint", str(Path(self.checkpoint).resolve())])
            if key not in _SCORERS:
                _SCORERS[key] = pretrained_scorer(self.checkpoint, device)
            return _SCORERS[key]
        key = stable_hash(["pretrained", dataset.dataset_hash, self.pretrain])
        if key not in _SCORERS:
            from ganblocks.text.pretrain_damsm import pretrain_damsm

            out = cache_dir("damsm", key)
            if not (out / "final.pt").is_file():
                pretrain_damsm(out, dataset.name, dataset.root, device=device, log=None, **self.pretrain)
            _SCORERS[key] = pretrained_scorer(out, device)
        return _SCORERS[key]

    def __call__(self, samples: EvalSamples) -> dict[str, dict]:
        ds = samples.dataset
        if ds is None or samples.fake_texts is None or samples.fake_image_ids is None or samples.fake_class_ids is None:
            raise ValueError("r_precision_damsm needs EvalSamples.dataset, fake_texts, fake_image_ids and fake_class_ids")
        if len(samples.fake) < self.n_images:
            raise MetricRefused(f"r_precision_damsm scores {self.n_images} images ({SETTING}.n_images) but "
                                f"{len(samples.fake)} were generated: raise metrics.n_samples to {self.n_images} "
                                f"(metrics=paper_protocol) or lower {SETTING}.n_images")
        scorer = self.scorer(ds)
        pick = torch.randperm(len(samples.fake), generator=torch.Generator().manual_seed(samples.seed))[: self.n_images]
        per_split = self.n_images // self.splits
        pick = pick[: per_split * self.splits]
        pool_texts = [c for caps in ds.captions for c in caps]
        counts = torch.tensor([len(caps) for caps in ds.captions])
        pool_images = torch.arange(len(counts)).repeat_interleave(counts)
        rivals = draw_rivals(samples.fake_class_ids[pick], samples.fake_image_ids[pick], ds.class_ids[pool_images],
                             pool_images, self.mismatched, samples.seed, self.rivals)
        needed, inverse = rivals.unique(return_inverse=True)  # encode only the pool captions that are drawn
        pool = scorer.sentences([pool_texts[int(i)] for i in needed])
        true = scorer.sentences([samples.fake_texts[int(i)] for i in pick])
        hits = rank_hits(scorer.codes(samples.fake[pick]), true, pool, inverse)
        split_means = hits.view(self.splits, per_split).mean(1).numpy()
        ids = samples.fake_caption_ids[pick] if samples.fake_caption_ids is not None else None
        se, n_captions = caption_se(hits, ids)
        return {"r_precision_damsm": samples.record(
            float(split_means.mean()), float(split_means.std()), len(pick), self.splits, accuracy=None,
            std_over="splits", evaluator=scorer.label, candidates=1 + self.mismatched, mismatched=self.mismatched,
            chance=1 / (1 + self.mismatched), rivals=self.rivals, images_per_split=per_split,
            split_values=[float(v) for v in split_means], caption_se=se, n_captions_scored=n_captions)}
