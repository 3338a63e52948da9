"""`damsm_sentence`: AttnGAN's sentence-level DAMSM term as a generator regulariser, with the `rnn` encoder's pair.

AttnGAN (Xu et al., CVPR 2018, Eq. 14) adds lambda * L_DAMSM to G's loss: a fixed image encoder, pretrained
with the text encoder on the training split, must find G's image closest to its own caption among the
batch's captions (and the caption closest to its image). This is its sentence part (Eq. 13, L_s), with
the `rnn` text encoder's jointly trained image encoder (`ganblocks.text.rnn.train_rnn`: the same loss and
gamma, train split only, images at its `imsize`), so G's text signal comes from the very space its caption
embeddings live in, and it does not depend on how well D judges realism. The judge (evaluation) never
teaches: nothing here reads the evaluator or the test split.

    L = weight * [CE(gamma cos(I(fake_i), t_j) over captions j) + CE(over images)]   (same-class pairs masked)

The word-level term of AttnGAN's own tree is `ganblocks.losses.damsm` (whose scores and matching losses this
reuses; another regulariser name).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch.nn.functional as F
from torch import Tensor

from ganblocks.losses.damsm import matching_losses, sentence_scores
from ganblocks.registry import register


@register("regulariser", "damsm_sentence")
class DAMSMSentence:
    """G's images must match their own captions under the `rnn` encoder's frozen image encoder (AttnGAN's L_s).

    Contract: a `regulariser`: `__call__(images, text=(B', D), class_ids=(B,))` with images the generator's
    outputs, lowest scale first (the largest is scored, area-resized to the encoder's size); text the
    caption embeddings G drew from (only their direction counts); the first B rows (the batch's own
    captions; GAN-INT appends interpolated ones) are scored. Returns
    (loss () float32, {"loss_damsm_s": ...}).

    Args:
        weight: lambda (AttnGAN birds: 5.0 for its word + sentence loss; 1.0 here by default).
        text_encoder: the training data's encoder (`dataset.text_encoder`, passed by the trainer); it must
            have `image_encoder() -> (frozen module, size)`, as the `rnn` encoder has.
        gamma: cosine scale (the `rnn` pre-training's 10.0).
        device: where the frozen image encoder runs (the stage's device; None: where it was built).

    Raises:
        ValueError: an encoder without a paired image encoder (e.g. `data.text_encoder=bow`), a bad weight
            or gamma.
    """

    context_keys = ("text_encoder", "device")  # the build passes the run's text encoder and the stage's device

    def __init__(self, *, weight: float = 1.0, text_encoder: Any = None, gamma: float = 10.0,
                 device: Any = None) -> None:
        for name, value in (("weight", weight), ("gamma", gamma)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"regulariser 'damsm_sentence': {name}={value!r}; expected a number > 0")
        pair = getattr(text_encoder, "image_encoder", None)
        if pair is None:
            raise ValueError("regulariser 'damsm_sentence' needs the image encoder trained with the `rnn` text "
                             f"encoder, but the data's text encoder is {type(text_encoder).__name__}; use "
                             "data.text_encoder=rnn")
        self.encoder, self.imsize = pair()  # fixed, as AttnGAN's pretrained DAMSM encoders
        if device is not None:  # moved once here, not on every step
            self.encoder = self.encoder.to(device)
        self.weight, self.gamma = float(weight), float(gamma)

    def __call__(self, images: Sequence[Tensor], text: Tensor | None = None,
                 class_ids: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        if text is None or class_ids is None:
            raise ValueError("regulariser 'damsm_sentence': needs text= and class_ids= (the step passes them)")
        B = len(class_ids)
        image, text = images[-1][:B], text[:B]
        if image.dim() != 4 or len(image) != len(text) or len(text) != len(class_ids):
            raise ValueError(f"regulariser 'damsm_sentence': images {tuple(image.shape)}, text {tuple(text.shape)}, "
                             f"class_ids {tuple(class_ids.shape)}; expected (B, 3, S, S), (B, D), (B,)")
        if image.shape[-1] != self.imsize:
            image = F.interpolate(image.float(), size=(self.imsize, self.imsize), mode="area")
        scores = sentence_scores(self.encoder(image.float()), text.float())
        loss0, loss1 = matching_losses(scores, self.gamma, class_ids)
        loss = self.weight * (loss0 + loss1)
        return loss, {"loss_damsm_s": loss.detach()}
