"""`BatchLoader`: epochs of `Batch` records cut straight from the in-memory uint8 image tensor.

No per-item Python loop and no worker processes: a batch is one fancy index into the (N, 3, L, L) uint8
tensor, one copy to the device, and one gather on the device that crops to imsize and flips per sample.
All randomness of batch k of epoch e comes from a generator seeded with (seed, e, k), so a loader restored
from `state_dict()` continues mid-epoch with identical batches.

    >>> loader = BatchLoader(ds, batch_size=64, device="cuda", seed=0)
    >>> for batch in loader: ...          # one epoch; iterate again for the next
"""

from __future__ import annotations

from typing import Iterator

import torch

from ganblocks.data.dataset import TextImageDataset
from ganblocks.types import Batch

WRONG_MODES = ("class", "shift")

# The 256 pixel levels mapped to [-1, 1] by the CPU's division. Elsewhere they are looked up, which gives
# the CPU's bits on every device: CUDA divides by a scalar as a multiply by its reciprocal, one ulp off.
_UNIT_LEVELS = torch.arange(256, dtype=torch.float32).div(127.5).sub(1.0)
_LEVELS_ON: dict[torch.device, torch.Tensor] = {}  # _UNIT_LEVELS copied to each device once


def pixels_to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (any shape) -> float32 in [-1, 1] on their device, the same bits on CPU and GPU.

    The CPU divides (4x faster than the lookup there); other devices look the CPU's results up.
    """
    if images.device.type == "cpu":
        return images.float().div_(127.5).sub_(1.0)
    levels = _LEVELS_ON.get(images.device)
    if levels is None:  # copied once per device: a blocking copy in every batch would sync the stream
        levels = _LEVELS_ON.setdefault(images.device, _UNIT_LEVELS.to(images.device))
    return levels[images.int()]


def crop_and_flip(images: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, flips: torch.Tensor, size: int,
                  gather: bool | None = None) -> torch.Tensor:
    """Per-sample crop at (oy, ox) of side `size`, mirrored where `flips`: (B, C, L, L) -> (B, C, S, S).

    `gather` (default: on accelerators) does it in one indexing kernel; on CPU copies of B views are faster.
    """
    if gather is None:
        gather = images.device.type != "cpu"
    if not gather:
        out = torch.stack([images[i, :, y:y + size, x:x + size]
                           for i, (y, x) in enumerate(zip(oy.tolist(), ox.tolist()))])
        if flips.any():
            out[flips] = out[flips].flip(-1)
        return out
    ar = torch.arange(size)
    # non_blocking: a blocking host-to-device copy waits for the stream (the previous training step) first.
    rows = (oy[:, None] + ar).to(images.device, non_blocking=True)
    cols = torch.where(flips[:, None], ox[:, None] + size - 1 - ar, ox[:, None] + ar).to(images.device,
                                                                                        non_blocking=True)
    bi = torch.arange(len(images), device=images.device)[:, None, None, None]
    ci = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    return images[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]


class BatchLoader:
    """Deterministic, resumable epoch iterator of training batches.

    Args:
        dataset: a `TextImageDataset` with images (N, 3, L, L) uint8 and embeddings (N, n, D).
        batch_size: images per batch.
        device: where batches are assembled (crop and flip run there).
        seed: seeds the epoch permutations and every per-batch draw.
        wrong: 'class' (mismatched caption from an image of another class, CUB practice) or 'shift'
            (the official StackGAN batch shift: wrong[i] = embeddings[(i + 1) % B]).
        drop_last: drop the last incomplete batch of an epoch.
        crop: random crop from L to imsize (False: centre crop).
        flip: random horizontal flip with probability 0.5.
        rank, world_size: under DDP, every rank draws the same epoch permutation and takes its own disjoint
            shard of it (every world_size-th index from `rank`, the remainder dropped so all ranks step
            equally); per-batch draws also depend on the rank. rank 0 of 1 is the single-process loader.

    Yields:
        `Batch` with images float (B, 3, imsize, imsize) in [-1, 1] on `device`.
    """

    def __init__(self, dataset: TextImageDataset, batch_size: int, device: str | torch.device = "cpu",
                 seed: int = 0, wrong: str = "class", drop_last: bool = True, crop: bool = True,
                 flip: bool = True, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank={rank} of world_size={world_size}: expected 0 <= rank < world_size")
        self.rank, self.world_size = int(rank), int(world_size)
        if wrong not in WRONG_MODES:
            raise ValueError(f"wrong={wrong!r} (data.wrong): expected one of {WRONG_MODES}")
        n = len(dataset) // self.world_size  # images in this rank's shard
        if batch_size < 1 or (drop_last and batch_size > n):
            raise ValueError(f"batch_size={batch_size} for {n} images per rank ({len(dataset)} images, "
                             f"{self.world_size} ranks): expected 1..{n} (or drop_last=False)")
        if dataset.embeddings.shape[0] != len(dataset):
            raise ValueError(f"dataset has {len(dataset)} images but {dataset.embeddings.shape[0]} embedding rows")
        if wrong == "class" and torch.unique(dataset.class_ids).numel() < 2:
            raise ValueError("wrong='class' needs at least two classes in the dataset; use wrong='shift'")
        self.dataset, self.batch_size, self.seed = dataset, int(batch_size), int(seed)
        self.device = torch.device(device)
        self.wrong, self.drop_last, self.crop, self.flip = wrong, drop_last, crop, flip
        self.imsize = int(dataset.imsize)
        if self.imsize > dataset.load_size:
            raise ValueError(f"imsize {self.imsize} exceeds the stored size {dataset.load_size}")
        self.epoch, self.position = 0, 0  # next batch to yield: batch `position` of epoch `epoch`
        self._pin = self.device.type == "cuda" and torch.cuda.is_available()
        self._embeddings = dataset.embeddings.float()
        self._class_ids = dataset.class_ids.long()

    def __len__(self) -> int:
        n = len(self.dataset) // self.world_size
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    # -- exact resume --------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Where the loader stands: the next batch it will yield."""
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed, "batch_size": self.batch_size,
                "n": len(self.dataset), "wrong": self.wrong, "world_size": self.world_size}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a `state_dict()`; the dataset size, batch size, seed and world size must match.

        The state holds no rank: ranks step together, so rank 0's checkpoint resumes every rank.
        """
        for key in ("seed", "batch_size", "n", "wrong", "world_size"):
            mine = self.state_dict()[key]
            if key in state and state[key] != mine:
                raise ValueError(f"loader state has {key}={state[key]!r} but this loader has {key}={mine!r}")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    # -- iteration -----------------------------------------------------------------------------------------
    def _permutation(self, epoch: int) -> torch.Tensor:
        """This rank's shard of the epoch's permutation (the whole permutation for one process)."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(len(self.dataset), generator=g)
        if self.world_size == 1:
            return perm
        return perm[self.rank : len(perm) - len(perm) % self.world_size : self.world_size]

    def __iter__(self) -> Iterator[Batch]:
        if self.position >= len(self):
            self.epoch, self.position = self.epoch + 1, 0
        perm = self._permutation(self.epoch)
        while self.position < len(self):
            start = self.position * self.batch_size
            batch = self._make(perm[start:start + self.batch_size], self.epoch, self.position)
            self.position += 1
            yield batch
        self.epoch, self.position = self.epoch + 1, 0

    def _make(self, idx: torch.Tensor, epoch: int, k: int) -> Batch:
        seed = ((self.seed * 1_000_003 + epoch) * 1_000_003 + k) % (2**63)
        if self.rank:
            seed = (seed * 1_000_003 + self.rank) % (2**63)
        g = torch.Generator().manual_seed(seed)
        b = idx.numel()
        n_caps = self._embeddings.shape[1]
        cap = torch.randint(n_caps, (b,), generator=g)
        if self.wrong == "class":
            wrong_idx = self._other_class(idx, g)
            wrong_emb = self._embeddings[wrong_idx, torch.randint(n_caps, (b,), generator=g)]
        span = self.dataset.load_size - self.imsize
        if self.crop:
            oy, ox = torch.randint(span + 1, (b,), generator=g), torch.randint(span + 1, (b,), generator=g)
        else:
            oy = ox = torch.full((b,), span // 2)
        flips = torch.rand(b, generator=g) < 0.5 if self.flip else torch.zeros(b, dtype=torch.bool)

        images = self.dataset.images[idx]
        if self._pin:
            images = images.pin_memory()
        images = images.to(self.device, non_blocking=True)
        images = crop_and_flip(images, oy, ox, flips, self.imsize)
        images = pixels_to_unit(images)

        emb = self._embeddings[idx, cap]
        if self.wrong == "shift":
            wrong_emb = emb.roll(-1, dims=0)
        batch = Batch(images=images, embeddings=emb, wrong_embeddings=wrong_emb, class_ids=self._class_ids[idx],
                      indices=idx.clone(), caption_ids=cap)
        return batch.to(self.device) if self.device.type != "cpu" else batch

    def _other_class(self, idx: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """For each index, a random dataset index of a different class (rejection sampling)."""
        n = len(self.dataset)
        wrong = torch.randint(n, (idx.numel(),), generator=g)
        for _ in range(100):
            same = self._class_ids[wrong] == self._class_ids[idx]
            if not same.any():
                return wrong
            wrong[same] = torch.randint(n, (int(same.sum()),), generator=g)
        # A class holding nearly all images: pick uniformly among the others explicitly.
        for i in torch.nonzero(self._class_ids[wrong] == self._class_ids[idx]).flatten().tolist():
            others = torch.nonzero(self._class_ids != self._class_ids[idx[i]]).flatten()
            wrong[i] = others[torch.randint(others.numel(), (1,), generator=g)]
        return wrong
