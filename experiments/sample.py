"""Draw images for captions from a trained run, Stage-I and Stage-II side by side:

    python -m experiments.sample run_dir=outputs/2026-01-01/12-00-00 captions='["a red bird", "a small bird with a blue crown"]'

Writes out_dir/grid.png (one column per image with its caption above it; a `Stage-I` row above the final
`<size>px` row for two-stage runs, each row labelled), out_dir/<k>_stage1.png and <k>_final.png per image
at their own resolution, and out_dir/captions.txt; prints the paths.

Examples:
  python -m experiments.sample run_dir=outputs/run captions='["a red bird"]' n=4 seed=1
  python -m experiments.sample checkpoint=outputs/run/checkpoints/stage2/final.pt captions='["a blue bird"]'
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

OPTIONS = {  # key -> (default, what it is)
    "run_dir": ("required", "a run folder written by experiments.train (or give checkpoint=)"),
    "checkpoint": ("null", "<run_dir>/checkpoints/<stage>/final.pt: its run folder is used"),
    "captions": ("required", "a list of captions, e.g. '[\"a red bird\", \"a blue bird\"]'"),
    "n": ("1", "images per caption"),
    "seed": ("0", "noise seed"),
    "out_dir": ("<run_dir>/samples/cli", "where the images go"),
    "device": ("cpu", "cpu | cuda | cuda:N"),
}


def sample(run_dir: str | Path, captions: list[str], n: int = 1, seed: int = 0, out_dir: str | Path | None = None,
           device: str = "cpu") -> list[Path]:
    """Encode `captions` with the run's text encoder, draw `n` images each, write them; return the paths."""
    from torchvision.utils import save_image

    from ganblocks.data.dataset import resolve_text_encoder, text_encoder_spec
    from ganblocks.io import atomic_write_bytes, atomic_write_text
    from ganblocks.sheets import compose_sheet
    from ganblocks.training import assemble, load_generator

    run_dir = Path(run_dir)
    if not captions or not all(isinstance(c, str) and c.strip() for c in captions):
        raise ValueError(f"captions={captions!r}: expected a non-empty list of non-empty strings")
    if int(n) < 1:
        raise ValueError(f"n={n!r}: expected an integer >= 1 (images per caption)")
    G = load_generator(run_dir, device=device)
    cfg = OmegaConf.load(run_dir / "config.yaml")

    # The run's text encoder, with the context its dataset built it with.
    dataset = assemble.build_training_dataset(cfg, int(cfg.pipeline.stages[0].imsize))
    spec = text_encoder_spec(cfg.data.text_encoder, assemble.text_encoder_options(cfg))
    encoder = dataset.text_encoder or resolve_text_encoder(spec, dataset=cfg.data.name, root=str(dataset.root))
    try:
        text = torch.as_tensor(encoder.encode(list(captions))).float()
    except Exception as error:
        raise ValueError(f"text encoder {cfg.data.text_encoder!r} of the run cannot encode new captions "
                         f"({error}); train with an encoder that can (e.g. data.text_encoder=bow)") from None
    text = text.repeat_interleave(int(n), dim=0).to(device)
    generator = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(len(text), G.noise_dim, generator=generator).to(device)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        out = G(text, noise)

    out_dir = Path(out_dir) if out_dir is not None else run_dir / "samples" / "cli"
    size = out.image.shape[-1]
    final = out.image.float().clamp(-1, 1) * 0.5 + 0.5
    as_uint8 = lambda x: (x * 255 + 0.5).clamp(0, 255).to(torch.uint8).cpu()  # noqa: E731  (as save_image)
    rows = [((f"{size}px",), as_uint8(final))]
    first = None
    if out.stage1_image is not None:
        first = out.stage1_image.float().clamp(-1, 1) * 0.5 + 0.5
        rows.insert(0, (("Stage-I",), as_uint8(torch.nn.functional.interpolate(first, size=size, mode="nearest"))))
    labels = [c for c in captions for _ in range(int(n))]
    written = [out_dir / "grid.png"]
    buffer = io.BytesIO()
    compose_sheet(rows, labels).save(buffer, format="png")  # each column's caption above it, rows labelled
    atomic_write_bytes(written[0], buffer.getvalue())
    for k in range(len(final)):
        if first is not None:
            written.append(out_dir / f"{k:03d}_stage1.png")
            _write_png(first[k].cpu(), written[-1], save_image)
        written.append(out_dir / f"{k:03d}_final.png")
        _write_png(final[k].cpu(), written[-1], save_image)
    written.append(out_dir / "captions.txt")
    atomic_write_text(written[-1], "".join(f"{k:03d}\t{c}\n" for k, c in enumerate(labels)))
    return written


def _write_png(images: torch.Tensor, path: Path, save_image, nrow: int = 8) -> None:
    from ganblocks.io import atomic_write_bytes

    buffer = io.BytesIO()
    save_image(images, buffer, nrow=nrow, padding=2, format="png")
    atomic_write_bytes(path, buffer.getvalue())


def usage() -> str:
    from experiments.usage import render

    return render(__doc__, [("Options (key=value)", "\n".join(f"  {k}={d}".ljust(30) + f"  # {what}"
                                                               for k, (d, what) in OPTIONS.items()))])


def main(argv: list[str] | None = None) -> int:
    from experiments.usage import wants_help

    argv = list(sys.argv[1:] if argv is None else argv)
    if wants_help(argv):
        print(usage(), end="")
        return 0
    args = OmegaConf.from_dotlist(argv)
    unknown = sorted(set(args.keys()) - set(OPTIONS))
    if unknown:
        print(f"experiments.sample: unknown option(s) {unknown}; options: {', '.join(OPTIONS)}", file=sys.stderr)
        return 2
    run_dir = args.get("run_dir")
    if run_dir is None and args.get("checkpoint") is not None:
        run_dir = Path(args.checkpoint).resolve().parents[2]  # <run_dir>/checkpoints/<stage>/final.pt
    if run_dir is None or args.get("captions") is None:
        print("experiments.sample: needs run_dir=<run folder> (or checkpoint=...) and captions='[\"...\", ...]'",
              file=sys.stderr)
        return 2
    if not (Path(run_dir) / "config.yaml").is_file():
        print(f"experiments.sample: {Path(run_dir).resolve()} holds no config.yaml: expected run_dir= (or checkpoint=) "
              "to name a folder written by `python -m experiments.train`", file=sys.stderr)
        return 2
    captions = OmegaConf.to_container(args.captions) if OmegaConf.is_list(args.captions) else [str(args.captions)]
    from ganblocks.data.dataset import DatasetError
    from ganblocks.data.text_options import TextEncoderOptionsError
    from ganblocks.io import UnsafeFileError
    from ganblocks.training.checkpoint import CheckpointError

    try:
        paths = sample(run_dir, captions, n=args.get("n", 1), seed=args.get("seed", 0), out_dir=args.get("out_dir"),
                       device=args.get("device", "cpu"))
    except (UnsafeFileError, CheckpointError, DatasetError) as error:  # a crafted or broken file, named
        print(f"experiments.sample: {error}", file=sys.stderr)
        return 1
    except TextEncoderOptionsError as error:  # the run's config.yaml names options its encoder does not take
        print(f"experiments.sample: {Path(run_dir) / 'config.yaml'}: {error}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
