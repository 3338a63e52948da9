"""The training loop: parameter updates, determinism, exact resume, divergence, every loss and head."""

import math

import pytest
import torch

import ganblocks
from ganblocks.io import read_jsonl
from ganblocks.training import load_generator, train
from ganblocks.training.checkpoint import load_checkpoint
from ganblocks.training.state import read_status
from tests.training.conftest import ATTN
from tests.training.fakes import nan_d_loss_at_call


def _ckpt(run, stage, name="final"):
    return load_checkpoint(run / "checkpoints" / stage / f"{name}.pt")


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("pipeline", ["stage1", "two_stage"])
def test_one_step_changes_every_trainable_parameter_and_no_frozen_one(tiny_data, tiny_cfg, tmp_path, pipeline):
    cfg = tiny_cfg(f"pipeline={pipeline}")
    stage = cfg.pipeline.stages[-1].name
    before_steps = 4 * (len(cfg.pipeline.stages) - 1)  # finish earlier stages, stop at step 0 of the last
    train(cfg, tmp_path, stop_after=before_steps)
    before = _ckpt(tmp_path, stage, "last")
    assert before["step"] == 0
    train(cfg, tmp_path, stop_after=1)
    after = _ckpt(tmp_path, stage, "last")
    assert after["step"] == 1
    G, _ = ganblocks.training.assemble.build_stage_models(cfg, cfg.pipeline.stages[-1], after["text_dim"])
    trainable = {n for n, p in G.named_parameters() if p.requires_grad}
    frozen = {n for n, p in G.named_parameters() if not p.requires_grad}
    assert bool(frozen) == (pipeline == "two_stage")
    for name in trainable:
        assert not torch.equal(before["generator"][name], after["generator"][name]), f"G.{name} did not change"
    for name in frozen:
        assert torch.equal(before["generator"][name], after["generator"][name]), f"frozen G.{name} changed"
    for name, value in before["discriminator"].items():
        if value.is_floating_point() and "running" not in name:
            assert not torch.equal(value, after["discriminator"][name]), f"D.{name} did not change"
    if pipeline == "two_stage":  # the frozen Stage-I is the trained Stage-I's final generator
        stage1 = _ckpt(tmp_path, "stage1")["generator"]
        for name, value in stage1.items():
            assert torch.equal(after["generator"][f"STAGE1_G.{name}"], value)


def test_same_seed_same_weights_other_seed_other_weights(tiny_data, tiny_cfg, tmp_path):
    for run, seed in (("a", 0), ("b", 0), ("c", 1)):
        assert train(tiny_cfg("pipeline=stage1", f"seed={seed}"), tmp_path / run)["status"] == "finished"
    a, b, c = (_ckpt(tmp_path / r, "stage1")["generator"] for r in "abc")
    _assert_same_state(a, b)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("overrides, stop, data", [
    (["pipeline=two_stage"], 2, "tiny_data"),  # inside Stage-I
    (["pipeline=two_stage"], 6, "tiny_data"),  # inside Stage-II
    (["preset=official_v2", "loss.regularisers=[color_consistency]"], 2, "tiny_data"),  # the tree: every branch and D
    (ATTN, 2, "attn_data"),  # AttnGAN's tree: attention stages, a D per scale, lambda * DAMSM
], ids=["two_stage-2", "two_stage-6", "tree-2", "attn_tree-2"])
def test_resume_is_exact(request, tiny_cfg, tmp_path, overrides, stop, data):
    request.getfixturevalue(data)
    cfg = tiny_cfg(*overrides, "train.ema_decay=0.5", "train.checkpoint_every=3")
    train(cfg, tmp_path / "straight")
    paused = train(cfg, tmp_path / "resumed", stop_after=stop)
    assert paused["status"] == "running" and "paused" in paused["reason"]
    assert train(cfg, tmp_path / "resumed")["status"] == "finished"
    assert read_jsonl(tmp_path / "straight" / "log.jsonl") == [
        {**r, "images_per_sec": s["images_per_sec"]} for r, s in zip(read_jsonl(tmp_path / "resumed" / "log.jsonl"),
                                                                      read_jsonl(tmp_path / "straight" / "log.jsonl"))]
    for stage in [st.name for st in cfg.pipeline.stages]:
        a, b = _ckpt(tmp_path / "straight", stage), _ckpt(tmp_path / "resumed", stage)
        for part in ("generator", "discriminator", "ema"):
            _assert_same_state(a[part], b[part])
        assert a["opt_g"]["state"].keys() == b["opt_g"]["state"].keys()
        for k in a["opt_g"]["state"]:
            assert torch.equal(a["opt_g"]["state"][k]["exp_avg_sq"], b["opt_g"]["state"][k]["exp_avg_sq"])
    assert not (tmp_path / "resumed" / "checkpoints" / cfg.pipeline.stages[-1].name / "last.pt").exists()


