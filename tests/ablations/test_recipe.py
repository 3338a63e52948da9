"""The table caption's "Recipe:" sentence: the steps each variant trained (as training/build.py counts them), D's own
learning rate (TTUR), a D head shared by every run, and G's regularisers."""

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


def _cpu_runs(tmp_path, *overrides_per_run):
    for k, overrides in enumerate(overrides_per_run):
        folder = tmp_path / f"r{k}"
        folder.mkdir()
        (folder / "config.yaml").write_text(OmegaConf.to_yaml(compose(["profile=cpu", *overrides]), resolve=True))
    return pd.DataFrame({"run_dir": [f"r{k}" for k in range(len(overrides_per_run))]})


def test_recipe_names_lr_d_only_when_it_differs_and_a_shared_d_head(tmp_path):
    frame = _cpu_runs(tmp_path, ["model.d_head=projection", "train.lr_d=0.0005", "loss.regularisers=[]"],
                  ["model.d_head=projection", "train.lr_d=0.0005", "loss.regularisers=[]", "seed=1"])
    text = recipe(frame, tmp_path)
    assert "lr 0.001 (D 0.0005, TTUR), 1000 steps per stage x 1 stage (stage1)" in text and "G regulariser" not in text
    assert text.endswith("data small; D head projection. ")


def test_recipe_leaves_out_lr_d_when_equal_and_a_d_head_that_varies(tmp_path):
    frame = _cpu_runs(tmp_path, ["model.d_head=matching_aware", "train.lr_d=0.001"], ["model.d_head=projection"])
    text = recipe(frame, tmp_path)
    assert "lr 0.001, 1000 steps per stage x 1 stage (stage1)" in text and "TTUR" not in text and "D head" not in text


def test_recipe_names_g_s_regularisers_and_their_weight(tmp_path):
    frame = _cpu_runs(tmp_path, ["loss.regularisers=[damsm_sentence]", "loss.regulariser_options.damsm_sentence.weight=2.5"])
    assert "(paper preset), G regulariser damsm_sentence (weight 2.5), data small" in recipe(frame, tmp_path)


def test_recipe_names_the_text_encoder_options(tmp_path):
    frame = _cpu_runs(tmp_path, ["data.text_encoder_options.epochs=50"])  # the cpu profile sets 100 itself
    assert recipe(frame, tmp_path).startswith("Recipe: text encoder rnn (epochs 50), gf/df 16/16")
    (tmp_path / "plain").mkdir()
    plain = _cpu_runs(tmp_path / "plain", ["~data.text_encoder_options.epochs"])
    assert recipe(plain, tmp_path / "plain").startswith("Recipe: text encoder rnn, gf/df 16/16")
