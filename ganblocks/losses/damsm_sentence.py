"""`damsm_sentence`: AttnGAN's sentence-level DAMSM term as a generator regulariser, with the `rnn` encoder's pair.

AttnGAN (Xu et al., CVPR 2018, Eq. 14) adds lambda * L_DAMSM to G's loss: a fixed image encoder, pretrained
with the text encoder on the training split, must find G's image closest to its own caption among the
batch's captions (and the caption closest to its image). This is its sentence part (Eq. 13, L_s), with
the `rnn` text encoder's jointly trained image encoder (`ganblocks.text.rnn.train_rnn`: same loss, same
gamma, train split only, images at its `imsize`), so G's text signal comes from the very space its caption
embeddings live in, and it does not depend on how well D judges realism. The judge (evaluation) never
teaches: nothing here reads the evaluator or the test split.

    L = weight * [CE(gamma cos(I(fake_i), t_j) over captions j) + CE(over images)]   (same-class pairs masked)

The word-level term of AttnGAN's own tree is `ganblocks.losses.damsm` (another regulariser name).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ganblocks.io import load_torch_file
from ganblocks.registry import register


@register("regulariser", "damsm_sentence")
class DAMSMSentence:
    """G's images must match their own captions under the `rnn` encoder's frozen image encoder (AttnGAN's L_s).

    Contract: a `regulariser` that `takes_text`: `__call__(images, text (B, D), class_ids (B,))` with
    images the generator's outputs, lowest scale first (the largest is scored); text the caption embeddings
    G drew from (any scale: only their direction counts). Returns (loss () float32, {"loss_damsm_s": ...}).

    Args:
        weight: lambda (AttnGAN birds: 5.0 for its word + sentence loss; 1.0 here by default).
        text_encoder: the training data's encoder (`dataset.text_encoder`, passed by the trainer); must
            be an `rnn` encoder, whose checkpoint holds the image encoder trained with it.
        checkpoint: an `rnn` checkpoint file instead of `text_encoder` (tests, tools).
        gamma: cosine scale (the `rnn` pre-training's 10.0).

    Raises:
        ValueError: no `rnn` checkpoint (e.g. `data.text_encoder=bow`), or a bad weight or gamma.
    """

    takes_text = True

    def __init__(self, *, weight: float = 1.0, text_encoder: Any = None, checkpoint: Any = None,
                 gamma: float = 10.0) -> None:
        for name, value in (("weight", weight), ("gamma", gamma)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"regulariser 'damsm_sentence': {name}={value!r}; expected a number > 0")
        if checkpoint is None:
            checkpoint = getattr(text_encoder, "checkpoint", None)
        if checkpoint is None:
            raise ValueError("regulariser 'damsm_sentence' needs the image encoder trained with the `rnn` text "
                             f"encoder, but the data's text encoder is {type(text_encoder).__name__}; use "
                             "data.text_encoder=rnn")
        from ganblocks.text.rnn import ImageEncoder

        ckpt = load_torch_file(checkpoint, map_location="cpu")
        self.imsize = int(ckpt.get("hparams", {}).get("imsize", 32))
        with torch.random.fork_rng(devices=[]):  # its random init (overwritten) must not move the run's RNG
            self.encoder = ImageEncoder(int(ckpt["dim"]))
        self.encoder.load_state_dict(ckpt["image_state"])
        self.encoder.eval().requires_grad_(False)  # fixed, as AttnGAN's pretrained DAMSM encoders
        self.weight, self.gamma = float(weight), float(gamma)

    def __call__(self, images: Sequence[Tensor], text: Tensor, class_ids: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        from ganblocks.text.rnn import sentence_matching_loss

        image = images[-1]
        if image.dim() != 4 or len(image) != len(text) or len(text) != len(class_ids):
            raise ValueError(f"regulariser 'damsm_sentence': images {tuple(image.shape)}, text {tuple(text.shape)}, "
                             f"class_ids {tuple(class_ids.shape)}; expected (B, 3, S, S), (B, D), (B,)")
        if image.shape[-1] != self.imsize:
            image = F.interpolate(image.float(), size=(self.imsize, self.imsize), mode="area")
        self.encoder.to(image.device)
        loss = self.weight * sentence_matching_loss(self.encoder(image.float()), text.float(), class_ids, self.gamma)
        return loss, {"loss_damsm_s": loss.detach()}
