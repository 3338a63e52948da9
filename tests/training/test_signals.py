"""Tests that catch wrong training signals: one-line bugs that train without error but teach the wrong thing.

Each test was seen failing with its bug injected (EMA with decay and 1 - decay swapped; GAN-INT's
interpolation replaced by a copy of the caption; D given the matching caption's condition where the
mismatched one belongs).
"""

import copy

import pytest
import torch

from ganblocks.registry import build
from ganblocks.training.build import build_stage
from ganblocks.training.step import train_step

CPU = torch.device("cpu")


def _stage(cfg, tmp_path, index=0):
    return build_stage(cfg, cfg.pipeline.stages[index], index, tmp_path, CPU)


# -- EMA ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("decay", [0.9, 0.999])
def test_ema_after_one_step_is_decay_times_the_old_average_plus_one_minus_decay_times_the_new_weights(
        tiny_data, tiny_cfg, tmp_path, decay):
    s = _stage(tiny_cfg("pipeline=stage1", f"train.ema_decay={decay}"), tmp_path)
    old_average = copy.deepcopy(s.ema.state_dict())
    train_step(s, next(iter(s.loader)))
    new = dict(s.G.named_parameters())
    for name, value in s.ema.named_parameters():
        expected = decay * old_average[name] + (1 - decay) * new[name].detach()
        torch.testing.assert_close(value, expected, rtol=0, atol=1e-6, msg=f"EMA of G.{name}")


# -- GAN-INT -----------------------------------------------------------------------------------------------
def test_gan_int_appends_interpolated_captions_with_fresh_noise():
    text, noise = torch.randn(4, 6), torch.randn(4, 3)
    out_text, out_noise = build("text_transform", "gan_int", beta=0.25)(text, noise)
    assert out_text.shape == (8, 6) and out_noise.shape == (8, 3)
    assert torch.equal(out_text[:4], text) and torch.equal(out_noise[:4], noise)
    torch.testing.assert_close(out_text[4:], 0.25 * text + 0.75 * text.roll(1, dims=0))
    assert not torch.equal(out_noise[4:], noise)
    same_text, same_noise = build("text_transform", "none")(text, noise)
    assert same_text is text and same_noise is noise


def test_the_step_trains_g_on_the_interpolated_captions_when_gan_int_is_configured(tiny_data, tiny_cfg, tmp_path):
    s = _stage(tiny_cfg("pipeline=stage1", "loss.text_transform=gan_int", "loss.gan_int_beta=0.5"), tmp_path)
    seen = []
    s.G.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    batch = next(iter(s.loader))
    train_step(s, batch)
    (text,) = seen
    B = len(batch)
    assert text.shape[0] == 2 * B
    torch.testing.assert_close(text[:B], batch.embeddings)
    torch.testing.assert_close(text[B:], 0.5 * batch.embeddings + 0.5 * batch.embeddings.roll(1, dims=0))
    assert not torch.allclose(text[B:], batch.embeddings)  # an interpolation, not a copy of the caption


# -- D's mismatched condition ------------------------------------------------------------------------------
def _record_head_conditions(D):
    calls = []
    head = D.head

    def recording(features, condition):
        calls.append(condition.detach().clone())
        return head(features, condition)

    D.head = recording  # the instance attribute shadows the method: DiscriminatorScorer calls this
    return calls


def test_d_scores_real_images_with_the_matching_then_the_mismatched_text(tiny_data, tiny_cfg, tmp_path):
    s = _stage(tiny_cfg("pipeline=stage1", "preset=paper"), tmp_path)  # paper: D takes the raw text
    assert s.pairs[0].D.condition_input == "text"
    calls = _record_head_conditions(s.pairs[0].D)
    batch = next(iter(s.loader))
    assert not torch.equal(batch.embeddings, batch.wrong_embeddings)
    train_step(s, batch)
    real_matching, real_wrong, fake_d, fake_g = calls
    torch.testing.assert_close(real_matching, batch.embeddings)
    torch.testing.assert_close(real_wrong, batch.wrong_embeddings)
    torch.testing.assert_close(fake_d, batch.embeddings)
    torch.testing.assert_close(fake_g, batch.embeddings)


