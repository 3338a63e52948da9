"""AttnGAN's text in the training pipeline: DAMSM encoders pretrained on the run's data (cached), and word
features packed into the one caption tensor every component already passes around.

    >>> enc = build("text_encoder", "damsm_words", dataset="synthbirds", dataset_kwargs={"size": "tiny"})
    >>> packed = enc.encode(captions)                 # (N, D * (T + 1) + 1), T = MAX_WORDS = 18
    >>> sentence, words, mask, lengths = unpack_words(packed)   # (N, D), (N, D, T), (N, T) True at padding, (N,)

Why packed: AttnGAN's generator needs the word features (D x T) beside the sentence vector, and its text
encoder is frozen while the GAN trains (taoxugit/AttnGAN trainer.py: `text_encoder.eval()`, no optimizer),
so each caption's word features are a fixed function of the caption, computed once with the sentence
vector and cached with the dataset's embeddings. Carried in the caption embedding row, they reach every
place a generator is called (the training step, the sample sheets, the evaluation's `generate`, the rank
proxy) through the one `generator(text, noise)` call, and the loop, the batch and the evaluation need no
field or branch of their own. Layout of one row: [sentence (D) | word features (D x T, row-major: feature
d of word t at D + d * T + t) | word count]. Padded words are zeros; T = 18 (AttnGAN's TEXT.WORDS_NUM for
birds; longer captions are cut). Memory: D (T + 1) + 1 floats per caption (D = 256: 19.1 KB; CUB's
88,550 captions: 1.7 GB), so the built-in default pretrains D = 64.

`damsm_words` gives the packed rows; `damsm_sentence` the sentence vectors alone of the same cached
encoder (for StackGAN / StackGAN++ runs compared against AttnGAN on equal text: the `attention` grid).
Both pretrain with `pretrain_damsm` on the train split of the run's dataset when no checkpoint is given,
cached under $GANBLOCKS_CACHE/text/damsm/<dataset>-<hash of data and hyper-parameters>/ (a second run, or
a second process, reuses it; an interrupted pretraining resumes).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganblocks.io import cache_dir, stable_hash
from ganblocks.registry import register
from ganblocks.text.base import TextEncoder
from ganblocks.text.damsm import MAX_WORDS, DAMSMSentenceEncoder

# Hyper-parameters of the pretraining the built-in default runs (part of the cache key). AttnGAN's
# cfg/DAMSM/bird.yml: D 256, 600 epochs, batch 48, lr 0.002; D 64 and 20 epochs keep the built-in data's
# packed rows small and the pretraining a minute or two on a CPU.
DEFAULT_PRETRAIN = {"dim": 64, "word_dim": 300, "width": 32, "imsize": 64, "epochs": 20, "batch_size": 48,
                    "lr": 2e-3, "seed": 0}


def packed_dim(dim: int, max_words: int = MAX_WORDS) -> int:
    """Size of one packed row for sentence size D = `dim`: D (T + 1) + 1."""
    return dim * (max_words + 1) + 1


def sentence_dim(packed: int, max_words: int = MAX_WORDS) -> int:
    """D of a packed row of size `packed` (`packed_dim`'s inverse).

    Raises:
        ValueError: `packed` is not D (T + 1) + 1 for any D >= 1 (the text is not `damsm_words`' rows).
    """
    d, rest = divmod(packed - 1, max_words + 1)
    if packed < max_words + 2 or rest:
        raise ValueError(f"text of size {packed} is not a packed DAMSM caption (D * {max_words + 1} + 1 for a "
                         "sentence size D); AttnGAN's training models take data.text_encoder=damsm_words")
    return d


def pack_words(sentence: Tensor, words: Tensor, lengths: Tensor, max_words: int = MAX_WORDS) -> Tensor:
    """sentence (N, D), words (N, D, T' <= T), lengths (N,) -> packed (N, D (T + 1) + 1), float32."""
    n, d = sentence.shape
    if words.shape[:2] != (n, d) or words.shape[2] > max_words or lengths.shape != (n,):
        raise ValueError(f"pack_words: sentence {tuple(sentence.shape)}, words {tuple(words.shape)}, lengths "
                         f"{tuple(lengths.shape)}; expected (N, D), (N, D, T <= {max_words}), (N,)")
    padded = words.new_zeros(n, d, max_words)
    padded[:, :, :words.shape[2]] = words
    return torch.cat([sentence, padded.flatten(1), lengths[:, None].to(sentence.dtype)], dim=1).float()


def unpack_words(text: Tensor, max_words: int = MAX_WORDS) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """packed (B, D (T + 1) + 1) -> sentence (B, D), words (B, D, T), mask (B, T) True at padded words, lengths (B,).

    Raises:
        ValueError: `text` is not (B, D (T + 1) + 1) (`sentence_dim`), or a word count is below 1.
    """
    if text.dim() != 2:
        raise ValueError(f"packed DAMSM text of shape {tuple(text.shape)}; expected (B, D * {max_words + 1} + 1)")
    d = sentence_dim(text.shape[1], max_words)
    lengths = text[:, -1].round().long()
    positions = torch.arange(max_words, device=text.device)
    return (text[:, :d], text[:, d:-1].reshape(len(text), d, max_words), positions[None, :] >= lengths[:, None],
            lengths.clamp(1, max_words))


def pretrained_damsm(dataset: str = "synthbirds", root: str | os.PathLike | None = None,
                     dataset_kwargs: dict | None = None, log: Any = None, **hparams: Any) -> Path:
    """The folder of DAMSM encoders pretrained on `dataset`'s train split (`pretrain_damsm`), cached by content.

    Args:
        dataset, root, dataset_kwargs: the data (as `build_dataset` takes it).
        **hparams: `pretrain_damsm` keywords over `DEFAULT_PRETRAIN` (all part of the cache key).

    Returns:
        The folder holding final.pt (trained now when missing; an interrupted pretraining resumes).
    """
    from ganblocks.text.pretrain_damsm import pretrain_damsm

    settings = {**DEFAULT_PRETRAIN, **hparams}
    root = None if root is None else str(Path(root).resolve())
    key = stable_hash([dataset, root, dataset_kwargs or {}, settings], 16)
    out = cache_dir("text", "damsm") / f"{dataset}-{key}"
    if not (out / "final.pt").is_file():
        pretrain_damsm(out, dataset=dataset, root=root, dataset_kwargs=dataset_kwargs, progress=False,
                       log=log or (lambda message: None), **settings)
    return out


class _Pretrained(DAMSMSentenceEncoder):
    context_keys = ("dataset", "root")
    # data.text_encoder_options: **hparams are pretrain_damsm's keywords (ganblocks.data.text_options)
    options_forwarded_to = "ganblocks.text.pretrain_damsm:pretrain_damsm"
    options_forwarded_fixed = ("out_dir", "progress", "log")
    option_defaults = DEFAULT_PRETRAIN
    option_low = {"dim": 1, "word_dim": 1, "width": 1, "imsize": 8, "epochs": 1, "batch_size": 1}
    option_above = {"lr": 0}
    option_paths = ("checkpoint",)
    option_required = ()  # checkpoint None pretrains on the run's data (cached)

    def __init__(self, checkpoint: str | os.PathLike | None = None, dataset: str = "synthbirds",
                 root: str | os.PathLike | None = None, dataset_kwargs: dict | None = None, **hparams: Any) -> None:
        if checkpoint is None:
            checkpoint = pretrained_damsm(dataset, root, dataset_kwargs, **hparams)
        super().__init__(checkpoint)
        path = Path(checkpoint)
        self.checkpoint = path / "final.pt" if path.is_dir() else path


@register("text_encoder", "damsm_sentence")
class DAMSMPretrainedSentences(_Pretrained):
    """Sentence vectors (N, D) of the DAMSM text encoder pretrained on the run's data (cached; `pretrained_damsm`).

    Args:
        checkpoint: a pretrain_damsm folder or final.pt; None pretrains on (dataset, root) or reuses the cache.
        dataset, root, dataset_kwargs: the data to pretrain on (build_dataset passes dataset and root).
        **hparams: pretrain_damsm keywords over DEFAULT_PRETRAIN.
    """


@register("text_encoder", "damsm_words")
class DAMSMPackedWords(_Pretrained):
    """Sentence vector, word features and word count of each caption packed in one row: (N,) -> (N, D (T + 1) + 1).

    The text AttnGAN's training models (`generator` / `discriminator` "attngan_packed") and the `damsm`
    regulariser take; `unpack_words` splits a row. Same arguments as `damsm_sentence`.
    """

    def __init__(self, checkpoint: str | os.PathLike | None = None, dataset: str = "synthbirds",
                 root: str | os.PathLike | None = None, dataset_kwargs: dict | None = None, **hparams: Any) -> None:
        super().__init__(checkpoint, dataset, root, dataset_kwargs, **hparams)
        self.sentence_size, self.dim = self.dim, packed_dim(self.dim)

    def encode(self, captions: list[str]) -> Tensor:
        if not captions:
            return torch.zeros(0, self.dim)
        rows = []
        for i in range(0, len(captions), 512):
            words, sentence, lengths = self.encode_words(captions[i : i + 512])
            rows.append(pack_words(sentence, words, lengths))
        return torch.cat(rows)

    def cache_key(self) -> str:
        return f"{super().cache_key()}-packed{MAX_WORDS}"
