"""One training step: a D step then a G step over a list of (generator output at a scale, discriminator, loss).

    train_step(stage, batch)      # what the loop, the CUDA graph (graphs.py) and the benchmarks run

A `Stage` holds one generator and the `Pair`s it is trained against. Stage-I, Stage-II and one-stage have
one pair (the generator's image, its D, the loss); a StackGAN++ tree has one pair per branch (64, 128,
256 px). The step never asks which it has:
- the configured text transform (`text_transform` registry: none, gan_int) gives G its captions and noise;
- each discriminator builds its own condition from the text and the generator's conditioning record
  (`D.conditions`), so the step never asks whether a D takes text or the conditioning mean;
- each pair's loss asks the D's record for the logits it needs; the conditioning regulariser (KL) is
  counted once (with the first pair), and the stage's generator regularisers (`regulariser` registry, e.g.
  color_consistency, AttnGAN's damsm, damsm_sentence) see every scale's image, G's text and the batch's
  classes (keywords `text=`, `class_ids=`; a regulariser uses what it needs).
Real images reach a lower-resolution pair by average pooling of the batch (an exact 2^k box filter).

On CUDA the step runs under the stage plan's autocast and memory format and never syncs with the host:
statistics are summed on the device (`stage.sums`). On CPU it is float32 and bit-for-bit reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganblocks.training import graphs, precision
from ganblocks.types import Batch, DiscriminatorOutput, GeneratorOutput


class DiscriminatorScorer(nn.Module):
    """D applied to real and fake images under several conditions, in one forward (one DDP call per use).

    forward(real (B, 3, S, S) | None, fake (B', 3, S, S) | None, real_conditions, fake_conditions)
        -> (outputs for real under each condition, outputs for fake under each condition).
    The image is encoded once and its features scored by the head once per condition, as the official code.
    """

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.discriminator = discriminator

    def forward(self, real, fake, real_conditions=(), fake_conditions=()):
        out_real, out_fake = [], []
        if real is not None:
            features = self.discriminator.encode(real)
            out_real = [self.discriminator.head(features, c) for c in real_conditions]
        if fake is not None:
            features = self.discriminator.encode(fake)
            out_fake = [self.discriminator.head(features, c) for c in fake_conditions]
        return out_real, out_fake


@dataclass
class Pair:
    """One thing the step trains: the generator's image at `scale` against discriminator `D` under `loss`."""

    name: str  # label: the stage's name for a single pair, "<size>px" in a tree (log keys "<name>/loss_d")
    scale: int  # index into the generator's images, lowest resolution first (`scale_images`)
    D: nn.Module  # the discriminator (encode, head, conditions)
    D_step: nn.Module  # DiscriminatorScorer(D), possibly compiled / DDP-wrapped
    loss: Any  # a registered `loss`: discriminator(real, wrong, fake), generator(fake, regulariser)


@dataclass
class Stage:
    """Everything one stage trains and tracks (built by `build.build_stage`, advanced by `train_step`)."""

    index: int
    name: str
    G: nn.Module
    D: nn.Module  # every discriminator of the stage as one module (the D itself, or a ModuleList per scale)
    G_step: nn.Module  # G, possibly compiled / DDP-wrapped
    pairs: list[Pair]
    ema: nn.Module | None
    ema_decay: float | None  # EMA weight of the old average (StackGAN-v2: 0.999); None = no EMA
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer  # one Adam over every D (Adam is per parameter: as one optimizer per D)
    sched_g: Any
    sched_d: Any
    loader: Any
    device: torch.device
    text_transform: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]  # (text, noise) -> G's (text, noise)
    conditioning: Callable[[Tensor], Any] | None  # G's conditioning block (D's "cond_mean" of wrong captions)
    regularisers: list[Callable] = field(default_factory=list)  # (images lowest first, text=, class_ids=) -> (loss, stats)
    total_steps: int = 0
    steps_per_epoch: int = 1
    batch_size: int = 1
    text_dim: int = 0
    sample_text: Tensor | None = None
    sample_noise: Tensor | None = None
    step: int = 0
    sums: dict[str, Tensor] = field(default_factory=dict)
    nonfinite: Tensor | None = None
    params: dict[str, int] = field(default_factory=dict)  # {"G": trainable, "G_total", "D"} parameter counts
    sample_captions: list[str] = field(default_factory=list)  # the texts of sample_text, for the sheets
    plan: precision.StepPlan | None = None  # autocast dtype, memory format, Adam kind, CUDA graph (precision.py)
    graph: graphs.GraphedStep | None = None  # the captured step, made on the first graphed step


def scale_images(out: GeneratorOutput) -> tuple[Tensor, ...]:
    """The generator's image at every scale, lowest first: `out.images` of a tree, else (out.image,)."""
    return tuple(out.images) if out.images is not None else (out.image,)


def train_step(s: Stage, batch: Batch) -> None:
    """One D step then one G step (official order); losses summed on the device, nothing read back.

    Args:
        s: the stage; its weights, optimizers, schedules, EMA and `sums` advance (`s.step` does not: the
            loop counts steps).
        batch: images (B, 3, S, S) in [-1, 1] at the stage's largest scale, embeddings and wrong
            embeddings (B, D), on `s.device`.
    """
    if s.plan is not None and s.plan.cuda_graph:
        return graphs.graphed_step(s, batch, train_step)  # the same step, captured once and replayed
    device = s.device
    amp = precision.autocast(s.plan, device)
    B = len(batch)
    images = batch.images
    if device.type == "cuda" and s.plan is not None and s.plan.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    noise = torch.randn(B, s.G.noise_dim, device=device)
    text, noise = s.text_transform(batch.embeddings, noise)
    s.G.train()
    s.D.train()
    encode = _once(s.conditioning)
    with amp:
        out: GeneratorOutput = s.G_step(text, noise)
        fakes = scale_images(out)
        conditions = [pair.D.conditions(text, batch.wrong_embeddings, out.cond, encode) for pair in s.pairs]

    # Discriminator step: every pair's loss, summed (each D's gradient comes from its own pair only).
    stats: dict[str, Tensor] = {}
    losses_d = []
    for pair, (condition, wrong) in zip(s.pairs, conditions):
        fake = fakes[pair.scale]
        with amp:
            (real_o, wrong_o), (fake_o,) = pair.D_step(at_size(images, fake.shape[-1]), fake[:B].detach(),
                                                       (condition[:B], wrong), (condition[:B],))
        loss, pair_stats = pair.loss.discriminator(real_o, wrong_o, fake_o)
        losses_d.append(loss)
        _merge(stats, pair_stats, pair, len(s.pairs))
    loss_d = _total(losses_d)
    s.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    s.opt_d.step()

    # Generator step: every pair's adversarial loss (the conditioning regulariser once), then regularisers.
    losses_g = []
    for k, (pair, (condition, _)) in enumerate(zip(s.pairs, conditions)):
        with amp:
            _, (fake_g,) = pair.D_step(None, fakes[pair.scale], (), (condition,))
        regulariser = out.cond.regulariser if k == 0 else torch.zeros_like(out.cond.regulariser)
        loss, pair_stats = pair.loss.generator(fake_g, regulariser)
        losses_g.append(loss)
        _merge(stats, pair_stats, pair, len(s.pairs))
    for regularise in s.regularisers:
        loss, reg_stats = regularise(fakes, text=text, class_ids=batch.class_ids)
        losses_g.append(loss)
        stats.update(reg_stats)
    loss_g = _total(losses_g)
    s.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    s.opt_g.step()
    s.sched_g.step()
    s.sched_d.step()
    if s.ema is not None:
        update_ema(s.ema, s.G, float(s.ema_decay))

    stats.update(loss_d=loss_d.detach(), loss_g=loss_g.detach())
    stats.update({f"cond_{k}": v.detach().float() for k, v in out.cond.stats.items()})
    finite = torch.isfinite(loss_d.detach()) & torch.isfinite(loss_g.detach())
    s.nonfinite = ~finite if s.nonfinite is None else s.nonfinite | ~finite
    for key, value in stats.items():
        value = value.detach().float()
        s.sums[key] = s.sums[key] + value if key in s.sums else value.clone()
    s.sums["_count"] = s.sums.get("_count", torch.zeros((), device=device)) + 1


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for every parameter; buffers (BatchNorm statistics) copied."""
    ema_params = [p for p in ema.parameters()]
    params = [p.detach() for p in model.parameters()]
    torch._foreach_lerp_(ema_params, params, 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)


def at_size(images: Tensor, size: int) -> Tensor:
    """(B, C, S, S) images at `size` (S a power-of-two multiple of it): themselves, or average-pooled."""
    if images.shape[-1] == size:
        return images
    factor = images.shape[-1] // size
    if factor * size != images.shape[-1]:
        raise ValueError(f"real images of size {images.shape[-1]} cannot be pooled to a {size} px scale; "
                         "expected the batch at the largest scale, a power-of-two multiple of every other")
    return F.avg_pool2d(images, factor)


def _once(fn: Callable[[Tensor], Any] | None) -> Callable[[Tensor], Any]:
    """`fn`, run at most once per step whichever discriminator asks (its result is reused)."""
    cache: dict[str, Any] = {}

    def call(x: Tensor) -> Any:
        if fn is None:
            raise ValueError("a discriminator asked for the generator's conditioning of the mismatched captions, "
                             "but the generator has no conditioning block; use condition_input='text'")
        if "out" not in cache:
            cache["out"] = fn(x)
        return cache["out"]

    return call


def _total(losses: list[Tensor]) -> Tensor:
    total = losses[0]
    for loss in losses[1:]:
        total = total + loss
    return total


def _merge(stats: dict[str, Tensor], new: dict[str, Tensor], pair: Pair, n_pairs: int) -> None:
    """A pair's statistics under their own names (one pair) or under "<pair>/<name>" (several)."""
    stats.update(new if n_pairs == 1 else {f"{pair.name}/{k}": v for k, v in new.items()})


__all__ = ["DiscriminatorScorer", "DiscriminatorOutput", "Pair", "Stage", "scale_images", "train_step",
           "update_ema", "at_size"]
