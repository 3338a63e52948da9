"""Load the released AttnGAN files (taoxugit/AttnGAN) into ganblocks modules, strict.

    >>> from ganblocks.compat_attngan import load_attngan_generator, load_damsm_text_encoder, load_damsm_image_encoder
    >>> text = load_damsm_text_encoder("DAMSMencoders/bird/text_encoder200.pth")    # eval mode
    >>> image = load_damsm_image_encoder("DAMSMencoders/bird/image_encoder200.pth")
    >>> g = load_attngan_generator("models/bird_AttnGAN2.pth", use_mean=True)        # birds widths by default
    >>> words, sentence = text(ids, lengths)                          # ids from AttnGAN's captions.pickle
    >>> out = g(sentence, noise, words, mask=ids[:, :words.shape[2]] == 0)
    >>> out.images, out.attention                                     # (64, 128, 256) images, maps per stage

Each file is a plain state dict (AttnGAN saves `model.state_dict()`), so it is read with
`torch.load(weights_only=True)`: tensors only, no code runs. The pickle risk of old checkpoints is the
other kind of file: a whole pickled model or a dict holding Python objects (e.g. a pickled optimizer or
a config object) can run arbitrary code when unpickled with weights_only=False; such files are refused
here (`ganblocks.io.UnsafeFileError`, naming the file), and should only be opened with weights_only=False
when they come from a source you trust. A DataParallel `module.` prefix is removed; files from torch < 0.4 (no
`num_batches_tracked`) load, as BatchNorm fills it in.

Deterministic comparison with the official forward: `use_mean=True` makes the CA code its mean; the
official sampling draws eps from the global generator as well, so samples differ only by that draw.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from ganblocks.blocks.conditioning import set_use_mean
from ganblocks.io import load_torch_file
from ganblocks.models.attngan import AttnGenerator
from ganblocks.models.stage2 import read_state_dict
from ganblocks.text.damsm import DAMSMTextEncoder, InceptionImageEncoder

__all__ = ["BIRDS", "COCO", "load_attngan_generator", "load_damsm_text_encoder", "load_damsm_image_encoder"]

# Constructor keywords of the released generators (code/cfg/bird_attn2.yml, coco_attn2.yml, miscc/config.py).
BIRDS = {"text_dim": 256, "noise_dim": 100, "condition_dim": 100, "gf_dim": 32, "num_branches": 3, "num_residual": 2,
         "conditioning": "gaussian", "conditioning_kwargs": {"activation": "glu", "kl_reduction": "mean"}}
COCO = {**BIRDS, "gf_dim": 48, "num_residual": 3}

Source = str | os.PathLike | Mapping[str, Tensor]


def _read(source: Source) -> dict[str, Tensor]:
    """The state dict of a file (`load_torch_file`: weights_only, errors name the file) or a mapping."""
    return read_state_dict(load_torch_file(source) if isinstance(source, (str, os.PathLike)) else source)


def _load(model: nn.Module, state: Mapping[str, Tensor], what: str) -> nn.Module:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise RuntimeError(f"{what}: the checkpoint does not match the official layout: {err}") from None
    return model.eval()


def load_attngan_generator(source: Source, *, use_mean: bool = False, **overrides: Any) -> AttnGenerator:
    """A released `netG` (e.g. bird_AttnGAN2.pth) in the `attngan` generator, strict, eval mode.

    `overrides` change the birds widths (`**COCO` for coco_AttnGAN2.pth). `use_mean` sets the CA's switch.
    """
    model = AttnGenerator(**{**BIRDS, **overrides})
    _load(model, _read(source), "load_attngan_generator")
    set_use_mean(model, use_mean)
    return model


def load_damsm_text_encoder(source: Source) -> DAMSMTextEncoder:
    """A released DAMSM `text_encoder*.pth` (RNN_ENCODER) in the `rnn` DAMSM encoder, strict, eval mode.

    Vocabulary size, word size, output size, LSTM or GRU and the layer count are read from the shapes.
    """
    state = _read(source)
    for key in ("encoder.weight", "rnn.weight_hh_l0"):
        if key not in state:
            raise KeyError(f"load_damsm_text_encoder: no {key!r} in the checkpoint; not an AttnGAN RNN_ENCODER "
                           f"(keys: {sorted(state)[:6]} ...)")
    vocab_size, word_dim = state["encoder.weight"].shape
    hidden = state["rnn.weight_hh_l0"].shape[1]
    gates = state["rnn.weight_hh_l0"].shape[0] // hidden
    if gates not in (3, 4):
        raise ValueError(f"load_damsm_text_encoder: rnn.weight_hh_l0 of shape {tuple(state['rnn.weight_hh_l0'].shape)}"
                         " is neither an LSTM (4 gates) nor a GRU (3)")
    bidirectional = "rnn.weight_hh_l0_reverse" in state
    layers = 1 + max(int(k.split("_l")[1].split("_")[0]) for k in state if k.startswith("rnn.weight_hh_l"))
    model = DAMSMTextEncoder(vocab_size=vocab_size, word_dim=word_dim, dim=hidden * (2 if bidirectional else 1),
                             num_layers=layers, rnn_type="lstm" if gates == 4 else "gru", bidirectional=bidirectional)
    return _load(model, state, "load_damsm_text_encoder")


def load_damsm_image_encoder(source: Source, *, align_corners: bool = True) -> InceptionImageEncoder:
    """A released DAMSM `image_encoder*.pth` (CNN_ENCODER: Inception-v3 trunk + projections), strict, eval mode.

    The trunk's weights come from the file itself, so no separate Inception file is needed. D is read from
    `emb_cnn_code.weight`.
    """
    state = _read(source)
    if "emb_cnn_code.weight" not in state:
        raise KeyError("load_damsm_image_encoder: no 'emb_cnn_code.weight' in the checkpoint; not an AttnGAN "
                       f"CNN_ENCODER (keys: {sorted(state)[:6]} ...)")
    model = InceptionImageEncoder(dim=state["emb_cnn_code.weight"].shape[0], require_weights=False,
                                  align_corners=align_corners)
    return _load(model, state, "load_damsm_image_encoder")


def official_scorer(text_encoder: str, image_encoder: str, wordtoix: dict[str, int], words_num: int = 18,
                    seed: int = 0, device: str = "cpu") -> "DAMSMScorer":
    """The released DAMSM files with AttnGAN's vocabulary `wordtoix` (captions.pickle's)."""
    from ganblocks.data.attngan import attngan_tokens
    from ganblocks.text.damsm_scorer import SETTING, DAMSMScorer

    text = load_damsm_text_encoder(text_encoder).to(device)
    image = load_damsm_image_encoder(image_encoder).to(device)
    if len(wordtoix) > text.vocab_size:
        raise ValueError(f"{SETTING}: the vocabulary has {len(wordtoix)} words but text_encoder={text_encoder!r} "
                         f"embeds {text.vocab_size}; use the captions.pickle the encoder was trained with")

    def encode(captions: list[str]) -> Tensor:
        rng = np.random.RandomState(seed)
        seqs = []
        for c in captions:  # AttnGAN: words outside the vocabulary are dropped; a long caption keeps a random subset
            ids = [wordtoix[w] for w in attngan_tokens(c) if w in wordtoix] or [0]
            if len(ids) > words_num:
                ids = [ids[i] for i in np.sort(rng.permutation(len(ids))[:words_num])]
            seqs.append(ids)
        lengths = torch.tensor([len(s) for s in seqs])
        ids = torch.zeros(len(seqs), int(lengths.max()), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
        return text(ids.to(device), lengths.to(device))[1]

    return DAMSMScorer(encode, image, f"damsm-official ({Path(text_encoder).name}, {Path(image_encoder).name})")
