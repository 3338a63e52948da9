"""`rnn`: a bi-LSTM sentence encoder trained DAMSM-style against a small image encoder on the train split.

AttnGAN's DAMSM matches images and text in a common space; this is its sentence-level part: image and
sentence vectors, cosine similarity scaled by gamma, cross-entropy over the batch in both directions, with
pairs of the same class masked out as negatives. Trained once per (dataset, hyper-parameters) and cached
under cache_dir('text', 'rnn'); `python -m ganblocks.text.pretrain` trains it ahead of time.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganblocks.io import atomic_torch_save, cache_dir, load_torch_file, stable_hash
from ganblocks.registry import register
from ganblocks.text.base import TextEncoder, check_captions, tokenize

PAD, UNK = 0, 1
MIN_STEPS = 900  # the fewest updates pretraining gives a small train split (see epochs_for)
EMBEDDING_NORM = 32.0  # the L2 norm of encoded sentences (see RNNEncoder)


class Vocabulary:
    """Word -> index over the training captions; 0 pads, 1 is an unknown word."""

    def __init__(self, words: list[str]) -> None:
        self.words = ["<pad>", "<unk>"] + list(words)
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, captions: list[str], min_count: int = 1) -> "Vocabulary":
        counts = Counter(w for c in captions for w in tokenize(c))
        return cls(sorted(w for w, n in counts.items() if n >= min_count))

    def encode(self, captions: list[str], max_len: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions -> (N, T) int64 token ids (padded with 0) and (N,) lengths (>= 1)."""
        seqs = [[self.index.get(w, UNK) for w in tokenize(c)][:max_len] or [UNK] for c in captions]
        lengths = torch.tensor([len(s) for s in seqs])
        ids = torch.zeros(len(seqs), int(lengths.max()) if seqs else 1, dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
        return ids, lengths


class SentenceLSTM(nn.Module):
    """Word embedding + bi-LSTM; the sentence vector is both directions' last hidden states.

    (N, T) token ids, (N,) lengths -> (N, dim).
    """

    def __init__(self, vocab_size: int, dim: int = 256, word_dim: int = 128, dropout: float = 0.3) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"rnn dim={dim}: must be even (two LSTM directions of dim/2)")
        self.embed = nn.Embedding(vocab_size, word_dim, padding_idx=PAD)
        self.drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(word_dim, dim // 2, batch_first=True, bidirectional=True)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.embed(ids))
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return torch.cat([h[0], h[1]], dim=1)


class ImageEncoder(nn.Module):
    """A small CNN standing in for DAMSM's Inception-v3: (N, 3, S, S) in [-1, 1] -> (N, dim)."""

    def __init__(self, dim: int = 256, width: int = 16) -> None:
        super().__init__()
        layers, c = [], 3
        for w in (width, width * 2, width * 4, width * 8):
            layers += [nn.Conv2d(c, w, 4, 2, 1), nn.BatchNorm2d(w), nn.LeakyReLU(0.2, inplace=True)]
            c = w
        self.features = nn.Sequential(*layers)
        self.proj = nn.Linear(c, dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(self.features(images).mean((2, 3)))


def sentence_matching_loss(img: torch.Tensor, sent: torch.Tensor, class_ids: torch.Tensor,
                           gamma: float = 10.0) -> torch.Tensor:
    """DAMSM sentence loss: (B, D) image and sentence vectors -> scalar.

    Cosine similarities times `gamma`; cross-entropy image->text and text->image with the matching pair
    as the target; other pairs of the same class are masked out (they are not true negatives).
    """
    sim = gamma * F.normalize(img, dim=1) @ F.normalize(sent, dim=1).t()
    same = class_ids[:, None] == class_ids[None, :]
    mask = same & ~torch.eye(len(img), dtype=torch.bool, device=img.device)
    sim = sim.masked_fill(mask, float("-inf"))
    target = torch.arange(len(img), device=img.device)
    return F.cross_entropy(sim, target) + F.cross_entropy(sim.t(), target)


def train_rnn(dataset: Any, dim: int = 256, epochs: int = 20, batch_size: int = 48, lr: float = 2e-3,
              seed: int = 0, device: str = "cpu", log: Any = print) -> dict:
    """Train the text and image encoders on a `TextImageDataset` (its captions and images).

    Returns a checkpoint dict: {'vocab', 'dim', 'text_state', 'image_state', 'losses', 'seconds'}.
    """
    from ganblocks.data.batching import BatchLoader

    torch.manual_seed(seed)
    flat = [c for caps in dataset.captions for c in caps]
    vocab = Vocabulary.build(flat)
    ids, lengths = vocab.encode(flat)
    n_caps = len(dataset.captions[0])
    ids, lengths = ids.view(len(dataset), n_caps, -1), lengths.view(len(dataset), n_caps)
    text, image = SentenceLSTM(len(vocab.words), dim).to(device), ImageEncoder(dim).to(device)
    opt = torch.optim.Adam(list(text.parameters()) + list(image.parameters()), lr=lr, betas=(0.5, 0.999))
    loader = BatchLoader(dataset, min(batch_size, len(dataset)), device, seed=seed, wrong="shift")
    losses, start = [], time.perf_counter()
    for epoch in range(epochs):
        total, steps = 0.0, 0
        for batch in loader:
            idx, cap = batch.indices.cpu(), batch.caption_ids.cpu()
            sent = text(ids[idx, cap].to(device), lengths[idx, cap])
            loss = sentence_matching_loss(image(batch.images), sent, batch.class_ids)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, steps = total + loss.item(), steps + 1
        losses.append(total / max(steps, 1))
        if log and (epoch % 5 == 4 or epoch == epochs - 1):
            log(f"rnn epoch {epoch + 1}/{epochs}: matching loss {losses[-1]:.4f}")
    return {"vocab": vocab.words[2:], "dim": dim, "text_state": {k: v.cpu() for k, v in text.state_dict().items()},
            "image_state": {k: v.cpu() for k, v in image.state_dict().items()}, "losses": losses,
            "seconds": time.perf_counter() - start}


def checkpoint_path(dataset: str, root: str | None, dataset_kwargs: dict | None, hparams: dict) -> Path:
    """Where the pre-trained encoder of (dataset, root, kwargs, hyper-parameters) is cached."""
    key = stable_hash([dataset, str(Path(root).resolve()) if root else None, dataset_kwargs or {}, hparams])
    return cache_dir("text", "rnn") / f"{dataset}-{key}.pt"


def epochs_for(n_images: int, batch_size: int, epochs: int, min_steps: int) -> int:
    """Epochs to train on `n_images`: at least `epochs`, and enough for `min_steps` updates of `batch_size`.

    A small train split has few batches an epoch: the built-in `tiny` one (120 images, 2 batches of 48) gets
    40 updates from 20 epochs, after which the matching loss has barely moved (7.95 -> 7.43; at 900 updates
    it is 0.06, docs/results/learning.md section 5). `small` (2,250 images, 46 batches) keeps its 20 epochs.
    """
    batches = max(1, n_images // min(batch_size, n_images))
    return max(epochs, -(-min_steps // batches))


def pretrain(dataset: str = "synthbirds", root: str | os.PathLike | None = None, dataset_kwargs: dict | None = None,
             dim: int = 256, epochs: int = 20, batch_size: int = 48, lr: float = 2e-3, seed: int = 0,
             imsize: int = 32, device: str = "cpu", force: bool = False, log: Any = print,
             min_steps: int = MIN_STEPS) -> Path:
    """Train (unless cached) the rnn encoder on the train split of `dataset`; returns the checkpoint path.

    It trains `epochs_for(len(train split), batch_size, epochs, min_steps)` epochs; that number is the one in
    the cache key, so a split where `min_steps` does not bind keeps the key (and encoder) of `epochs` alone.
    """
    from ganblocks.data.dataset import build_dataset

    for name, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("min_steps", min_steps, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"rnn encoder: {name}={value!r}; expected an integer >= {low}")
    ds = build_dataset(dataset, "train", imsize, None, root=root, **(dataset_kwargs or {}))
    epochs = epochs_for(len(ds), batch_size, epochs, min_steps)
    hparams = {"dim": dim, "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "imsize": imsize}
    path = checkpoint_path(dataset, None if root is None else str(root), dataset_kwargs, hparams)
    if path.exists() and not force:
        return path
    ckpt = train_rnn(ds, dim=dim, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device, log=log)
    ckpt.update(dataset=dataset, root=None if root is None else str(root), dataset_kwargs=dataset_kwargs or {},
                hparams=hparams)
    atomic_torch_save(path, ckpt)
    return path


@register("text_encoder", "rnn")
class RNNEncoder(TextEncoder):
    """Bi-LSTM sentence encoder pre-trained DAMSM-style on the dataset's train split (cached): (N,) -> (N, dim).

    Sentence vectors are scaled to L2 norm `EMBEDDING_NORM` (32 = sqrt(1024), the norm of `bow` and of the
    1024-d char-CNN-RNN embeddings the conditioning layers were designed for): the raw DAMSM vectors have
    norm ~6, which the N(0, 0.02)-initialised conditioning and discriminator FC layers see 5x weaker
    (docs/results/learning.md). DAMSM only uses their direction (cosine), so nothing else changes.

    Args:
        checkpoint: a file from `pretrain`; default: the cached one for (dataset, root, hyper-parameters),
            trained now when missing.
        dataset, root, dataset_kwargs: what to train on (build_dataset passes dataset and root).
        dim, epochs, batch_size, lr, seed, imsize: training hyper-parameters (part of the cache key).
        min_steps: the fewest updates a small train split gets (`epochs_for`; 0 = exactly `epochs`).
    """

    context_keys = ("dataset", "root")
    option_low = {"dim": 1, "epochs": 1, "batch_size": 1, "min_steps": 0, "imsize": 8}  # checked at config time
    option_above = {"lr": 0}  # (ganblocks.data.text_options)
    option_paths = ("checkpoint",)

    def __init__(self, checkpoint: str | os.PathLike | None = None, dataset: str = "synthbirds",
                 root: str | os.PathLike | None = None, dataset_kwargs: dict | None = None, dim: int = 256,
                 epochs: int = 20, batch_size: int = 48, lr: float = 2e-3, seed: int = 0, imsize: int = 32,
                 device: str = "cpu", min_steps: int = MIN_STEPS) -> None:
        if checkpoint is None:
            checkpoint = pretrain(dataset, root, dataset_kwargs, dim, epochs, batch_size, lr, seed, imsize, device,
                                  min_steps=min_steps)
        self.checkpoint = Path(checkpoint)
        if not self.checkpoint.is_file():
            raise FileNotFoundError(f"rnn checkpoint {self.checkpoint} does not exist; create one with "
                                    f"`python -m ganblocks.text.pretrain --dataset NAME`")
        ckpt = load_torch_file(self.checkpoint, map_location="cpu")  # weights_only: never runs code from the file
        self.vocab = Vocabulary(ckpt["vocab"])
        self.dim = int(ckpt["dim"])
        self.model = SentenceLSTM(len(self.vocab.words), self.dim)
        self.model.load_state_dict(ckpt["text_state"])
        self.model.eval()
        self._key = "rnn-" + stable_hash([ckpt["vocab"], float(sum(v.double().sum() for v in ckpt["text_state"].values()))])

    @torch.no_grad()
    def encode(self, captions: list[str]) -> torch.Tensor:
        captions = check_captions(captions, "rnn")
        out = []
        for start in range(0, len(captions), 512):
            ids, lengths = self.vocab.encode(captions[start:start + 512])
            out.append(F.normalize(self.model(ids, lengths), dim=1) * EMBEDDING_NORM)
        return torch.cat(out) if out else torch.zeros(0, self.dim)

    def cache_key(self) -> str:
        return f"{self._key}-n{EMBEDDING_NORM}"

    def image_encoder(self) -> tuple[nn.Module, int]:
        """The image encoder pre-trained with this text encoder (its DAMSM pair), frozen and in eval mode:
        (N, 3, S, S) in [-1, 1] -> (N, dim), and the size S it was trained at. Used by the `damsm_sentence`
        regulariser."""
        ckpt = load_torch_file(self.checkpoint, map_location="cpu")
        with torch.random.fork_rng(devices=[]):  # its random init (overwritten) must not move a run's RNG
            encoder = ImageEncoder(int(ckpt["dim"]))
        encoder.load_state_dict(ckpt["image_state"])
        return encoder.eval().requires_grad_(False), int(ckpt.get("hparams", {}).get("imsize", 32))
