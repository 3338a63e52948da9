"""The `tree` pipeline (StackGAN++): every branch of one generator and a discriminator per scale, trained together."""

import math

import pytest
import torch

from ganblocks.io import read_jsonl
from ganblocks.training import train
from ganblocks.training.build import build_stage
from ganblocks.training.checkpoint import load_checkpoint
from ganblocks.training.step import at_size, train_step
from tests.training.fakes import assert_tree_run_finished

TREE = ["preset=official_v2"]  # picks pipeline=tree, EMA 0.999, bce_v2, joint heads; tiny sizes 16 -> 32 px


def test_v2_presets_pick_the_tree_pipeline_and_an_ema_of_g(tiny_cfg):
    for preset in ("official_v2", "paper_v2"):
        cfg = tiny_cfg(f"preset={preset}")
        assert cfg.pipeline.name == "tree" and cfg.train.ema_decay == 0.999 and cfg.loss.name == "bce_v2"
    assert tiny_cfg().pipeline.name == "two_stage"  # the v1 default is unchanged


@pytest.mark.parametrize("stage2_size, branches", [(16, 1), (32, 2), (64, 3)])
def test_a_tree_has_a_discriminator_per_branch_at_its_size(tiny_data, tiny_cfg, tmp_path, stage2_size, branches):
    cfg = tiny_cfg(*TREE, f"model.stage2_size={stage2_size}")
    s = build_stage(cfg, cfg.pipeline.stages[0], 0, tmp_path, torch.device("cpu"))
    assert s.G.branches == branches
    assert [pair.D.image_size for pair in s.pairs] == [16 * 2**k for k in range(branches)]
    assert [pair.scale for pair in s.pairs] == list(range(branches))
    assert [pair.name for pair in s.pairs] == ([s.name] if branches == 1 else [f"{16 * 2**k}px" for k in range(branches)])


def test_a_tree_size_that_is_not_a_doubling_of_stage1_size_is_refused_when_composing(tiny_cfg):
    with pytest.raises(ValueError, match="imsize=48 is not model.stage1_size=16 doubled"):
        tiny_cfg(*TREE, "model.stage2_size=48")


def test_one_step_changes_every_branch_and_every_discriminator(tiny_data, tiny_cfg, tmp_path):
    cfg = tiny_cfg(*TREE, "model.stage2_size=64")
    s = build_stage(cfg, cfg.pipeline.stages[0], 0, tmp_path, torch.device("cpu"))
    before_g = {k: v.clone() for k, v in s.G.state_dict().items()}
    before_d = {k: v.clone() for k, v in s.D.state_dict().items()}
    train_step(s, next(iter(s.loader)))
    for name, p in s.G.named_parameters():
        assert not torch.equal(before_g[name], p), f"G.{name} did not change"
    for name, p in s.D.named_parameters():
        assert not torch.equal(before_d[name], p), f"D.{name} did not change"
    assert {name.split(".")[0] for name, _ in s.D.named_parameters()} == {"0", "1", "2"}


def test_real_images_reach_a_lower_scale_average_pooled():
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    assert at_size(images, 4) is images
    pooled = at_size(images, 2)
    assert pooled.shape == (2, 3, 2, 2)
    assert pooled[0, 0, 0, 0] == (0 + 1 + 4 + 5) / 4
    with pytest.raises(ValueError, match="cannot be pooled to a 3 px scale"):
        at_size(images, 3)


def test_generator_loss_is_every_scale_plus_the_kl_once_plus_colour_consistency(tiny_data, tiny_cfg, tmp_path):
    status = train(tiny_cfg(*TREE, "loss.regularisers=[color_consistency]"), tmp_path)
    assert status["status"] == "finished" and status["pipeline"] == "tree"
    for r in read_jsonl(tmp_path / "log.jsonl"):
        assert r["32px/kl"] == 0 and r["16px/kl"] > 0  # the conditioning regulariser counted once
        assert math.isclose(r["loss_g"], r["16px/loss_g"] + r["32px/loss_g"] + r["loss_color"], rel_tol=1e-5)
        assert math.isclose(r["loss_d"], r["16px/loss_d"] + r["32px/loss_d"], rel_tol=1e-5)
        assert r["loss_color"] > 0
    final = load_checkpoint(tmp_path / "checkpoints" / "tree" / "final.pt")
    assert final["ema"] is not None and final["ema"].keys() == final["generator"].keys()


@pytest.mark.parametrize("overrides", [
    ["model.conditioning=mixture"], ["model.conditioning=none"], ["model.upsample=bilinear"],
    ["model.d_head=vanilla"], ["model.d_head=matching_aware"], ["loss.text_transform=gan_int"],
    ["preset=paper_v2"], ["train.ema_decay=null"],
], ids=lambda o: "+".join(o))
def test_block_swaps_train_in_the_tree(tiny_data, tiny_cfg, tmp_path, overrides):
    assert_tree_run_finished(train(tiny_cfg(*TREE, *overrides), tmp_path), tmp_path)


def test_step_factor_gives_the_tree_the_training_images_of_two_stages(tiny_data, tiny_cfg, tmp_path):
    """Grid `families` trains the tree with train.step_factor=2: as many images as two_stage's two stages."""
    train(tiny_cfg(*TREE, "train.step_factor=2"), tmp_path / "tree")
    train(tiny_cfg("pipeline=two_stage"), tmp_path / "two")
    tree = [r["step"] for r in read_jsonl(tmp_path / "tree" / "log.jsonl")]
    two = [r["step"] for r in read_jsonl(tmp_path / "two" / "log.jsonl")]
    assert tree[-1] == 8 and two[-1] == 4 and len({r for r in two}) == 2  # 8 tree steps = 4 + 4 stage steps
