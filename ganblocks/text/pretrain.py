"""Pre-train and cache the `rnn` text encoder: `python -m ganblocks.text.pretrain --dataset synthbirds`.

The checkpoint lands where `RNNEncoder` with the same arguments looks for it, so a later training run with
data.text_encoder=rnn starts at once. Prints the checkpoint path and the loss curve.
"""

from __future__ import annotations

import argparse
import json

import torch

from ganblocks.io import load_torch_file
from ganblocks.text.rnn import MIN_STEPS, pretrain


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ganblocks.text.pretrain", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="synthbirds", help="dataset registry name (default synthbirds)")
    p.add_argument("--root", default=None, help="dataset folder (synthbirds: default the cached build)")
    p.add_argument("--size", default=None, help="synthbirds size preset: tiny, small, default")
    p.add_argument("--seed", type=int, default=0, help="training seed (and synthbirds build seed)")
    p.add_argument("--dim", type=int, default=256, help="sentence embedding size")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--min-steps", type=int, default=MIN_STEPS,
                   help=f"the fewest updates a small train split gets (default {MIN_STEPS}; 0 = exactly --epochs)")
    p.add_argument("--batch-size", type=int, default=48)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--imsize", type=int, default=32, help="image size the image encoder sees")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--force", action="store_true", help="retrain even when a cached checkpoint exists")
    a = p.parse_args(argv)
    kwargs = {"size": a.size, "seed": a.seed} if a.dataset == "synthbirds" and a.root is None else {}
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    path = pretrain(a.dataset, a.root, kwargs or None, a.dim, a.epochs, a.batch_size, a.lr, a.seed, a.imsize,
                    a.device, a.force, min_steps=a.min_steps)
    ckpt = load_torch_file(path, map_location="cpu")
    print(json.dumps({"checkpoint": str(path), "losses": [round(x, 4) for x in ckpt["losses"]],
                      "seconds": round(ckpt["seconds"], 2), "vocab": len(ckpt["vocab"])}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
