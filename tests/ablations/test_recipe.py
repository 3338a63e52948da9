"""The caption's "Recipe:" sentence names D's own learning rate (TTUR) and a D head shared by every run."""

from __future__ import annotations

import pandas as pd
from omegaconf import OmegaConf

from ablations.collect import recipe
from experiments.config import compose


def _runs(tmp_path, *overrides_per_run):
    for k, overrides in enumerate(overrides_per_run):
        folder = tmp_path / f"r{k}"
        folder.mkdir()
        (folder / "config.yaml").write_text(OmegaConf.to_yaml(compose(["profile=cpu", *overrides]), resolve=True))
    return pd.DataFrame({"run_dir": [f"r{k}" for k in range(len(overrides_per_run))]})


def test_recipe_names_lr_d_only_when_it_differs_and_a_shared_d_head(tmp_path):
    frame = _runs(tmp_path, ["model.d_head=projection", "train.lr_d=0.0005", "loss.regularisers=[]"],
                  ["model.d_head=projection", "train.lr_d=0.0005", "loss.regularisers=[]", "seed=1"])
    text = recipe(frame, tmp_path)
    assert "lr 0.001 (D 0.0005, TTUR), 1000 steps per stage" in text and "G regulariser" not in text
    assert text.endswith("data small; D head projection. ")


def test_recipe_leaves_out_lr_d_when_equal_and_a_d_head_that_varies(tmp_path):
    frame = _runs(tmp_path, ["model.d_head=matching_aware", "train.lr_d=0.001"], ["model.d_head=projection"])
    text = recipe(frame, tmp_path)
    assert "lr 0.001, 1000 steps per stage" in text and "TTUR" not in text and "D head" not in text


def test_recipe_names_g_s_regularisers_and_their_weight(tmp_path):
    frame = _runs(tmp_path, ["loss.regularisers=[damsm_sentence]", "loss.regulariser_options.damsm_sentence.weight=2.5"])
    assert "(paper preset), G regulariser damsm_sentence (weight 2.5), data small" in recipe(frame, tmp_path)
