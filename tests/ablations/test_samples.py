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


def test_grid_sheet_has_a_caption_band_and_a_variant_and_stage_label_per_row(tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd
    from omegaconf import OmegaConf
    from PIL import Image

    from ablations import samples
    from ganblocks import sheets

    captions = ["a red bird with white wing bars", "a small blue bird"]
    frame = pd.DataFrame([{"variant": v, "seed": 0, "status": "ok", "run_dir": f"runs/{v}/seed0"} for v in ("none", "gaussian")])
    for v in ("none", "gaussian"):
        (tmp_path / "runs" / v / "seed0").mkdir(parents=True)
        OmegaConf.save({"model": {"stage2_size": 16}}, tmp_path / "runs" / v / "seed0" / "config.yaml")
    monkeypatch.setattr(samples, "evaluation_captions", lambda cfg: (captions, torch.zeros(2, 4)))
    monkeypatch.setattr(samples, "variant_rows", lambda run_dir, emb, size: [
        ("Stage-I", torch.full((2, 3, size, size), 50, dtype=torch.uint8)),
        ("16px", torch.full((2, 3, size, size), 150, dtype=torch.uint8))])
    drawn = []
    real_layout = sheets.layout_sheet
    monkeypatch.setattr(sheets, "layout_sheet", lambda *a, **k: drawn.append(real_layout(*a, **k)) or drawn[-1])

    paths = samples.sample_grids(frame, tmp_path, order=["gaussian", "none"])

    (layout,) = drawn
    assert [t for _, _, t, kind in layout.texts if kind == "label"] == [
        "gaussian", "Stage-I", "gaussian", "16px", "none", "Stage-I", "none", "16px"]
    assert " ".join(t for _, _, t, kind in layout.texts if kind == "caption") == " ".join(captions)
    sheet = np.asarray(Image.open(paths["samples/seed0.png"]))
    assert sheet.shape[0] == layout.band + 4 * (layout.tile + layout.pad) and layout.band > 0
    assert (sheet[: layout.band] < 128).any()
    assert (tmp_path / "samples" / "captions.txt").read_text().splitlines() == [f"1. {captions[0]}", f"2. {captions[1]}"]


def test_each_variant_draws_the_captions_embedded_by_its_own_text_encoder(tmp_path, monkeypatch):
    """A grid may mix text encoders (attention: AttnGAN's packed DAMSM captions beside sentence vectors)."""
    import pandas as pd
    from omegaconf import OmegaConf

    from ablations import samples

    frame = pd.DataFrame([{"variant": v, "seed": 0, "status": "ok", "run_dir": f"runs/{v}/seed0"} for v in ("plain", "attn")])
    for v, encoder in (("plain", "damsm_sentence"), ("attn", "damsm_words")):
        (tmp_path / "runs" / v / "seed0").mkdir(parents=True)
        OmegaConf.save({"model": {"stage2_size": 16}, "data": {"text_encoder": encoder}},
                       tmp_path / "runs" / v / "seed0" / "config.yaml")
    widths = {"damsm_sentence": 4, "damsm_words": 77}
    monkeypatch.setattr(samples, "evaluation_captions", lambda cfg: (["a bird", "a red bird"],
                                                                     torch.zeros(2, widths[cfg.data.text_encoder])))
    seen = {}
    monkeypatch.setattr(samples, "variant_rows", lambda run_dir, emb, size: seen.setdefault(run_dir.parent.name, emb.shape[1])
                        and [("16px", torch.zeros(2, 3, size, size, dtype=torch.uint8))])
    samples.sample_grids(frame, tmp_path)
    assert seen == {"plain": 4, "attn": 77}
