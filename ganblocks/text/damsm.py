"""DAMSM encoders (AttnGAN, Xu et al. 2018): a bi-LSTM giving word and sentence features, and image encoders
giving region features and a global code in the same D-dimensional space (registry kind `damsm`).

    >>> text = build("damsm", "rnn", vocab_size=5450)              # official RNN_ENCODER layout
    >>> words, sentence = text(ids, lengths)                       # (B, 256, T), (B, 256)
    >>> image = build("damsm", "inception_v3", inception_weights="/data/inception_v3_google-0cc3c7bd.pth")
    >>> regions, code = image(images)                              # (B, 256, 17, 17), (B, 256)

Module names follow taoxugit/AttnGAN code/model.py (RNN_ENCODER: `encoder`, `drop`, `rnn`; CNN_ENCODER:
the Inception-v3 blocks `Conv2d_1a_3x3` ... `Mixed_7c`, `emb_features`, `emb_cnn_code`), so the released
`text_encoder*.pth` / `image_encoder*.pth` state dicts load with strict=True (`ganblocks.compat_attngan`).
The `small_cnn` image encoder has the same output contract and projection names for the built-in benchmark.
Images enter in [-1, 1] (AttnGAN normalises with mean 0.5, std 0.5 and feeds Inception without ImageNet
normalisation).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganblocks.io import load_torch_file, stable_hash
from ganblocks.registry import register
from ganblocks.text.base import TextEncoder, check_captions
from ganblocks.text.rnn import Vocabulary

MAX_WORDS = 18  # AttnGAN's TEXT.WORDS_NUM for birds: longer captions are cut
RNN_TYPES = ("lstm", "gru")
INCEPTION_BLOCKS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
                    "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
                    "Mixed_7a", "Mixed_7b", "Mixed_7c")


def _positive(model: str, **values) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"damsm {model!r}: {name}={value!r}; expected a positive int")


@register("damsm", "rnn")
class DAMSMTextEncoder(nn.Module):
    """Bi-LSTM text encoder (official RNN_ENCODER): ids (B, T), lengths (B,) -> words (B, D, T'), sentence (B, D).

    T' = max(lengths) (padded words come out as zeros, as pad_packed_sequence gives them). The sentence
    vector is the last hidden state of both directions of the last layer, forward first. Lengths need not be
    sorted. Word embeddings start uniform in [-0.1, 0.1] (official `init_weights`).

    Args:
        vocab_size: ntoken (birds' released encoder: 5450 words).
        word_dim: ninput, the word embedding size (official 300).
        dim: D = nhidden, the output size (official TEXT.EMBEDDING_DIM 256); each direction has D / 2.
        dropout: drop_prob on the word embeddings (official 0.5); also between layers when num_layers > 1.
        num_layers: nlayers (official 1).
        rnn_type: "lstm" (official RNN_TYPE) or "gru".
        bidirectional: official True.
    """

    def __init__(self, *, vocab_size: int, word_dim: int = 300, dim: int = 256, dropout: float = 0.5,
                 num_layers: int = 1, rnn_type: str = "lstm", bidirectional: bool = True) -> None:
        super().__init__()
        _positive("rnn", vocab_size=vocab_size, word_dim=word_dim, dim=dim, num_layers=num_layers)
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"damsm 'rnn': rnn_type={rnn_type!r}; expected one of {RNN_TYPES}")
        directions = 2 if bidirectional else 1
        if dim % directions:
            raise ValueError(f"damsm 'rnn': dim={dim} must be even for a bidirectional encoder (D / 2 per direction)")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"damsm 'rnn': dropout={dropout!r}; expected 0 <= dropout < 1")
        self.vocab_size, self.word_dim, self.dim, self.rnn_type = vocab_size, word_dim, dim, rnn_type
        self.num_layers, self.directions = num_layers, directions
        self.encoder = nn.Embedding(vocab_size, word_dim)
        self.drop = nn.Dropout(dropout)
        rnn = nn.LSTM if rnn_type == "lstm" else nn.GRU
        self.rnn = rnn(word_dim, dim // directions, num_layers, batch_first=True,
                       dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)

    def forward(self, ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        if ids.dim() != 2 or lengths.dim() != 1 or len(lengths) != len(ids):
            raise ValueError(f"damsm 'rnn': ids {tuple(ids.shape)} and lengths {tuple(lengths.shape)}; "
                             "expected (B, T) and (B,)")
        lengths_cpu = lengths.detach().to("cpu", torch.long)
        if bool((lengths_cpu < 1).any()) or bool((lengths_cpu > ids.shape[1]).any()):
            raise ValueError(f"damsm 'rnn': lengths {lengths_cpu.tolist()} must lie in 1..{ids.shape[1]} (T)")
        emb = self.drop(self.encoder(ids))
        packed = nn.utils.rnn.pack_padded_sequence(emb, lengths_cpu, batch_first=True, enforce_sorted=False)
        output, hidden = self.rnn(packed)
        output = nn.utils.rnn.pad_packed_sequence(output, batch_first=True)[0]  # (B, T', D)
        h = hidden[0] if self.rnn_type == "lstm" else hidden  # (layers * directions, B, D / directions)
        sentence = torch.cat(list(h[-self.directions:]), dim=1)
        return output.transpose(1, 2), sentence


class _ImageEncoder(nn.Module):
    """Shared projection: local features -> `emb_features` (1x1 conv, no bias), global -> `emb_cnn_code` (FC)."""

    def _projections(self, local_channels: int, global_channels: int, dim: int) -> None:
        self.dim = dim
        self.emb_features = nn.Conv2d(local_channels, dim, kernel_size=1, bias=False)
        self.emb_cnn_code = nn.Linear(global_channels, dim)
        nn.init.uniform_(self.emb_features.weight, -0.1, 0.1)  # official init_trainable_weights
        nn.init.uniform_(self.emb_cnn_code.weight, -0.1, 0.1)

    def _check(self, images: Tensor) -> None:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"damsm {self.name!r}: images of shape {tuple(images.shape)}; expected (B, 3, H, W)")


@register("damsm", "inception_v3")
class InceptionImageEncoder(_ImageEncoder):
    """Official CNN_ENCODER: resize to 299, Inception-v3 to Mixed_6e (768 x 17 x 17) -> regions (B, D, 17, 17); on to
    Mixed_7c, 8x8 average pool (2048) -> code (B, D).

    The trunk is torchvision's Inception-v3 architecture; its ImageNet weights come only from a local file
    (`inception_weights`), never from the network, and are frozen (`requires_grad=False`) as in AttnGAN;
    `emb_features` and `emb_cnn_code` train. As in AttnGAN's pretrain_DAMSM.py, the trunk's BatchNorm layers
    follow the module's train/eval mode (batch statistics in train mode).

    Args:
        dim: D (official 256).
        inception_weights: path of torchvision's `inception_v3_google-*.pth` (a state dict of the full
            torchvision model, aux classifier and fc included; loaded with weights_only=True).
        require_weights: True (default) raises when `inception_weights` is missing; False builds the trunk
            with random weights, only for loading a whole image-encoder checkpoint next (compat loader).
        align_corners: of the bilinear resize to 299. The official code used PyTorch 0.3's nn.Upsample,
            whose bilinear mode behaved as align_corners=True: True (default) reproduces the released encoders.
    """

    name = "inception_v3"

    def __init__(self, *, dim: int = 256, inception_weights: str | os.PathLike | None = None,
                 require_weights: bool = True, align_corners: bool = True) -> None:
        super().__init__()
        _positive("inception_v3", dim=dim)
        if inception_weights is not None and not Path(inception_weights).is_file():
            raise FileNotFoundError(f"damsm 'inception_v3': inception_weights={str(inception_weights)!r} is not a "
                                    "file; give the path of torchvision's inception_v3_google-*.pth (nothing is downloaded)")
        if inception_weights is None and require_weights:
            raise ValueError("damsm 'inception_v3': inception_weights is not set; give the path of torchvision's "
                             "ImageNet file inception_v3_google-*.pth (nothing is downloaded), or use the "
                             "'small_cnn' image encoder")
        from torchvision.models.inception import Inception3

        trunk = Inception3(num_classes=1000, aux_logits=True, transform_input=False, init_weights=False)
        if inception_weights is not None:
            state = load_torch_file(inception_weights)
            try:
                trunk.load_state_dict(state, strict=True)
            except RuntimeError as err:
                raise RuntimeError(f"damsm 'inception_v3': inception_weights={str(inception_weights)!r} is not a "
                                   f"torchvision Inception-v3 state dict: {err}") from None
        for block in INCEPTION_BLOCKS:
            self.add_module(block, getattr(trunk, block))
        for p in self.trunk_parameters():
            p.requires_grad_(False)
        self.align_corners = align_corners
        self._projections(768, 2048, dim)

    def trunk_parameters(self):
        """The Inception-v3 parameters (frozen)."""
        for block in INCEPTION_BLOCKS:
            yield from getattr(self, block).parameters()

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        self._check(images)
        x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=self.align_corners)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in INCEPTION_BLOCKS[5:13]:
            x = getattr(self, block)(x)
        regions = x  # (B, 768, 17, 17)
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        x = F.avg_pool2d(x, kernel_size=8).flatten(1)
        return self.emb_features(regions), self.emb_cnn_code(x)


@register("damsm", "small_cnn")
class SmallImageEncoder(_ImageEncoder):
    """Small CNN image encoder for the built-in benchmark: (B, 3, S, S) -> regions (B, D, S/8, S/8), code (B, D).

    Three 4x4 stride-2 convs (BN and LeakyReLU(0.2), no BN on the first) give the local features (4 * width
    channels; 8 x 8 regions at S = 64); one more down-sampling block and a spatial mean give the global
    features (8 * width). `emb_features` / `emb_cnn_code` project both to D as in the Inception encoder.

    Args:
        dim: D.
        width: channels of the first conv.
        image_size: S; other sizes are resized (bilinear) to it. A multiple of 16.
    """

    name = "small_cnn"

    def __init__(self, *, dim: int = 256, width: int = 32, image_size: int = 64) -> None:
        super().__init__()
        _positive("small_cnn", dim=dim, width=width, image_size=image_size)
        if image_size % 16:
            raise ValueError(f"damsm 'small_cnn': image_size={image_size}; expected a multiple of 16")
        self.image_size = image_size

        def down(c_in: int, c_out: int, bn: bool = True) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not bn)] + ([nn.BatchNorm2d(c_out)] if bn else []) + [
                nn.LeakyReLU(0.2, inplace=True)]

        self.local = nn.Sequential(*down(3, width, bn=False), *down(width, 2 * width), *down(2 * width, 4 * width))
        self.globl = nn.Sequential(*down(4 * width, 8 * width))
        self._projections(4 * width, 8 * width, dim)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        self._check(images)
        if images.shape[-2:] != (self.image_size, self.image_size):
            images = F.interpolate(images, size=(self.image_size,) * 2, mode="bilinear", align_corners=False)
        local = self.local(images)
        code = self.globl(local).mean(dim=(2, 3))
        return self.emb_features(local), self.emb_cnn_code(code)


@register("text_encoder", "damsm")
class DAMSMSentenceEncoder(TextEncoder):
    """Sentence vectors of a DAMSM bi-LSTM pretrained by `python -m ganblocks.text.pretrain_damsm`: (N captions) -> (N, D).

    `encode_words(captions)` also gives the word features and lengths (what the AttnGAN generator takes).
    Captions are lower-cased word tokens (`tokenize`), unknown words map to <unk>, at most 18 words.

    Args:
        checkpoint: the run folder of pretrain_damsm or its `final.pt` (read with weights_only=True).
    """

    option_required = ("checkpoint",)  # data.text_encoder_options (ganblocks.data.text_options)
    option_paths = ("checkpoint",)

    def __init__(self, checkpoint: str | os.PathLike | None = None) -> None:
        if checkpoint is None:
            raise ValueError("text_encoder 'damsm': checkpoint is not set; give the folder (or final.pt) of "
                             "`python -m ganblocks.text.pretrain_damsm --out DIR`")
        path = Path(checkpoint)
        path = path / "final.pt" if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"text_encoder 'damsm': checkpoint={str(path)!r} is not a file; "
                                    "pretrain_damsm writes DIR/final.pt when it finishes")
        ckpt = load_torch_file(path)
        self.vocab, self.dim = Vocabulary(ckpt["vocab"]), int(ckpt["config"]["dim"])
        self.model = DAMSMTextEncoder(vocab_size=len(self.vocab.words), word_dim=int(ckpt["config"]["word_dim"]),
                                      dim=self.dim)
        self.model.load_state_dict(ckpt["text"])
        self.model.eval()
        self._key = "damsm-" + stable_hash([ckpt["vocab"], float(sum(v.double().sum() for v in ckpt["text"].values()))])

    @torch.no_grad()
    def encode_words(self, captions: list[str]) -> tuple[Tensor, Tensor, Tensor]:
        """-> words (N, D, T), sentence (N, D), lengths (N,)."""
        ids, lengths = self.vocab.encode(check_captions(captions, "damsm"), max_len=MAX_WORDS)
        words, sentence = self.model(ids, lengths)
        return words, sentence, lengths

    def encode(self, captions: list[str]) -> Tensor:
        if not captions:
            return torch.zeros(0, self.dim)
        return torch.cat([self.encode_words(captions[i : i + 512])[1] for i in range(0, len(captions), 512)])

    def cache_key(self) -> str:
        return self._key