def test_official_d_scores_real_images_with_the_conditioning_mean_of_the_mismatched_text(tiny_data, tiny_cfg, tmp_path):
    s = _stage(tiny_cfg("pipeline=stage1", "preset=official"), tmp_path)  # official: D takes G's CA mean
    assert s.pairs[0].D.condition_input == "cond_mean"
    batch = next(iter(s.loader))
    with torch.no_grad():
        matching_mean = s.conditioning(batch.embeddings).mean.clone()
        wrong_mean = s.conditioning(batch.wrong_embeddings).mean.clone()
    assert not torch.allclose(matching_mean, wrong_mean)
    calls = _record_head_conditions(s.pairs[0].D)
    train_step(s, batch)
    real_matching, real_wrong = calls[:2]
    torch.testing.assert_close(real_matching, matching_mean)
    torch.testing.assert_close(real_wrong, wrong_mean)


def test_every_scale_of_a_tree_gets_the_mismatched_condition(tiny_data, tiny_cfg, tmp_path):
    s = _stage(tiny_cfg("preset=official_v2"), tmp_path)
    batch = next(iter(s.loader))
    with torch.no_grad():
        wrong_mean = s.conditioning(batch.wrong_embeddings).mean.clone()
    records = [_record_head_conditions(pair.D) for pair in s.pairs]
    train_step(s, batch)
    assert len(records) == 2
    for calls in records:
        torch.testing.assert_close(calls[1], wrong_mean)


# -- TTUR: D's own learning rate ---------------------------------------------------------------------------
def _one_step_moves(cfg, tmp_path):
    """(stage, largest |change| of any G parameter, of any D parameter) after one step (Adam's first step
    moves every parameter with a gradient by ~lr)."""
    s = _stage(cfg, tmp_path)
    g0 = [p.detach().clone() for p in s.G.parameters()]
    d0 = [p.detach().clone() for p in s.D.parameters()]
    train_step(s, next(iter(s.loader)))
    move = lambda ps, old: max(float((p.detach() - q).abs().max()) for p, q in zip(ps, old))  # noqa: E731
    return s, move(s.G.parameters(), g0), move(s.D.parameters(), d0)


def test_lr_d_reaches_the_discriminator_optimiser_only(tiny_data, tiny_cfg, tmp_path):
    s, g_move, d_move = _one_step_moves(tiny_cfg("pipeline=stage1", "train.lr=0.001", "train.lr_d=0.0001"), tmp_path)
    assert [g["lr"] for g in s.opt_g.param_groups] == [0.001]
    assert [g["lr"] for g in s.opt_d.param_groups] == [0.0001]
    # Adam's first step is lr * g / (|g| + eps): the largest move is lr (up to eps), for G and for D apart.
    assert g_move == pytest.approx(0.001, rel=1e-3) and d_move == pytest.approx(0.0001, rel=1e-3)


def test_lr_d_default_trains_bit_identically_to_the_shared_lr(tiny_data, tiny_cfg, tmp_path):
    runs = []
    for k, extra in enumerate([[], ["train.lr_d=0.0002"], ["train.lr_d=0.0004"]]):  # config.yaml's lr is 2e-4
        s = _stage(tiny_cfg("pipeline=stage1", *extra), tmp_path / str(k))
        for batch in list(iter(s.loader))[:3]:
            train_step(s, batch)
        runs.append({**{f"G.{k}": v for k, v in s.G.state_dict().items()},
                     **{f"D.{k}": v for k, v in s.D.state_dict().items()}})
    default, same, other = runs
    assert all(torch.equal(default[k], same[k]) for k in default)
    assert not all(torch.equal(default[k], other[k]) for k in default if k.startswith("D."))


def test_lr_d_must_be_positive_and_names_the_key(tiny_cfg):
    with pytest.raises(ValueError, match="train.lr_d"):
        tiny_cfg("train.lr_d=0")
