"""A tiny in-memory dataset and batch loader that follow the ganblocks.data contracts (for loop tests)."""

from __future__ import annotations

import torch

from ganblocks.types import Batch


class TinyEncoder:
    """Deterministic caption -> (dim,) vector from the caption's characters (no training, no files)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def encode(self, captions: list[str]) -> torch.Tensor:
        out = torch.zeros(len(captions), self.dim)
        for i, caption in enumerate(captions):
            for j, ch in enumerate(caption.encode()):
                out[i, (ch + j) % self.dim] += 1.0
        return out / out.norm(dim=1, keepdim=True).clamp_min(1e-6)


class TinyDataset:
    """N images of 4 classes: uint8 (N, 3, L, L) with L = imsize * 76 // 64, embeddings (N, 2, D)."""

    def __init__(self, imsize: int, n: int = 16, text_dim: int = 12, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        size = imsize * 76 // 64
        self.imsize = imsize
        self.class_ids = torch.arange(n) % 4
        colours = torch.rand(4, 3, 1, 1, generator=g)
        noise = torch.rand(n, 3, size, size, generator=g) * 0.3
        self.images = ((colours[self.class_ids] * 0.7 + noise) * 255).clamp(0, 255).to(torch.uint8)
        centres = torch.randn(4, text_dim, generator=g)
        self.embeddings = centres[self.class_ids][:, None] + 0.1 * torch.randn(n, 2, text_dim, generator=g)
        self.captions = [[f"class {int(c)} caption {k}" for k in range(2)] for c in self.class_ids]
        self.text_encoder = TinyEncoder(text_dim)
        self.root = None

    def __len__(self) -> int:
        return len(self.class_ids)


class TinyAttnDataset(TinyDataset):
    """TinyDataset whose caption rows are packed DAMSM captions (`damsm_words`): sentence (D), words (D x 18),
    word count (3 to 8), with an image encoder file beside them as `text_encoder.checkpoint` (AttnGAN runs)."""

    def __init__(self, imsize: int, checkpoint, n: int = 16, dim: int = 6, seed: int = 0) -> None:
        from ganblocks.text.damsm_words import pack_words

        super().__init__(imsize, n=n, text_dim=dim, seed=seed)
        g = torch.Generator().manual_seed(seed + 1)
        sentence = self.embeddings.reshape(n * 2, dim)
        words = torch.randn(n * 2, dim, 8, generator=g)
        lengths = torch.randint(3, 9, (n * 2,), generator=g)
        words = words * (torch.arange(8)[None, None, :] < lengths[:, None, None])  # padded words are zeros
        self.embeddings = pack_words(sentence, words, lengths).reshape(n, 2, -1)
        self.text_encoder = type("FakeDAMSM", (), {"checkpoint": checkpoint, "dim": self.embeddings.shape[-1]})()


def write_image_encoder(path, dim: int = 6, width: int = 4, imsize: int = 64, seed: int = 0):
    """A pretrain_damsm-like final.pt holding a random small_cnn DAMSM image encoder; returns `path`."""
    from ganblocks.registry import build

    torch.manual_seed(seed)
    image = build("damsm", "small_cnn", dim=dim, width=width, image_size=imsize)
    torch.save({"config": {"image_encoder": "small_cnn", "dim": dim, "width": width, "imsize": imsize},
                "image": image.state_dict()}, path)
    return path


class TinyLoader:
    """Epoch iterator of Batch records with random crop + flip; state_dict() resumes mid-epoch exactly."""

    def __init__(self, dataset: TinyDataset, batch_size: int, device, seed: int, wrong: str = "class",
                 drop_last: bool = True) -> None:
        self.dataset, self.batch_size, self.device = dataset, batch_size, torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)
        self.order: torch.Tensor | None = None
        self.position = 0

    def __len__(self) -> int:
        return len(self.dataset) // self.batch_size

    def __iter__(self):
        while True:
            if self.order is None:
                self.order, self.position = torch.randperm(len(self.dataset), generator=self.generator), 0
            if self.position + self.batch_size > len(self.order):
                self.order = None
                return
            idx = self.order[self.position : self.position + self.batch_size]
            self.position += self.batch_size
            yield self._batch(idx)

    def _batch(self, idx: torch.Tensor) -> Batch:
        ds, s = self.dataset, self.dataset.imsize
        off = int(torch.randint(0, ds.images.shape[-1] - s + 1, (1,), generator=self.generator))
        images = ds.images[idx, :, off : off + s, off : off + s].float() / 127.5 - 1
        if bool(torch.rand((), generator=self.generator) < 0.5):
            images = images.flip(-1)
        caption = torch.randint(0, 2, (len(idx),), generator=self.generator)
        emb = ds.embeddings[idx, caption]
        return Batch(images=images, embeddings=emb, wrong_embeddings=emb.roll(1, 0), class_ids=ds.class_ids[idx],
                     indices=idx, caption_ids=caption).to(self.device)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "order": self.order, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.order, self.position = state["order"], state["position"]


def nan_d_loss_at_call(monkeypatch, call: int) -> None:
    """Make the GAN losses' D loss NaN at its `call`-th use in this process (0-based): a divergence on demand.

    One step uses a stage's D loss once per pair, so with one pair `call` is the step of the first stage
    (what the removed `train.nan_at_step` hook did, now without a branch in the training step).
    """
    import itertools

    from ganblocks.losses.gan import GANLoss
    from ganblocks.losses.gan_v2 import JointBCELoss

    calls, depth = itertools.count(), [0]
    for cls in (GANLoss, JointBCELoss):
        def discriminator(self, *args, _real=cls.discriminator, **kwargs):
            depth[0] += 1  # JointBCELoss may call GANLoss's: count the outermost call only
            try:
                loss, stats = _real(self, *args, **kwargs)
            finally:
                depth[0] -= 1
            if depth[0] == 0 and next(calls) == call:
                loss = loss * float("nan")
            return loss, stats

        monkeypatch.setattr(cls, "discriminator", discriminator)


def assert_tree_run_finished(status: dict, run_dir) -> None:
    """A 4-step `tree` run (log every 2) finished with finite losses at steps 2 and 4 and its last sheet."""
    import math

    from ganblocks.io import read_jsonl

    assert status["status"] == "finished"
    records = read_jsonl(run_dir / "log.jsonl")
    assert [(r["stage"], r["step"]) for r in records] == [("tree", 2), ("tree", 4)]
    assert all(math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"]) for r in records)
    assert (run_dir / "samples" / "tree_0000004.png").is_file()
