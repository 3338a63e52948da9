"""AttnGAN's DAMSM term in the generator loss, as a registered `regulariser`: lambda * DAMSM(last image, its caption).

    L_G = sum over scales of the adversarial terms + KL (once) + lambda * (w_loss0 + w_loss1 + s_loss0 + s_loss1)

As taoxugit/AttnGAN code/trainer.py `generator_loss`: the image encoder pretrained with the run's text
encoder (frozen, eval mode) encodes the generator's largest image; `losses.damsm.DAMSMLoss` matches its
regions and global code against the words and sentence of the caption G drew it from (both directions,
pairs of the same class masked as in `words_loss` / `sent_loss`), and the sum is weighted by lambda
(cfg TRAIN.SMOOTH.LAMBDA: birds 5.0, COCO 50.0; gamma1/2/3 4, 5, 10). The captions arrive packed
(`text_encoder` `damsm_words`, `ganblocks.text.damsm_words`); the image encoder is the one in the same
pretrain_damsm final.pt, which the step's context names (`context_keys`: the run's text encoder).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn

from ganblocks.io import load_torch_file
from ganblocks.losses.damsm import DAMSMLoss
from ganblocks.registry import register
from ganblocks.text.damsm_words import unpack_words


def load_image_encoder(checkpoint: Any) -> nn.Module:
    """The pretrained DAMSM image encoder of a pretrain_damsm final.pt, frozen and in eval mode.

    Raises:
        ValueError: the file holds no image encoder (not a pretrain_damsm final.pt).
    """
    from ganblocks.text.pretrain_damsm import _image_encoder

    state = load_torch_file(checkpoint, map_location="cpu")
    if "image" not in state or "config" not in state:
        raise ValueError(f"regulariser 'damsm': {checkpoint} holds no DAMSM image encoder; expected the final.pt "
                         "of `python -m ganblocks.text.pretrain_damsm`")
    c = state["config"]
    image = (_image_encoder(c["image_encoder"], int(c["dim"]), int(c["imsize"]), int(c["width"]), None)
             if c["image_encoder"] != "inception_v3" else _inception_without_weights(int(c["dim"])))
    image.load_state_dict(state["image"])
    return image.eval().requires_grad_(False)


def _inception_without_weights(dim: int) -> nn.Module:
    from ganblocks.registry import build

    return build("damsm", "inception_v3", dim=dim, require_weights=False)  # the trunk comes with the state dict


@register("regulariser", "damsm")
class DAMSMRegulariser:
    """lambda * DAMSM loss of the generator's largest image against its packed caption.

    Contract (every registered `regulariser`): `__call__(images lowest first, text=(B, D (T + 1) + 1) packed
    captions, class_ids=(B,) | None) -> (loss (), stats {"damsm_words", "damsm_sentence", "loss_damsm"})`.

    Args:
        weight: lambda (AttnGAN birds 5.0, COCO 50.0; 0 turns the term off but still computes it).
        gamma1, gamma2, gamma3: DAMSM's (4, 5, 10 in both of AttnGAN's configs).
        word_score: "official" (no 1 / gamma2 power, as the AttnGAN code) or "paper".
        text_encoder: the run's text encoder (context): its `checkpoint` (pretrain_damsm final.pt) holds the
            image encoder used here.
        image_encoder: the image encoder itself (instead of text_encoder; tests).
        device: where the training runs (context): the encoder moves there once, before any step (a CUDA
            graph captures no copy); None moves it on the first call, to the images' device.
    """

    context_keys = ("text_encoder", "device")

    def __init__(self, *, weight: float = 5.0, gamma1: float = 4.0, gamma2: float = 5.0, gamma3: float = 10.0,
                 word_score: str = "official", text_encoder: Any = None, image_encoder: nn.Module | None = None,
                 device: Any = None) -> None:
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise ValueError(f"regulariser 'damsm': weight={weight!r}; expected a number >= 0 (lambda: birds 5, COCO 50)")
        if image_encoder is None:
            checkpoint = getattr(text_encoder, "checkpoint", None)
            if checkpoint is None:
                raise ValueError(f"regulariser 'damsm' needs the DAMSM image encoder pretrained with the run's text "
                                 f"encoder; data.text_encoder gives {type(text_encoder).__name__}, which has none: use "
                                 "data.text_encoder=damsm_words")
            image_encoder = load_image_encoder(checkpoint)
        self.weight = float(weight)
        self.loss = DAMSMLoss(gamma1, gamma2, gamma3, word_score)
        self.image_encoder = image_encoder.eval().requires_grad_(False)
        if device is not None:
            self.image_encoder = self.image_encoder.to(device)

    def __call__(self, images: Sequence[Tensor], text: Tensor | None = None,
                 class_ids: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        if text is None:
            raise ValueError("regulariser 'damsm': no text; the step passes G's packed captions as text=")
        image = images[-1]
        encoder = self.image_encoder
        if next(encoder.parameters()).device != image.device:
            self.image_encoder = encoder = encoder.to(image.device)
        sentence, words, _, lengths = unpack_words(text.float())
        regions, code = encoder(image.float())
        total, stats = self.loss(regions, code, words, sentence, lengths, class_ids)
        loss = self.weight * total
        word_term = self.weight * (stats["w_loss0"] + stats["w_loss1"])
        sentence_term = self.weight * (stats["s_loss0"] + stats["s_loss1"])
        return loss, {"damsm_words": word_term, "damsm_sentence": sentence_term, "loss_damsm": loss.detach()}
