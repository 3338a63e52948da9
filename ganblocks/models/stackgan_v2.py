"""StackGAN++ (StackGAN-v2): one generator tree drawing 64, 128 and 256 px images, and a discriminator per scale.

    >>> g = build("generator", "stackgan_v2", gf_dim=8, branches=2)     # or build_generator("stackgan_v2", preset=...)
    >>> out = g(text_embedding, noise)            # out.images: (B,3,64,64), (B,3,128,128); out.image the last
    >>> ds = build_tree_discriminators(branches=2, preset="official_v2", df_dim=8)   # D_NET64, D_NET128

The generator's module names follow hanzhanggit/StackGAN-v2 code/model.py G_NET (`ca_net.fc`, `h_net1`,
`img_net1`, `h_net2`, ...), so its released netG_*.pth loads with strict=True (`ganblocks.compat`,
family="stackgan_v2"). The stages are registered `stage` blocks and the CA block a registered
`conditioning`, all chosen by name. The discriminator of one scale (official D_NET64 / D_NET128 /
D_NET256) is the shared `TextImageDiscriminator` with a `joint` head: the same layers and parameter
counts as the official ones, under this project's names (`encode_img.*`, `get_cond_logits.*`).
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import Tensor, nn

from ganblocks.blocks.init import initialise_
from ganblocks.models._common import build_conditioning, check_input, check_positive, doublings
from ganblocks.models.stage1 import TextImageDiscriminator
from ganblocks.registry import build, register
from ganblocks.types import GeneratorOutput

MAX_BRANCHES = 3


@register("generator", "stackgan_v2")
class StackGANv2Generator(nn.Module):
    """StackGAN++ tree G: CA(text) ++ noise -> init stage (64 px) -> next stages (x2 each), an image per branch: -> (B, 3, S, S) per scale.

    forward(text (B, D), noise (B, N_z)) -> GeneratorOutput with `images` = one image per branch, lowest
    resolution first (base_size * 2^k for k < branches), `image` the last of them, `cond` the CA output
    (one CA block shared by all branches, as the official code).

    Widths: the init stage's 4x4 map has gf_dim * 2^n channels (n = log2(base_size / 4) up-sampling blocks),
    so the base-size features have gf_dim channels; each next stage halves them (official GF_DIM; 16 * GF_DIM
    at 4x4 for base 64).

    Args:
        text_dim: D (official TEXT.DIMENSION 1024).
        noise_dim: N_z (official Z_DIM 100).
        condition_dim: N_g (official EMBEDDING_DIM 128).
        gf_dim: width unit (official GF_DIM 64 for birds).
        branches: 1 to 3 (official TREE.BRANCH_NUM 3).
        num_residual: residual blocks per next stage (official R_NUM 2).
        base_size: the first branch's resolution (official TREE.BASE_SIZE 64); 4 times a power of two.
        upsample, residual: registered names used by the stages (official "glu", "glu").
        conditioning: registered `conditioning` name; conditioning_kwargs its keywords (official
            {"activation": "glu", "kl_reduction": "mean"}).
        init_stage, next_stage, image_head: registered `stage` names ("glu_init", "glu_next", "image").
        init: "normal" (N(0, 0.02), the StackGAN-v1 code) or "orthogonal" (the StackGAN-v2 code's).
    """

    def __init__(
        self,
        *,
        text_dim: int = 1024,
        noise_dim: int = 100,
        condition_dim: int = 128,
        gf_dim: int = 64,
        branches: int = 3,
        num_residual: int = 2,
        base_size: int = 64,
        upsample: str = "glu",
        residual: str = "glu",
        conditioning: str = "gaussian",
        conditioning_kwargs: Mapping[str, Any] | None = None,
        init_stage: str = "glu_init",
        next_stage: str = "glu_next",
        image_head: str = "image",
        init: str = "normal",
    ) -> None:
        super().__init__()
        model = type(self).__name__
        check_positive(model, text_dim=text_dim, noise_dim=noise_dim, condition_dim=condition_dim, gf_dim=gf_dim)
        if isinstance(branches, bool) or branches not in range(1, MAX_BRANCHES + 1):
            raise ValueError(f"{model}: branches={branches!r}; expected 1, 2 or 3 (64, 128, 256 px at base 64)")
        if gf_dim >> (branches - 1) < 1:
            raise ValueError(f"{model}: gf_dim={gf_dim} too small for branches={branches} (each next stage halves "
                             f"the channels; expected gf_dim >= {2 ** (branches - 1)})")
        num_up = doublings(model, "base_size", base_size, 4)
        if num_up < 1:
            raise ValueError(f"{model}: base_size={base_size}; expected 8 or more (4 times a power of two)")
        self.text_dim, self.noise_dim, self.condition_dim = text_dim, noise_dim, condition_dim
        self.branches, self.base_size = branches, base_size
        self.out_size = base_size * 2 ** (branches - 1)
        self.sizes = tuple(base_size * 2**k for k in range(branches))

        self.ca_net = build_conditioning(conditioning, text_dim, condition_dim, conditioning_kwargs,
                                         f"{model}.conditioning")
        channels = gf_dim
        for k in range(1, branches + 1):
            if k == 1:
                stage = build("stage", init_stage, where=f"{model}.init_stage", noise_dim=noise_dim,
                              condition_dim=condition_dim, channels=gf_dim << num_up, num_upsample=num_up,
                              upsample=upsample)
            else:
                stage = build("stage", next_stage, where=f"{model}.next_stage", channels=channels,
                              condition_dim=condition_dim, num_residual=num_residual, residual=residual,
                              upsample=upsample)
            channels = stage.out_channels
            self.add_module(f"h_net{k}", stage)
            self.add_module(f"img_net{k}", build("stage", image_head, where=f"{model}.image_head", channels=channels))
        initialise_(self, init, model)

    def forward(self, text_embedding: Tensor, noise: Tensor) -> GeneratorOutput:
        model = type(self).__name__
        check_input(model, "text_embedding", text_embedding, self.text_dim)
        check_input(model, "noise", noise, self.noise_dim)
        cond = self.ca_net(text_embedding)
        h, images = noise, []
        for k in range(1, self.branches + 1):
            h = getattr(self, f"h_net{k}")(h, cond.code)
            images.append(getattr(self, f"img_net{k}")(h, cond.code))
        return GeneratorOutput(image=images[-1], cond=cond, images=tuple(images))


@register("discriminator", "stackgan_v2")
class StackGANv2Discriminator(TextImageDiscriminator):
    """StackGAN++ D of one scale (official D_NET64/128/256): image -> 4x4 features -> conditional and unconditional logits (B,).

    The official layers: 4x4 stride-2 down-sampling to M_d = 4 (the first without BN), then 3x3 conv + BN +
    LeakyReLU layers back to 8 * df_dim channels; a `joint` head (3x3 joint conv over features ++ the
    replicated condition, then a 4x4 conv) gives the conditional logits, a 4x4 conv the unconditional ones.
    The official code conditions D on the CA mean, detached (`condition_input="cond_mean"`). Any registered
    `d_head` can replace `joint`; any keyword of `TextImageDiscriminator` is accepted, and `init`:
    "normal" (N(0, 0.02), as `TextImageDiscriminator`) or "orthogonal" (the StackGAN-v2 code's).
    """

    def __init__(self, *, image_size: int = 64, d_head: str = "joint", condition_input: str = "cond_mean",
                 init: str = "normal", **kwargs: Any) -> None:
        super().__init__(image_size=image_size, d_head=d_head, condition_input=condition_input, **kwargs)
        initialise_(self, init, type(self).__name__)
