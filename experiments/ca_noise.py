"""How much of a trained generator's condition code is caption and how much is CA noise.

    python -m experiments.ca_noise runs=RUN[,RUN...] out=FILE.json [split=test]

Conditioning augmentation (StackGAN Sec. 3.1) feeds G the code c = mu(t) + sigma(t) * eps, eps ~ N(0, I).
For every caption of the run's evaluation split (embedded by the run's own text encoder) this reads the final
generator's CA block and reports, summed over the N_g dimensions:
  signal: the variance of mu across captions (what tells one caption from another);
  noise:  the mean of sigma^2 (what a fresh eps adds to every code);
  snr:    signal / noise (infinite for a code without noise);
  kl:     the mean per-caption KL(N(mu, sigma^2) || N(0, I)) in nats (summed over dimensions).
A low snr means the generator sees the caption through heavy noise. A run without CA (`model.conditioning=none`,
a deterministic FC) is measured too, for comparison: its code's variance across captions is the signal, its
noise and kl are 0 and its snr null (no noise).

Every run is checked before any is measured: a folder without config.yaml, a config.yaml that cannot be read, a run
without its final checkpoint, or a generator whose conditioning is neither (the mixture: its name is given), is
refused with one line and exit status 2, as are an unknown setting and a split other than train or test.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

USAGE = "usage: python -m experiments.ca_noise runs=RUN[,RUN...] out=FILE.json [split=test]"


@torch.no_grad()
def code_noise(mu: torch.Tensor, logvar: torch.Tensor) -> dict:
    """mu, logvar (P, N_g) of P captions -> signal, noise, snr, kl (see the module docstring)."""
    signal = float(mu.var(0, unbiased=True).sum())
    noise = float(logvar.exp().mean(0).sum())
    kl = float((0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)).sum(1).mean()) if torch.isfinite(logvar).all() else 0.0
    return dict(signal=signal, noise=noise, snr=signal / noise if noise > 0 else None, kl=kl, n_captions=len(mu))


def code_block(run_dir: str) -> tuple:
    """(RunContext, the final generator's GaussianConditioning or NoConditioning) of a run.

    Raises:
        ValueError: the generator has neither (the message names model.conditioning).
    """
    from ganblocks.blocks.conditioning import GaussianConditioning, NoConditioning
    from ganblocks.evaluation.run import RunContext

    ctx = RunContext(run_dir)
    ca = next((m for m in ctx.generator().modules() if isinstance(m, (GaussianConditioning, NoConditioning))), None)
    if ca is None:
        raise ValueError(f"runs={run_dir}: its generator has no Gaussian CA or plain FC code (model.conditioning="
                         f"{ctx.run_cfg.model.get('conditioning')}); nothing to measure")
    return ctx, ca


@torch.no_grad()
def measure(ctx, ca, split: str) -> dict:
    """code_noise of every caption of the run's `split`, with what the run's text came from."""
    ds = ctx.dataset(64, split)
    text = ds.embeddings.reshape(-1, ds.embeddings.shape[-1]).float().to(ca.fc.weight.device)
    if hasattr(ca, "encode"):
        mu, logvar = ca.encode(text)
    else:  # no CA: the deterministic code, no noise (logvar = -inf gives sigma^2 = 0)
        mu = ca(text).code
        logvar = torch.full_like(mu, float("-inf"))
    return dict(run=str(ctx.run_dir), split=split, conditioning=str(ctx.run_cfg.model.get("conditioning")),
                text_encoder=str(ctx.run_cfg.data.text_encoder),
                text_encoder_options=dict(ctx.run_cfg.data.get("text_encoder_options") or {}),
                **code_noise(mu.cpu(), logvar.cpu()))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = dict(a.split("=", 1) for a in argv if "=" in a)
    unknown = [a for a in argv if "=" not in a] + [k for k in args if k not in ("runs", "out", "split")]
    if unknown:
        print(f"unknown setting(s) {unknown}\n{USAGE}", file=sys.stderr)
        return 2
    if not args.get("runs") or not args.get("out"):
        print(USAGE, file=sys.stderr)
        return 2
    if args.get("split", "test") not in ("train", "test"):
        print(f"split={args['split']!r}: expected train or test", file=sys.stderr)
        return 2
    runs = [r for r in args["runs"].split(",") if r]
    missing = [r for r in runs if not (Path(r) / "config.yaml").is_file()]
    if missing:
        print(f"runs: {', '.join(missing)}: no config.yaml (not a run folder written by training)", file=sys.stderr)
        return 2
    from ganblocks.io import atomic_write_json

    import yaml

    blocks = []
    for run in runs:  # every run checked (config, final checkpoint, CA block) before any is measured
        try:
            blocks.append(code_block(run))
        except (ValueError, RuntimeError, OSError, yaml.YAMLError) as err:  # CheckpointError is a RuntimeError
            text = " ".join(str(err).split())
            print(text if text.startswith("runs=") else f"runs={run}: {type(err).__name__}: {text}", file=sys.stderr)
            return 2
    results = []
    for ctx, ca in blocks:
        results.append(measure(ctx, ca, args.get("split", "test")))
        r = results[-1]
        snr = "none (no noise)" if r["snr"] is None else f"{r['snr']:.2f}"
        print(f"{r['run']}: signal {r['signal']:.2f}, noise {r['noise']:.2f}, snr {snr}, kl {r['kl']:.2f} nats")
    atomic_write_json(args["out"], {"command": "python -m experiments.ca_noise " + " ".join(
        f"{k}={v}" for k, v in args.items()), "runs": results})
    print(f"wrote {args['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
