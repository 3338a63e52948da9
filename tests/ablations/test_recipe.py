"""The table caption's recipe states the steps each variant trained, as training/build.py counts them."""

from __future__ import annotations

import pandas as pd
from omegaconf import OmegaConf

from ablations.collect import recipe
from experiments.config import compose


def _runs(tmp_path, **overrides):
    for label, extra in overrides.items():
        run = tmp_path / "runs" / label / "seed0"
        run.mkdir(parents=True)
        OmegaConf.save(compose(["profile=smoke", *extra]), run / "config.yaml")
    return pd.DataFrame({"run_dir": [f"runs/{label}/seed0" for label in overrides]})


def test_recipe_names_the_tree_steps_times_step_factor_and_the_stage_count(tmp_path):
    """The families grid trains the tree with train.step_factor=2: 60 steps of one stage, against StackGAN's
    2 stages of 30; the caption once said '30 steps per stage' for both."""
    frame = _runs(tmp_path, stackgan=["pipeline=two_stage"],
                  stackgan_pp=["preset=paper_v2", "pipeline=tree", "train.step_factor=2"])
    text = recipe(frame, tmp_path)
    assert "30 steps per stage x 2 stages (two_stage), KL weight 1 (paper preset)" in text
    assert "60 steps per stage x 1 stage (tree, train.step_factor 2), KL weight 1 (paper_v2 preset)" in text
    assert "30 steps per stage x 1 stage" not in text
