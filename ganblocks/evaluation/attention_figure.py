"""Attention-map figures as AttnGAN's: each word's attention over the image, a row per word.

    python -m ganblocks.evaluation.attention_figure --damsm DIR --image bird.png --caption "a red bird" --out fig.png
    python -m ganblocks.evaluation.attention_figure --generator bird_AttnGAN2.pth --text-encoder text_encoder200.pth \\
        --captions-pickle data/birds/captions.pickle --caption "this bird has a red crown" --out fig.png

`attention_figure(image, attention, words, path)` draws it: the first row is the image; each further row is one
word (its label in the left strip) and, per attention map given (one column per attention stage of the AttnGAN
generator, or the DAMSM's region-word attention), the map scaled to its own maximum, upsampled bilinearly to the
image and blended over it as AttnGAN's build_super_images blends it (a grey mask at alpha 0.6: bright where the
word's attention mass is, the darkened image elsewhere). The PNG is written atomically; the command ends with
one line naming the file.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

ALPHA = 0.6     # weight of the attention mask over the image
LABEL = 120     # width of the word strip, pixels
MIN_CELL = 128  # images smaller than this are upsampled (nearest) to it


def overlay(image: Tensor, attention: Tensor) -> Tensor:
    """uint8 (3, S, S) image, (h, w) non-negative map -> uint8 (3, S, S): map / max, bilinear to S, blended at ALPHA."""
    m = attention.detach().float().cpu().clamp(min=0)
    m = m / m.max().clamp(min=1e-12)
    m = F.interpolate(m[None, None], size=tuple(image.shape[-2:]), mode="bilinear", align_corners=False)[0, 0]
    out = (1 - ALPHA) * image.float() + ALPHA * 255.0 * m[None]
    return out.round().clamp(0, 255).to(torch.uint8)


def _as_uint8(image: Tensor) -> Tensor:
    if image.dtype == torch.uint8:
        return image.cpu()
    return ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # [-1, 1] images


def attention_figure(image: Tensor, attention: Tensor | Sequence[Tensor], words: Sequence[str], path: str | os.PathLike,
                     title: str = "") -> Path:
    """Write the figure of one image's word attention as a PNG (atomically); returns its path.

    Args:
        image: (3, S, S) uint8, or float in [-1, 1].
        attention: (T, h, w) maps, or a sequence of them (one column each, e.g. per attention stage); only the
            first len(words) maps are drawn (padded words have none).
        words: the caption's words, one row each.
        title: drawn above the image (e.g. the caption).
    Raises:
        ValueError: a map count below the number of words, or an image that is not (3, S, S).
    """
    from PIL import Image, ImageDraw

    from ganblocks.io import atomic_open

    maps = [attention] if isinstance(attention, Tensor) else list(attention)
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"attention_figure: image of shape {tuple(image.shape)}; expected (3, S, S)")
    for k, a in enumerate(maps):
        if a.dim() != 3 or a.shape[0] < len(words):
            raise ValueError(f"attention_figure: attention map {k} has shape {tuple(a.shape)}; expected (T, h, w) with "
                             f"T >= {len(words)} (one map per word)")
    img = _as_uint8(image)
    if img.shape[-1] < MIN_CELL:
        img = F.interpolate(img[None].float(), size=(MIN_CELL, MIN_CELL), mode="nearest")[0].to(torch.uint8)
    cell = img.shape[-1]
    rows = 1 + len(words)
    top = 20 if title else 0
    canvas = Image.new("RGB", (LABEL + cell * len(maps), top + rows * cell), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((4, 4), title[:200], fill="black")

    def paste(tile: Tensor, row: int, col: int) -> None:
        canvas.paste(Image.fromarray(tile.permute(1, 2, 0).numpy()), (LABEL + col * cell, top + row * cell))

    draw.text((4, top + cell // 2), "image", fill="black")
    for col in range(len(maps)):
        paste(img, 0, col)
    for t, word in enumerate(words):
        draw.text((4, top + (1 + t) * cell + cell // 2), str(word)[:18], fill="black")
        for col, a in enumerate(maps):
            paste(overlay(img, a[t]), 1 + t, col)
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        f.write(buf.getvalue())
    return path


def read_image(path: str | os.PathLike, size: int) -> Tensor:
    """An image file -> uint8 (3, size, size) RGB (whole image, bilinear)."""
    from PIL import Image

    from ganblocks.data.images import to_rgb

    with Image.open(path) as im:
        rgb = to_rgb(im).resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1)


@torch.no_grad()
def damsm_attention(checkpoint: str | os.PathLike, image: Tensor, caption: str, gamma1: float = 4.0
                    ) -> tuple[Tensor, list[str]]:
    """A pretrain_damsm run's region-word attention of `caption` over uint8 (3, S, S) `image`: -> ((T, h, w), words)."""
    from ganblocks.losses.damsm import region_word_attention
    from ganblocks.text.damsm_scorer import pretrained_scorer
    from ganblocks.text.base import tokenize
    from ganblocks.text.damsm import MAX_WORDS, DAMSMSentenceEncoder

    path = Path(checkpoint)
    text = DAMSMSentenceEncoder(path)
    scorer = pretrained_scorer(path)
    words, _, lengths = text.encode_words([caption])
    regions, _ = scorer.image(image[None].float() / 127.5 - 1.0)
    _, attention = region_word_attention(words, regions, lengths, gamma1)
    return attention[0, 0, : int(lengths[0])], tokenize(caption)[:MAX_WORDS]


