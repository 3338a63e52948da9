"""AttnGAN compatibility: the released netG and DAMSM text/image encoder files (official names and shapes,
written independently in tests/models/attngan_reference.py from taoxugit/AttnGAN code/model.py) load with
strict=True from files read with weights_only=True, and reproduce an independent functional forward of the
official equations (float32 CPU, max abs difference < 1e-5), attention maps included. The real files cannot
be downloaded here, so random tensors in the official layout are saved and loaded instead."""

from __future__ import annotations

import pytest
import torch

from ganblocks.compat_attngan import BIRDS, COCO, load_attngan_generator, load_damsm_image_encoder, load_damsm_text_encoder
from ganblocks.io import UnsafeFileError
from ganblocks.models.attngan import AttnGenerator
from ganblocks.text.damsm import DAMSMTextEncoder, InceptionImageEncoder
from tests.models import attngan_reference as ref
from tests.models.reference import random_state_dict

# CNN_ENCODER.define_module: the torchvision Inception-v3 blocks it keeps.
OFFICIAL_INCEPTION_BLOCKS = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
                             "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                             "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"]


def _shapes(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


def _inputs(batch=2, t=6, nef=256, z=100, seed=0):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([t, 3, 5][:batch])
    mask = torch.arange(t)[None] >= lengths[:, None]
    return (torch.randn(batch, nef, generator=gen), torch.randn(batch, z, generator=gen),
            torch.randn(batch, nef, t, generator=gen), mask)


def test_official_layouts_and_parameter_counts():
    g = AttnGenerator(**BIRDS)
    assert _shapes(g) == ref.generator_entries()
    assert _n_params(g) == ref.generator_params() == 7_084_592
    coco = AttnGenerator(**COCO)
    assert _shapes(coco) == ref.generator_entries(ngf=48, r_num=3)
    assert _n_params(coco) == ref.generator_params(ngf=48, r_num=3)
    text = DAMSMTextEncoder(vocab_size=5450)
    assert _shapes(text) == ref.text_encoder_entries() and _n_params(text) == ref.text_encoder_params() == 2_075_320


@pytest.fixture(scope="module")
def netg_file(tmp_path_factory):
    state = random_state_dict(ref.generator_entries(), seed=5)
    path = tmp_path_factory.mktemp("attngan") / "bird_AttnGAN2.pth"
    torch.save(state, path)
    return state, path


@pytest.mark.slow
def test_released_generator_matches_the_official_equations(netg_file):
    state, path = netg_file
    g = load_attngan_generator(path, use_mean=True)
    assert not g.training and all(torch.equal(v, state[k]) for k, v in g.state_dict().items())
    sent, noise, words, mask = _inputs()
    with torch.no_grad():
        out = g(sent, noise, words, mask)
        images, maps = ref.reference_generator(state, sent, noise, words, mask)
    for ours, expected in zip(out.images, images, strict=True):
        assert expected.std() > 0.05  # not saturated or constant
        assert (ours - expected).abs().max().item() < 1e-5
    for ours, expected in zip(out.attention, maps, strict=True):
        assert expected[1, 3:].abs().max() == 0 and expected.std() > 1e-3  # padded words masked; maps not flat
        assert (ours - expected).abs().max().item() < 1e-5


def test_small_generator_matches_the_official_equations_with_dataparallel_names(tmp_path):
    state = random_state_dict(ref.generator_entries(ngf=4, nef=16, ncf=6, z=5, r_num=1, branches=2), seed=6)
    path = tmp_path / "netG.pth"
    torch.save({"module." + k: v for k, v in state.items()}, path)
    g = load_attngan_generator(path, use_mean=True, gf_dim=4, text_dim=16, condition_dim=6, noise_dim=5,
                               num_residual=1, num_branches=2)
    sent, noise, words, mask = _inputs(nef=16, z=5)
    with torch.no_grad():
        out = g(sent, noise, words, mask)
        images, maps = ref.reference_generator(state, sent, noise, words, mask, ngf=4, r_num=1, branches=2)
    assert max((a - b).abs().max().item() for a, b in zip(out.images + out.attention, images + maps)) < 1e-5


def test_released_text_encoder_matches_the_lstm_equations(tmp_path):
    state = random_state_dict(ref.text_encoder_entries(), seed=7)
    path = tmp_path / "text_encoder200.pth"
    torch.save(state, path)
    enc = load_damsm_text_encoder(path)
    assert not enc.training and (enc.vocab_size, enc.word_dim, enc.dim) == (5450, 300, 256)
    gen = torch.Generator().manual_seed(0)
    lengths = torch.tensor([18, 7, 12])
    ids = torch.randint(1, 5450, (3, 18), generator=gen) * (torch.arange(18)[None] < lengths[:, None])
    with torch.no_grad():
        words, sentence = enc(ids, lengths)
    ref_words, ref_sentence = ref.reference_rnn(state, ids, lengths)
    assert ref_sentence.std() > 0.05
    assert (words - ref_words).abs().max().item() < 1e-5
    assert (sentence - ref_sentence).abs().max().item() < 1e-5


@pytest.mark.slow
def test_released_image_encoder_layout_count_and_inception_equations(tmp_path):
    torch.manual_seed(0)
    model = InceptionImageEncoder(dim=256, require_weights=False)
    assert _n_params(model) == ref.image_encoder_params() == 22_506_720
    assert {k.split(".")[0] for k in _shapes(model)} == set(OFFICIAL_INCEPTION_BLOCKS) | {"emb_features", "emb_cnn_code"}
    assert _shapes(model)["emb_features.weight"] == (256, 768, 1, 1) and _shapes(model)["emb_cnn_code.weight"] == (256, 2048)
    for m in model.modules():  # calibrate BN statistics to the input so every layer carries signal
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        model.train()(images)
    path = tmp_path / "image_encoder200.pth"
    torch.save({k: v for k, v in model.state_dict().items() if "num_batches_tracked" not in k}, path)  # torch 0.3
    state = torch.load(path, weights_only=True)
    enc = load_damsm_image_encoder(path)
    with torch.no_grad():
        regions, code = enc(images[:1])
        ref_regions, ref_code = ref.reference_image_encoder(state, images[:1])
    assert regions.shape == (1, 256, 17, 17) and ref_regions.std() > 0.05 and ref_code.std() > 0.05
    assert (regions - ref_regions).abs().max().item() < 1e-5
    assert (code - ref_code).abs().max().item() < 1e-5


class _Payload:
    """Stands in for any pickled Python object inside an old checkpoint."""


def test_files_with_python_objects_are_refused_and_wrong_files_named(tmp_path, netg_file):
    state, _ = netg_file
    path = tmp_path / "pickled.pth"
    torch.save({"state_dict": state, "config": _Payload()}, path)
    with pytest.raises(UnsafeFileError, match=r"refusing to load .*pickled.pth"):
        load_attngan_generator(path)
    with pytest.raises(KeyError, match="not an AttnGAN RNN_ENCODER"):
        load_damsm_text_encoder(state)
    with pytest.raises(KeyError, match="not an AttnGAN CNN_ENCODER"):
        load_damsm_image_encoder(state)
    with pytest.raises(RuntimeError, match=r"(?s)load_attngan_generator: .*size mismatch for ca_net.fc.weight"):
        load_attngan_generator(state, condition_dim=50)


@pytest.mark.parametrize("size", [64, 128, 256])
def test_discriminators_have_the_official_layout_count_and_equations(size):
    from ganblocks.models.attngan import AttnDiscriminator

    ndf, nef = (64, 256) if size == 64 else (16, 32)  # paper widths where cheap, smaller at 128 / 256
    d = AttnDiscriminator(image_size=size, df_dim=ndf, text_dim=nef)
    assert _shapes(d) == ref.discriminator_entries(size, ndf, nef)
    assert _n_params(d) == ref.discriminator_params(size, ndf, nef)
    state = random_state_dict(ref.discriminator_entries(size, ndf, nef), seed=size)
    d.load_state_dict(state, strict=True)
    d.eval()
    gen = torch.Generator().manual_seed(1)
    images, sentence = torch.rand(2, 3, size, size, generator=gen) * 2 - 1, torch.randn(2, nef, generator=gen)
    images[1] = torch.linspace(-1, 1, size)[None, None, :]  # a smooth image beside the noise: features differ
    with torch.no_grad():
        out = d(images, sentence)
        cond, uncond = ref.reference_discriminator(state, images, sentence, size)
    assert (torch.sigmoid(out.cond_logits) - cond).abs().max().item() < 1e-5  # ours are the logits before Sigmoid
    assert (torch.sigmoid(out.uncond_logits) - uncond).abs().max().item() < 1e-5
    assert cond.std() > 1e-3 and uncond.std() > 1e-3
