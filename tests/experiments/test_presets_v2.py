"""The StackGAN++ presets (experiments/conf/preset/*_v2.yaml): their values, the tree they build, the `tree`
pipeline they pick, and a clear refusal from the pipelines that build StackGAN-v1 models."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from experiments.config import CONF_DIR, ConfigError, compose
from ganblocks.models import build_generator, generator_kwargs


@pytest.mark.parametrize("preset,kl_weight,kl_reduction", [("official_v2", 2.0, "mean"), ("paper_v2", 1.0, "sum")])
def test_v2_presets_name_the_tree_and_the_v2_weights(preset, kl_weight, kl_reduction):
    cfg = OmegaConf.load(CONF_DIR / "preset" / f"{preset}.yaml")
    assert cfg.model.preset == preset and cfg.loss.kl_weight == kl_weight and cfg.loss.name == "bce_v2"
    assert (cfg.model.upsample, cfg.model.residual) == ("glu", "glu")
    kw = generator_kwargs("stackgan_v2", cfg.model.preset, upsample=cfg.model.upsample, residual=cfg.model.residual)
    assert kw["conditioning_kwargs"]["kl_reduction"] == kl_reduction
    g = build_generator("stackgan_v2", cfg.model.preset, gf_dim=4, branches=2, text_dim=8, condition_dim=4)
    assert g.sizes == (64, 128)


@pytest.mark.parametrize("preset", ["official_v2", "paper_v2"])
def test_v1_pipelines_refuse_the_v2_presets_before_training(preset):
    assert compose(["profile=smoke", f"preset={preset}"]).pipeline.name == "tree"  # the preset picks it
    with pytest.raises(ConfigError, match=rf"preset '{preset}' has no generator 'stage1'; its generators: \['stackgan_v2'\]"):
        compose(["profile=smoke", f"preset={preset}", "pipeline=two_stage"])


def test_the_tree_pipeline_under_a_v1_preset_names_the_preset_key_and_the_presets_that_fit():
    """`pipeline=tree` keeps the default preset (paper); the refusal once blamed model.stage2_size."""
    with pytest.raises(ConfigError, match=r"preset=paper does not fit pipeline=tree \(stage 'tree'\): preset 'paper' "
                                          r"has no generator 'stackgan_v2'.*presets with 'stackgan_v2': official_v2, "
                                          r"paper_v2 \(e.g. preset=official_v2\)") as raised:
        compose(["profile=smoke", "pipeline=tree"])
    assert "stage2_size" not in str(raised.value)
