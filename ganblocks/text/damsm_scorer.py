"""The DAMSM image-text scorer of AttnGAN's R-precision: a text + image encoder pair, from the released files or
from a `python -m ganblocks.text.pretrain_damsm` run.

    scorer = pretrained_scorer("runs/damsm")      # the released files: ganblocks.compat_attngan.official_scorer
    scorer.sentences(["a red bird"]) -> (1, D);  scorer.codes(uint8 images (N, 3, S, S)) -> (N, D)

Used by `ganblocks.metrics.damsm_rprecision` (the metric) and `ganblocks.evaluation.attention_figure` (figures).
Source: AttnGAN (Xu et al., CVPR 2018) Sec. 3.3; taoxugit/AttnGAN code/model.py (RNN_ENCODER, CNN_ENCODER).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

SETTING = "metrics.options.r_precision_damsm"  # where the metric's settings name these files


class DAMSMScorer:
    """A DAMSM text + image encoder pair: `sentences(captions) -> (N, D)`, `codes(uint8 images) -> (N, D)`.

    `label` names the encoders (recorded as the metric's evaluator).
    """

    def __init__(self, encode_text: Callable[[list[str]], Tensor], image: torch.nn.Module, label: str) -> None:
        self.encode_text, self.image, self.label = encode_text, image.eval(), label

    @torch.no_grad()
    def sentences(self, captions: list[str], batch_size: int = 500) -> Tensor:
        return torch.cat([self.encode_text(captions[s : s + batch_size]).float().cpu()
                          for s in range(0, len(captions), batch_size)])

    @torch.no_grad()
    def codes(self, images: Tensor, batch_size: int = 100) -> Tensor:
        """uint8 (N, 3, S, S) -> (N, D) global image features (images enter the encoder in [-1, 1])."""
        device = next(itertools.chain(self.image.parameters(), self.image.buffers()), torch.empty(0)).device
        out = [self.image(images[s : s + batch_size].to(device).float() / 127.5 - 1.0)[1].float().cpu()
               for s in range(0, len(images), batch_size)]
        return torch.cat(out)


def pretrained_scorer(checkpoint: str | os.PathLike, device: str = "cpu") -> DAMSMScorer:
    """The encoders of a `pretrain_damsm` run (its folder or final.pt), read with weights_only=True."""
    from ganblocks.io import load_torch_file
    from ganblocks.registry import build
    from ganblocks.text.damsm import DAMSMSentenceEncoder

    path = Path(checkpoint)
    path = path / "final.pt" if path.is_dir() else path
    text = DAMSMSentenceEncoder(path)  # tokenises and runs on the CPU
    ckpt = load_torch_file(path)
    cfg = ckpt["config"]
    if cfg["image_encoder"] == "inception_v3":
        image = build("damsm", "inception_v3", dim=cfg["dim"], require_weights=False)
    else:
        image = build("damsm", cfg["image_encoder"], dim=cfg["dim"], width=cfg["width"], image_size=cfg["imsize"])
    image.load_state_dict(ckpt["image"])
    return DAMSMScorer(lambda caps: text.encode_words(caps)[1], image.to(device),
                       f"damsm-pretrained ({text.cache_key()}, {cfg['dataset']}, {cfg['image_encoder']})")


def read_vocabulary(path: str) -> dict[str, int]:
    """wordtoix of AttnGAN's captions.pickle (entry 3), through the restricted data unpickler."""
    from ganblocks.data.dataset import DatasetError
    from ganblocks.data.loaders import _as_str, read_pickle

    x = read_pickle(Path(path).expanduser())
    if not isinstance(x, (list, tuple)) or len(x) < 4 or not isinstance(x[3], dict):
        raise DatasetError(f"{SETTING}.captions_pickle={path!r}: expected AttnGAN's [train_captions, test_captions, "
                           "ixtoword, wordtoix]")
    return {_as_str(w): int(i) for w, i in x[3].items()}