def test_nan_loss_marks_the_run_diverged_and_saves_its_state(tiny_data, tiny_cfg, tmp_path, monkeypatch):
    nan_d_loss_at_call(monkeypatch, 1)
    status = train(tiny_cfg("pipeline=two_stage"), tmp_path)
    assert status["status"] == "diverged" and status["stage"] == "stage1"
    assert "non-finite" in status["reason"] and "stage1" in status["reason"]
    assert read_status(tmp_path)["status"] == "diverged"
    saved = _ckpt(tmp_path, "stage1", "diverged")
    assert saved["step"] == 2  # the step that produced the NaN, and nothing after it
    assert not (tmp_path / "checkpoints" / "stage2").exists()
    assert train(tiny_cfg("pipeline=two_stage"), tmp_path)["status"] == "diverged"  # the caller decides


@pytest.mark.parametrize(
    "overrides",
    [[f"loss.name={name}"] for name in ("bce", "minimax", "hinge")]
    + [[f"model.d_head={head}"] for head in ("vanilla", "matching_aware", "joint")]
    + [["loss.text_transform=gan_int"], ["preset=official"], ["model.conditioning=mixture"], ["model.conditioning=none"],
       ["pipeline=one_stage"], ["pipeline=two_stage", "preset=official", "train.ema_decay=0.9"]],
    ids=lambda o: "+".join(o),
)
def test_every_loss_head_and_option_trains(tiny_data, tiny_cfg, tmp_path, overrides):
    pipeline = [] if any(o.startswith("pipeline") for o in overrides) else ["pipeline=stage1"]
    status = train(tiny_cfg(*pipeline, *overrides), tmp_path)
    assert status["status"] == "finished"
    records = read_jsonl(tmp_path / "log.jsonl")
    stages = [s for s in ("stage1", "stage2", "one_stage") if s in status["params"]]
    assert [(r["stage"], r["step"]) for r in records] == [(s, k) for s in stages for k in (2, 4)]
    assert all(math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"]) for r in records)
    assert status["params"][status["stage"]]["G"] > 0 and status["images_per_sec"][status["stage"]] > 0


def test_stage2_without_text_twice_and_stage2_head_train(tiny_data, tiny_cfg, tmp_path):
    status = train(tiny_cfg("pipeline=two_stage", "model.text_twice=false", "model.stage2_d_head=vanilla"), tmp_path)
    assert status["status"] == "finished"
    assert {r["stage"] for r in read_jsonl(tmp_path / "log.jsonl")} == {"stage1", "stage2"}


def test_load_generator_returns_the_final_ema_generator_in_eval_mode(tiny_data, tiny_cfg, tmp_path):
    train(tiny_cfg("pipeline=two_stage", "train.ema_decay=0.5"), tmp_path)
    G = load_generator(tmp_path)
    assert not G.training and not any(p.requires_grad for p in G.parameters())
    _assert_same_state(G.state_dict(), _ckpt(tmp_path, "stage2")["ema"])
    out = G(torch.randn(3, G.text_dim), torch.randn(3, G.noise_dim))
    assert out.image.shape == (3, 3, 32, 32) and out.stage1_image.shape == (3, 3, 16, 16)
    raw = load_generator(tmp_path, stage="stage1", ema=False)
    _assert_same_state(raw.state_dict(), _ckpt(tmp_path, "stage1")["generator"])
    with pytest.raises(ValueError, match="stages: \\['stage1', 'stage2'\\]"):
        load_generator(tmp_path, stage="stage3")


def test_run_folder_has_config_log_samples_and_status(tiny_data, tiny_cfg, tmp_path):
    train(tiny_cfg("pipeline=two_stage"), tmp_path)
    assert (tmp_path / "config.yaml").is_file()
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["stage1_0000004.png", "stage2_0000004.png"]
    record = read_jsonl(tmp_path / "log.jsonl")[-1]
    for key in ("loss_d", "loss_g", "d_real", "d_wrong", "d_fake", "kl", "lr", "images_per_sec"):
        assert key in record


def test_sample_sheets_carry_the_captions_above_their_columns(tiny_data, tiny_cfg, tmp_path):
    import numpy as np
    from PIL import Image

    from ganblocks.sheets import layout_sheet
    from tests.training.fakes import TinyDataset

    train(tiny_cfg("pipeline=two_stage", "train.n_samples=3"), tmp_path)
    captions = [c[0] for c in TinyDataset(32).captions[:3]]
    layout = layout_sheet(3, [("Stage-I",), ("32px",)], captions, tile=128)
    sheet = np.asarray(Image.open(tmp_path / "samples" / "stage2_0000004.png").convert("RGB"))
    assert sheet.shape[:2] == (layout.band + 2 * (128 + 2), layout.label_width + 3 * (128 + 2))
    assert layout.band > 0 and (sheet[: layout.band] < 128).any()
