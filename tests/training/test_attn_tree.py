"""AttnGAN in the `tree` pipeline: packed DAMSM captions, a D per scale, lambda * DAMSM in G's loss."""

import math

import pytest
import torch

from ganblocks.io import read_jsonl
from ganblocks.losses.damsm import DAMSMLoss
from ganblocks.registry import build
from ganblocks.text.damsm_regulariser import DAMSMRegulariser, load_image_encoder
from ganblocks.text.damsm_words import pack_words, packed_dim, unpack_words
from ganblocks.training import train
from ganblocks.training.build import build_stage
from ganblocks.training.checkpoint import load_generator
from ganblocks.training.step import train_step
from tests.training.conftest import ATTN
from tests.training.fakes import assert_tree_run_finished, write_image_encoder


def test_attn_presets_pick_the_tree_the_attentional_models_damsm_text_and_the_damsm_term(tiny_cfg):
    for preset, score in (("official_attn", "official"), ("paper_attn", "paper"), ("official_attn_coco", "official")):
        cfg = tiny_cfg(f"preset={preset}", "model.stage1_size=64", "model.stage2_size=128")
        stage = cfg.pipeline.stages[0]
        assert cfg.pipeline.name == "tree" and stage.generator == stage.discriminator == "attngan_packed"
        assert list(cfg.loss.regularisers) == ["damsm"] and cfg.data.text_encoder == "damsm_words"
        assert cfg.loss.name == "bce" and cfg.model.d_head == "attngan" and cfg.data.wrong == "shift"
    from ganblocks.models.presets import regulariser_kwargs

    assert regulariser_kwargs("damsm", "official_attn")["weight"] == 5.0  # AttnGAN birds: LAMBDA 5
    assert regulariser_kwargs("damsm", "official_attn_coco")["weight"] == 50.0  # COCO: LAMBDA 50
    assert regulariser_kwargs("damsm", "paper_attn")["word_score"] == "paper"
    assert tiny_cfg("preset=official_v2").pipeline.stages[0].generator == "stackgan_v2"  # StackGAN++ unchanged


def test_packed_captions_round_trip():
    sentence, words, lengths = torch.randn(3, 5), torch.randn(3, 5, 7), torch.tensor([7, 2, 4])
    packed = pack_words(sentence, words, lengths)
    assert packed.shape == (3, packed_dim(5)) == (3, 5 * 19 + 1)
    s, w, mask, n = unpack_words(packed)
    assert torch.equal(s, sentence) and torch.equal(w[:, :, :7], words) and not w[:, :, 7:].any()
    assert torch.equal(n, lengths) and torch.equal(mask, torch.arange(18)[None] >= lengths[:, None])
    with pytest.raises(ValueError, match="not a packed DAMSM caption"):
        unpack_words(torch.randn(3, 1024))


def test_one_step_changes_every_branch_and_every_discriminator(attn_data, tiny_cfg, tmp_path):
    cfg = tiny_cfg(*ATTN)
    s = build_stage(cfg, cfg.pipeline.stages[0], 0, tmp_path, torch.device("cpu"))
    assert [pair.D.image_size for pair in s.pairs] == [64, 128] and type(s.G).__name__ == "PackedAttnGenerator"
    before_g = {k: v.clone() for k, v in s.G.state_dict().items()}
    before_d = {k: v.clone() for k, v in s.D.state_dict().items()}
    train_step(s, next(iter(s.loader)))
    for name, p in s.G.named_parameters():
        assert not torch.equal(before_g[name], p), f"G.{name} did not change"
    for name, p in s.D.named_parameters():
        assert not torch.equal(before_d[name], p), f"D.{name} did not change"
    assert any(name.startswith("h_net2.att.") for name, _ in s.G.named_parameters())  # the attention stage trains


def test_generator_loss_is_every_scale_plus_the_kl_once_plus_lambda_damsm(attn_data, tiny_cfg, tmp_path):
    status = train(tiny_cfg(*ATTN), tmp_path)
    assert status["status"] == "finished" and status["pipeline"] == "tree"
    for r in read_jsonl(tmp_path / "log.jsonl"):
        assert r["128px/kl"] == 0 and r["64px/kl"] > 0  # the conditioning regulariser counted once
        assert math.isclose(r["loss_g"], r["64px/loss_g"] + r["128px/loss_g"] + r["loss_damsm"], rel_tol=1e-5)
        assert math.isclose(r["loss_damsm"], r["damsm_words"] + r["damsm_sentence"], rel_tol=1e-5)
        assert r["loss_damsm"] > 0


