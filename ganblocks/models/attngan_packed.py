"""AttnGAN's generator and discriminators as the training pipeline calls them: on packed DAMSM captions.

    >>> G = build("generator", "attngan_packed", text_dim=packed_dim(64), gf_dim=8, branches=3)
    >>> out = G(text, noise)            # text (B, D (T + 1) + 1) from text_encoder `damsm_words`
    >>> D = build("discriminator", "attngan_packed", text_dim=packed_dim(64), image_size=128, df_dim=8)

Every other generator is called `G(text, noise)` by the step, the sample sheets and the evaluation; so is
this one. It is `models.attngan.AttnGenerator` (same modules, names and initialisation, so a trained one's
state dict loads into the official-layout `attngan` generator) whose forward first splits the caption row
into the sentence vector, the word features and the padding mask (`ganblocks.text.damsm_words`). The
discriminator likewise conditions on the sentence part only (AttnGAN's D_NET takes `sent_emb`). `text_dim`
is the packed row's size (what the pipeline passes every model); the sentence size D follows from it.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import Tensor

from ganblocks.models._common import discriminator_conditions
from ganblocks.models.attngan import AttnDiscriminator, AttnGenerator, AttnGeneratorOutput
from ganblocks.registry import register
from ganblocks.text.damsm_words import sentence_dim, unpack_words


@register("generator", "attngan_packed")
class PackedAttnGenerator(AttnGenerator):
    """AttnGAN G_NET on packed captions: text (B, D (T + 1) + 1), noise (B, N_z) -> images at 64, 128, 256 + attention.

    Args:
        text_dim: size of the packed row (`damsm_words`' dim); D = `sentence_dim(text_dim)`.
        base_size: the first branch's size; AttnGAN's initial stage draws 64 px (any other raises).
        branches: 1, 2 or 3 (64, 128, 256); the pipeline passes it (model.stage1_size doubled to the stage's imsize).
        **kwargs: `AttnGenerator`'s (noise_dim, condition_dim, gf_dim, num_residual, conditioning,
            conditioning_kwargs, upsample, residual).
    """

    # The text encoders whose rows this model can read (the config check refuses any other, naming data.text_encoder).
    text_encoders = ("damsm_words",)

    def __init__(self, *, text_dim: int, base_size: int = 64, branches: int = 3, **kwargs: Any) -> None:
        if base_size != 64:
            raise ValueError(f"generator 'attngan_packed': base_size={base_size!r} (model.stage1_size); AttnGAN's "
                             "initial stage draws 64 px: expected 64")
        super().__init__(text_dim=sentence_dim(text_dim), num_branches=branches, **kwargs)
        self.packed_dim = text_dim
        self.sizes = [64 * 2**k for k in range(branches)]  # one discriminator per scale (the tree pipeline)

    def forward(self, text: Tensor, noise: Tensor) -> AttnGeneratorOutput:  # type: ignore[override]
        sentence, words, mask, _ = unpack_words(text)
        return super().forward(sentence, noise, words, mask)


@register("discriminator", "attngan_packed")
class PackedAttnDiscriminator(AttnDiscriminator):
    """AttnGAN D_NET64/128/256 whose condition is the sentence part of packed captions (B, D (T + 1) + 1).

    Args:
        text_dim: size of the packed row; D = `sentence_dim(text_dim)` is what the head sees.
        condition_dim: the generator's N_g, which the pipeline passes every discriminator; unused: as in
            AttnGAN, every registered head (attngan, joint, matching_aware, vanilla) scores the sentence (D).
        **kwargs: `AttnDiscriminator`'s (image_size, df_dim, d_head, d_head_kwargs, downsample).
    """

    def __init__(self, *, text_dim: int, condition_dim: int | None = None, **kwargs: Any) -> None:
        super().__init__(text_dim=sentence_dim(text_dim), **kwargs)
        self.packed_dim = text_dim

    def conditions(self, text: Tensor, wrong_text: Tensor, cond: Any,
                   encode: Callable[[Tensor], Any]) -> tuple[Tensor, Tensor]:
        """The sentence vectors (B, D) of the matching and mismatched packed captions."""
        d = self.text_dim
        return discriminator_conditions(self.condition_input, text[:, :d], wrong_text[:, :d], cond, encode)
