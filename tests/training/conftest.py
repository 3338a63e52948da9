"""Loop tests run on the tiny in-memory data of fakes.py with the registered models at tiny widths."""

import pytest

from experiments.config import compose
from ganblocks.training import assemble
from tests.training.fakes import TinyAttnDataset, TinyDataset, TinyLoader, write_image_encoder

TINY = [
    "profile=smoke", "device=cpu", "model.gf_dim=4", "model.df_dim=4", "model.condition_dim=8",
    "model.noise_dim=8", "model.stage1_size=16", "model.stage2_size=32", "train.batch_size=4",
    "train.max_steps=4", "train.log_every=2", "train.sample_every=4", "train.checkpoint_every=4",
    "train.progress=false",
]


@pytest.fixture
def tiny_data(monkeypatch):
    """Replace the dataset and loader builders by the in-memory fakes."""
    monkeypatch.setattr(assemble, "build_training_dataset", lambda cfg, imsize, split="train": TinyDataset(imsize))
    monkeypatch.setattr(assemble, "build_loader", lambda cfg, ds, device, seed, rank=0, world_size=1:
                        TinyLoader(ds, int(cfg.train.batch_size), device, seed))


# AttnGAN at tiny widths: its initial stage draws 64 px, so the tree is 64 -> 128 px (2 branches, 2 Ds).
ATTN = ["preset=official_attn", "model.stage1_size=64", "model.stage2_size=128"]


@pytest.fixture
def attn_data(monkeypatch, tmp_path_factory):
    """Like tiny_data, with packed DAMSM captions and a DAMSM image encoder file (for the AttnGAN presets)."""
    checkpoint = write_image_encoder(tmp_path_factory.mktemp("damsm") / "final.pt")
    monkeypatch.setattr(assemble, "build_training_dataset",
                        lambda cfg, imsize, split="train": TinyAttnDataset(imsize, checkpoint))
    monkeypatch.setattr(assemble, "build_loader", lambda cfg, ds, device, seed, rank=0, world_size=1:
                        TinyLoader(ds, int(cfg.train.batch_size), device, seed))


@pytest.fixture
def tiny_cfg():
    """compose() with the tiny overrides plus the test's own."""
    return lambda *overrides: compose(TINY + list(overrides))
