"""The StackGAN++ presets compose, name their ganblocks preset and the StackGAN-v2 weights, and build the tree."""

from __future__ import annotations

import pytest

from experiments.config import compose
from ganblocks.models import build_generator, generator_kwargs


@pytest.mark.parametrize("preset,kl_weight,kl_reduction", [("official_v2", 2.0, "mean"), ("paper_v2", 1.0, "sum")])
def test_v2_presets_compose_and_build_the_tree(preset, kl_weight, kl_reduction):
    cfg = compose(["profile=smoke", f"preset={preset}"])
    assert cfg.model.preset == preset and cfg.loss.kl_weight == kl_weight and cfg.loss.name == "bce_v2"
    assert (cfg.model.upsample, cfg.model.residual) == ("glu", "glu")
    kw = generator_kwargs("stackgan_v2", cfg.model.preset, upsample=cfg.model.upsample, residual=cfg.model.residual)
    assert kw["conditioning_kwargs"]["kl_reduction"] == kl_reduction
    g = build_generator("stackgan_v2", cfg.model.preset, gf_dim=4, branches=2, text_dim=8, condition_dim=4)
    assert g.sizes == (64, 128)