def test_damsm_regulariser_is_lambda_times_the_damsm_loss_of_the_largest_image(tmp_path):
    """Known answer: lambda * (w_loss0 + w_loss1 + s_loss0 + s_loss1) of the image encoder on the last image."""
    encoder = load_image_encoder(write_image_encoder(tmp_path / "final.pt", dim=6))
    torch.manual_seed(0)
    words, sentence, lengths = torch.randn(4, 6, 18), torch.randn(4, 6), torch.tensor([3, 18, 5, 9])
    words = words * (torch.arange(18)[None, None] < lengths[:, None, None])
    text, classes = pack_words(sentence, words, lengths), torch.tensor([0, 1, 0, 2])
    images = [torch.randn(4, 3, 32, 32), torch.randn(4, 3, 64, 64, requires_grad=True)]
    regions, code = encoder(images[-1])
    expected, _ = DAMSMLoss(4.0, 5.0, 10.0)(regions, code, words, sentence, lengths, classes)
    fake = type("Enc", (), {"checkpoint": tmp_path / "final.pt"})()
    loss, stats = DAMSMRegulariser(weight=5.0, text_encoder=fake)(images, text=text, class_ids=classes)
    assert torch.allclose(loss, 5.0 * expected, rtol=1e-5) and float(expected.detach()) > 0
    assert torch.allclose(stats["damsm_words"] + stats["damsm_sentence"], loss.detach(), rtol=1e-5)
    loss.backward()
    assert images[-1].grad is not None and images[-1].grad.abs().sum() > 0  # G is pulled through the encoder
    assert not any(p.requires_grad for p in encoder.parameters())  # the image encoder stays frozen
    with pytest.raises(ValueError, match="data.text_encoder=damsm_words"):
        DAMSMRegulariser(text_encoder=object())


@pytest.mark.parametrize("overrides", [
    ["model.conditioning=mixture"], ["model.conditioning=none"], ["model.upsample=bilinear"],
    ["model.d_head=joint"], ["model.d_head=matching_aware"], ["preset=paper_attn"], ["train.ema_decay=null"],
], ids=lambda o: "+".join(o))
def test_block_swaps_train_in_the_attn_tree(attn_data, tiny_cfg, tmp_path, overrides):
    assert_tree_run_finished(train(tiny_cfg(*ATTN, *overrides), tmp_path), tmp_path)


def test_trained_attngan_generates_from_packed_captions_and_loads_as_the_official_layout(attn_data, tiny_cfg, tmp_path):
    """The evaluation's call `G(text, noise)` works unchanged, and the weights are AttnGAN's G_NET's."""
    train(tiny_cfg(*ATTN), tmp_path)
    G = load_generator(tmp_path)
    text = pack_words(torch.randn(2, 6), torch.randn(2, 6, 4), torch.tensor([4, 2]))
    out = G(text, torch.randn(2, G.noise_dim))
    assert out.image.shape == (2, 3, 128, 128) and [a.shape[1:] for a in out.attention] == [(18, 64, 64)]
    official = build("generator", "attngan", text_dim=6, noise_dim=8, condition_dim=8, gf_dim=4, num_branches=2,
                     conditioning_kwargs={"activation": "glu", "kl_reduction": "mean"})
    official.load_state_dict(G.state_dict(), strict=True)
    s, w, mask, _ = unpack_words(text)
    torch.manual_seed(0)
    a = G(text, torch.zeros(2, 8)).image
    torch.manual_seed(0)
    assert torch.equal(a, official.eval()(s, torch.zeros(2, 8), w, mask).image)


def test_every_scale_of_the_attn_tree_scores_the_matching_then_the_mismatched_sentence(attn_data, tiny_cfg, tmp_path):
    """AttnGAN's D takes the sentence vector: the matching one for real and fake, the mismatched one for wrong."""
    from tests.training.test_signals import _record_head_conditions

    cfg = tiny_cfg(*ATTN)
    s = build_stage(cfg, cfg.pipeline.stages[0], 0, tmp_path, torch.device("cpu"))
    batch = next(iter(s.loader))
    sentence, wrong = unpack_words(batch.embeddings)[0], unpack_words(batch.wrong_embeddings)[0]
    assert not torch.equal(sentence, wrong)
    records = [_record_head_conditions(pair.D) for pair in s.pairs]
    train_step(s, batch)
    assert len(records) == 2
    for real_matching, real_wrong, fake_d, fake_g in records:
        torch.testing.assert_close(real_matching, sentence)
        torch.testing.assert_close(real_wrong, wrong)
        torch.testing.assert_close(fake_d, sentence)
        torch.testing.assert_close(fake_g, sentence)
