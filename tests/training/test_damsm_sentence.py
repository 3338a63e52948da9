"""`damsm_sentence`: AttnGAN's sentence DAMSM term for G, with the `rnn` encoder's frozen image encoder."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganblocks.io import atomic_torch_save
from ganblocks.registry import build
from ganblocks.text.rnn import ImageEncoder, RNNEncoder, sentence_matching_loss
from ganblocks.training.build import build_stage
from ganblocks.training.step import train_step
from tests.training import fakes


class PairedEncoder:
    """An `rnn` encoder's image side, read from a checkpoint file as `RNNEncoder.image_encoder` reads it."""

    def __init__(self, checkpoint) -> None:
        self.checkpoint = checkpoint

    image_encoder = RNNEncoder.image_encoder


def _checkpoint(tmp_path, dim=12, imsize=16):
    torch.manual_seed(0)
    encoder = ImageEncoder(dim)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so eval mode is visible
        for m in encoder.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "rnn.pt"
    atomic_torch_save(path, {"dim": dim, "image_state": encoder.state_dict(), "hparams": {"imsize": imsize}})
    return PairedEncoder(path), encoder.eval()


def test_loss_is_weight_times_the_rnn_matching_loss_of_the_frozen_encoder_on_pooled_images(tmp_path):
    paired, encoder = _checkpoint(tmp_path, dim=12, imsize=16)
    reg = build("regulariser", "damsm_sentence", weight=2.5, text_encoder=paired)
    images = torch.randn(4, 3, 32, 32, requires_grad=True)
    text, classes = torch.randn(4, 12) * 32, torch.tensor([0, 1, 1, 2])
    loss, stats = reg([torch.randn(4, 3, 16, 16), images], text, classes)  # the largest scale is scored
    expected = 2.5 * sentence_matching_loss(encoder(F.avg_pool2d(images, 2)), text, classes, 10.0)
    torch.testing.assert_close(loss, expected)
    assert stats["loss_damsm_s"] == loss.detach()
    loss.backward()
    assert images.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in reg.encoder.parameters()) and not reg.encoder.training


def test_without_an_rnn_checkpoint_it_names_the_setting(tmp_path):
    with pytest.raises(ValueError, match="data's text encoder is TinyEncoder; use data.text_encoder=rnn"):
        build("regulariser", "damsm_sentence", text_encoder=fakes.TinyEncoder(12))
    paired, _ = _checkpoint(tmp_path)
    with pytest.raises(ValueError, match=r"weight=0; expected a number > 0"):
        build("regulariser", "damsm_sentence", weight=0, text_encoder=paired)


def test_the_step_scores_g_s_images_against_their_own_captions_and_only_g_moves(tiny_data, tiny_cfg, tmp_path,
                                                                                monkeypatch):
    paired, _ = _checkpoint(tmp_path, dim=12, imsize=16)
    monkeypatch.setattr(fakes.TinyEncoder, "image_encoder", lambda self: paired.image_encoder(), raising=False)
    cpu = torch.device("cpu")
    plain = tiny_cfg("pipeline=stage1")
    cfg = tiny_cfg("pipeline=stage1", "loss.regularisers=[damsm_sentence]",
                   "loss.regulariser_options.damsm_sentence.weight=3.0")
    runs = []
    for k, c in enumerate((plain, cfg)):
        s = build_stage(c, c.pipeline.stages[0], 0, tmp_path / str(k), cpu)
        seen = []
        if s.regularisers:
            real = s.regularisers[0]
            assert real.weight == 3.0  # loss.regulariser_options reached the constructor

            class Spy:
                def __call__(self, images, text=None, class_ids=None):
                    seen.append((images, text, class_ids))
                    return real(images, text=text, class_ids=class_ids)

            s.regularisers = [Spy()]
        batch = next(iter(s.loader))
        train_step(s, batch)
        runs.append((s, batch, seen))
    (base, _, _), (reg, batch, seen) = runs
    (images,), text, class_ids = seen[0]
    assert torch.equal(text, batch.embeddings) and torch.equal(class_ids, batch.class_ids)
    assert images.shape == (len(batch), 3, 16, 16) and images.requires_grad
    assert float(reg.sums["loss_damsm_s"]) > 0
    # The D step comes first and never sees the term; G's step does.
    assert all(torch.equal(a, b) for a, b in zip(base.D.state_dict().values(), reg.D.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(base.G.state_dict().values(), reg.G.state_dict().values()))


def test_regulariser_options_must_name_registered_regularisers(tiny_cfg):
    with pytest.raises(ValueError, match="damsm_sentense"):
        tiny_cfg("+loss.regulariser_options.damsm_sentense.weight=1.0")