@torch.no_grad()
def generator_attention(generator: str | os.PathLike, text_encoder: str | os.PathLike, captions_pickle: str | os.PathLike,
                        caption: str, seed: int = 0, coco: bool = False) -> tuple[Tensor, list[Tensor], list[str]]:
    """A released AttnGAN generator's image and attention maps for `caption` (mean CA code, noise from `seed`).

    Returns (image (3, 256, 256) in [-1, 1], per attention stage (T, H, W), the words kept).
    """
    from ganblocks.compat_attngan import COCO, load_attngan_generator, load_damsm_text_encoder
    from ganblocks.data.attngan import attngan_tokens
    from ganblocks.text.damsm_scorer import read_vocabulary

    wordtoix = read_vocabulary(str(captions_pickle))
    words = [w for w in attngan_tokens(caption) if w in wordtoix][: 12 if coco else 18]
    if not words:
        raise ValueError(f"caption {caption!r} has no word of the vocabulary in {captions_pickle}")
    ids = torch.tensor([[wordtoix[w] for w in words]])
    text = load_damsm_text_encoder(text_encoder)
    g = load_attngan_generator(generator, use_mean=True, **(COCO if coco else {}))
    word_features, sentence = text(ids, torch.tensor([len(words)]))
    noise = torch.randn(1, g.noise_dim, generator=torch.Generator().manual_seed(seed))
    out = g(sentence, noise, word_features, mask=ids == 0)
    return out.images[-1][0], [a[0] for a in out.attention], words


EXAMPLES = """examples:
  python -m ganblocks.evaluation.attention_figure --damsm runs/damsm --image bird.png --caption "a red bird" --out fig.png
  python -m ganblocks.evaluation.attention_figure --generator models/bird_AttnGAN2.pth \\
      --text-encoder DAMSMencoders/bird/text_encoder200.pth --captions-pickle data/birds/captions.pickle \\
      --caption "this bird has a red crown and white wings" --out fig.png"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ganblocks.evaluation.attention_figure",
                                description=__doc__.splitlines()[0], epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--caption", required=True, help="the caption whose words are drawn")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--damsm", help="a pretrain_damsm run folder (or final.pt): its region-word attention over --image")
    p.add_argument("--image", help="image file for --damsm")
    p.add_argument("--generator", help="a released AttnGAN netG (e.g. bird_AttnGAN2.pth): its attention stages")
    p.add_argument("--text-encoder", help="the released DAMSM text_encoder*.pth (with --generator)")
    p.add_argument("--captions-pickle", help="AttnGAN's captions.pickle: the encoder's vocabulary (with --generator)")
    p.add_argument("--coco", action="store_true", help="COCO widths and 12 words (coco_AttnGAN2.pth)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (with --generator)")
    a = p.parse_args(argv)
    if bool(a.damsm) == bool(a.generator):
        p.error("give exactly one of --damsm (with --image) or --generator (with --text-encoder, --captions-pickle)")
    if a.damsm and not a.image:
        p.error("--damsm needs --image FILE")
    if a.generator and not (a.text_encoder and a.captions_pickle):
        p.error("--generator needs --text-encoder FILE and --captions-pickle FILE")
    try:
        path, n_words, n_maps = _draw(a)
    except (OSError, ValueError, KeyError) as error:  # a bad path, file or caption: one line naming it
        text = f"{type(error).__name__}: {error}" if isinstance(error, KeyError) else str(error)
        print(f"{p.prog}: error: {text}", file=sys.stderr)
        return 1
    print(f"wrote attention figure ({n_words} words x {n_maps} maps) -> {path}")
    return 0


class CommandError(ValueError):
    """A bad argument of the command line (a missing file, a caption without words); `main` prints it in one line."""


def _draw(a: argparse.Namespace) -> tuple[Path, int, int]:
    """Check the arguments' files and caption, draw the figure: -> (path written, words, maps)."""
    from ganblocks.text.base import tokenize

    files = [("--image", a.image), ("--generator", a.generator), ("--text-encoder", a.text_encoder),
             ("--captions-pickle", a.captions_pickle)]
    for flag, value in files:
        if value and not Path(value).is_file():
            raise CommandError(f"{flag} {value}: no such file")
    if Path(a.out).is_dir():
        raise CommandError(f"--out {a.out} is a folder; give the path of the .png file to write")
    if not tokenize(a.caption):
        raise CommandError(f"--caption {a.caption!r} has no words")
    if a.damsm:
        from ganblocks.io import load_torch_file

        ckpt = Path(a.damsm) / "final.pt" if Path(a.damsm).is_dir() else Path(a.damsm)
        if not ckpt.is_file():
            raise CommandError(f"--damsm {a.damsm}: no pretrain_damsm checkpoint (expected DIR/final.pt or the file, "
                               "written when `python -m ganblocks.text.pretrain_damsm --out DIR` finishes)")
        config = load_torch_file(ckpt).get("config")
        if not isinstance(config, dict) or "imsize" not in config:
            raise CommandError(f"--damsm {ckpt}: not a pretrain_damsm checkpoint (no config with imsize)")
        size = int(config["imsize"])
        image = read_image(a.image, size)
        attention, words = damsm_attention(a.damsm, image, a.caption)
        maps = [attention]
    else:
        image, maps, words = generator_attention(a.generator, a.text_encoder, a.captions_pickle, a.caption, a.seed, a.coco)
    return attention_figure(image, maps, words, a.out, title=a.caption), len(words), len(maps)

if __name__ == "__main__":
    raise SystemExit(main())
