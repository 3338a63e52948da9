"""Sample sheets: the same noise, conditioning draws included, for every variant and every rerun."""

import torch

from ablations.samples import variant_rows
from experiments.config import compose
from ganblocks.training import assemble, train
from tests.training.conftest import TINY
from tests.training.fakes import TinyDataset, TinyLoader


def test_rows_do_not_depend_on_the_global_rng_and_stage1_rows_match_across_pipelines(tmp_path, monkeypatch):
    monkeypatch.setattr(assemble, "build_training_dataset", lambda cfg, imsize, split="train": TinyDataset(imsize))
    monkeypatch.setattr(assemble, "build_loader", lambda cfg, ds, device, seed, rank=0, world_size=1:
                        TinyLoader(ds, int(cfg.train.batch_size), device, seed))
    for pipeline in ("stage1", "two_stage"):
        assert train(compose(TINY + [f"pipeline={pipeline}"]), tmp_path / pipeline)["status"] == "finished"
    text = TinyDataset(16).embeddings[:5, 0]

    torch.manual_seed(1)
    first = variant_rows(tmp_path / "two_stage", text, size=16)
    torch.manual_seed(2)
    torch.rand(100)
    again = variant_rows(tmp_path / "two_stage", text, size=16)
    assert [name for name, _ in first] == ["Stage-I", "32px"]
    for (_, a), (_, b) in zip(first, again):
        assert torch.equal(a, b)
    # The two-stage run's Stage-I is the stage1 run's generator (same seed, same stage index), and its
    # row draws the same z and the same conditioning sample, so the rows agree pixel for pixel.
    (_, alone), = variant_rows(tmp_path / "stage1", text, size=16)
    assert torch.equal(first[0][1], alone)
