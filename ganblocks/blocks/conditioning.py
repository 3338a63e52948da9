"""Conditioning blocks: text embedding -> condition code for the generator, plus its regulariser.

Contract (every registered `conditioning`): keyword construction `(text_dim, condition_dim, ...)`;
`forward(text (B, D)) -> ConditioningOutput` with `code` and `mean` (B, N_g), a scalar `regulariser` the
generator loss adds (weighted by its KL weight), and scalar `stats`. The attribute `use_mean` (default
False) makes `code = mean`: the documented switch for deterministic sampling and for comparing with the
official code. `set_use_mean(model, True)` flips it in every conditioning block of a model.

Random inputs: a block that samples declares them in `draw(n, generator) -> {name: tensor (n, ...)}` (all
n samples' inputs drawn up front from one generator); inside `fixed_draws(model, draws)` the next forward
uses those (a batch's rows) instead of the global RNG. Evaluation draws them once for all its samples, so
its images do not depend on how they are batched. Training draws from the global RNG as before.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganblocks.registry import register
from ganblocks.types import ConditioningOutput

ACTIVATIONS = ("relu", "leaky_relu", "glu", "none")
KL_REDUCTIONS = ("mean", "sum")


def _activation(block: str, name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.2)
    if name == "glu":
        return nn.GLU(dim=1)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"conditioning {block!r}: activation={name!r}; expected one of {ACTIVATIONS}")


def _fc_width(activation: str, condition_dim: int) -> int:
    """Outputs of the FC before the (mu, logvar) split: 2 * N_g, or 4 * N_g when a GLU halves them."""
    return (4 if activation == "glu" else 2) * condition_dim


def _check_dims(block: str, text_dim: int, condition_dim: int) -> None:
    for name, value in (("text_dim", text_dim), ("condition_dim", condition_dim)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"conditioning {block!r}: {name}={value!r}; expected a positive int")


def gaussian_kl(mu: Tensor, logvar: Tensor, reduction: str = "mean") -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) for (B, N) tensors -> () scalar.

    reduction "mean": the mean over batch and dimensions (the official code); "sum": summed over the N
    dimensions and averaged over the batch (the KL of the paper's formula, per sample).
    """
    element = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
    if reduction == "mean":
        return element.mean()
    if reduction == "sum":
        return element.sum(dim=1).mean()
    raise ValueError(f"KL reduction {reduction!r}; expected one of {KL_REDUCTIONS}")


def set_use_mean(model: nn.Module, value: bool = True) -> int:
    """Set `use_mean` on every conditioning block inside `model`; returns how many were set."""
    count = 0
    for module in model.modules():
        if isinstance(module, ConditioningBlock):
            module.use_mean = bool(value)
            count += 1
    return count


def conditioning_blocks(model: nn.Module) -> list["ConditioningBlock"]:
    """Every conditioning block inside `model`, in module order (Stage-I's before Stage-II's)."""
    return [m for m in model.modules() if isinstance(m, ConditioningBlock)]


def draw_all(model: nn.Module, n: int, generator: torch.Generator) -> list[dict[str, Tensor]]:
    """The random inputs of `n` samples for each conditioning block of `model`, drawn in module order."""
    return [block.draw(n, generator) for block in conditioning_blocks(model)]


@contextlib.contextmanager
def fixed_draws(model: nn.Module, draws: list[dict[str, Tensor]], rows: slice, device: torch.device | str) -> Iterator[None]:
    """Within the block, each conditioning block of `model` takes rows `rows` of its `draws` (from
    `draw_all`) as its random inputs instead of drawing from the global RNG."""
    blocks = conditioning_blocks(model)
    if len(blocks) != len(draws):
        raise ValueError(f"fixed_draws: {len(draws)} draws for {len(blocks)} conditioning blocks")
    try:
        for block, block_draws in zip(blocks, draws):
            block.draws = {k: v[rows].to(device) for k, v in block_draws.items()}
        yield
    finally:
        for block in blocks:
            block.draws = None


class ConditioningBlock(nn.Module):
    """Base class of the conditioning blocks (holds the `use_mean` switch and fixed random inputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.use_mean = False
        self.draws: dict[str, Tensor] | None = None  # set by `fixed_draws` for one forward

    def draw(self, n: int, generator: torch.Generator) -> dict[str, Tensor]:
        """The random inputs of `n` samples, drawn up front from `generator` (CPU): {} when deterministic."""
        return {}

    def _random(self, name: str, fresh, like: Tensor) -> Tensor:
        """The fixed draw `name` when `fixed_draws` set one, else `fresh()` (the global RNG)."""
        if self.draws is None:
            return fresh()
        value = self.draws[name]
        if len(value) != len(like):
            raise ValueError(f"{type(self).__name__}: fixed draw {name!r} has {len(value)} rows for a batch of {len(like)}")
        return value.to(like.device, like.dtype if value.is_floating_point() else value.dtype)

    def extra_repr(self) -> str:
        return f"use_mean={self.use_mean}"


@register("conditioning", "none")
class NoConditioning(ConditioningBlock):
    """Deterministic projection (FC + activation), no augmentation and no KL: (B, D) -> code (B, N_g).

    Args:
        text_dim: D.
        condition_dim: N_g.
        activation: "leaky_relu" (default, GAN-INT-CLS's text projection), "relu", "glu" (FC to 2 * N_g,
            halved by a GLU) or "none".
    """

    def __init__(self, *, text_dim: int, condition_dim: int, activation: str = "leaky_relu") -> None:
        super().__init__()
        _check_dims("none", text_dim, condition_dim)
        self.text_dim, self.condition_dim = text_dim, condition_dim
        self.act = _activation("none", activation)
        self.fc = nn.Linear(text_dim, _fc_width(activation, condition_dim) // 2)

    def forward(self, text: Tensor) -> ConditioningOutput:
        code = self.act(self.fc(text))
        return ConditioningOutput(code=code, mean=code, regulariser=code.new_zeros(()))


@register("conditioning", "gaussian")
class GaussianConditioning(ConditioningBlock):
    """Conditioning Augmentation: FC to (mu, logvar), code = mu + exp(logvar/2) * eps: (B, D) -> (B, N_g).

    The official quirks are keyword options (the `official` preset sets them): `activation="relu"` applies
    a ReLU to the FC output before the split (mu and logvar never negative), `kl_reduction="mean"` averages
    the KL over dimensions too. `activation="glu"` is StackGAN-v2's CA_NET: the FC gives 4 * N_g outputs and
    a GLU halves them to (mu, logvar). The FC is `self.fc` (official name `ca_net.fc`): its first N_g outputs are
    mu, its last N_g logvar.

    Args:
        text_dim: D.
        condition_dim: N_g.
        activation: "none" (the paper's plain FC), "relu" (official PyTorch), "leaky_relu" (official TF) or
            "glu" (official StackGAN-v2).
        kl_reduction: "sum" (per-sample KL, the paper's formula) or "mean" (official).
    """

    def __init__(
        self, *, text_dim: int, condition_dim: int, activation: str = "none", kl_reduction: str = "sum"
    ) -> None:
        super().__init__()
        _check_dims("gaussian", text_dim, condition_dim)
        if kl_reduction not in KL_REDUCTIONS:
            raise ValueError(f"conditioning 'gaussian': kl_reduction={kl_reduction!r}; expected one of {KL_REDUCTIONS}")
        self.text_dim, self.condition_dim, self.kl_reduction = text_dim, condition_dim, kl_reduction
        self.act = _activation("gaussian", activation)
        self.fc = nn.Linear(text_dim, _fc_width(activation, condition_dim))

    def encode(self, text: Tensor) -> tuple[Tensor, Tensor]:
        """(B, D) -> mu (B, N_g), logvar (B, N_g)."""
        x = self.act(self.fc(text))
        return x[:, : self.condition_dim], x[:, self.condition_dim :]

    def draw(self, n: int, generator: torch.Generator) -> dict[str, Tensor]:
        """eps (n, N_g) ~ N(0, I)."""
        return {"eps": torch.randn(n, self.condition_dim, generator=generator)}

    def forward(self, text: Tensor) -> ConditioningOutput:
        mu, logvar = self.encode(text)
        if self.use_mean:
            code = mu
        else:
            std = logvar.mul(0.5).exp()
            code = mu + std * self._random("eps", lambda: torch.randn_like(std), std)
        return ConditioningOutput(code=code, mean=mu, regulariser=gaussian_kl(mu, logvar, self.kl_reduction))


@register("conditioning", "mixture")
class MixtureConditioning(ConditioningBlock):
    """Mixture of K Gaussians, each with its own FC to (mu_k, logvar_k); one component per sample: (B, D) -> (B, N_g).

    The component is drawn uniformly (`selection="uniform"`) or from learned text-dependent weights through
    a straight-through Gumbel-softmax (`selection="learned"`, temperature `tau`). The regulariser is the
    sum of the KL of every component to N(0, I). `mean` is the mixture mean sum_k pi_k mu_k. `stats` holds
    `component_separation` (mean pairwise L2 distance between component means, averaged over the batch)
    and `component_separation_rel` (the same divided by the mean norm of the component means), to watch
    the components collapse to one.

    Args:
        text_dim: D.
        condition_dim: N_g.
        num_components: K (default 3).
        selection: "uniform" or "learned".
        tau: Gumbel-softmax temperature for "learned".
        activation, kl_reduction: as in `gaussian`.
    """

    SELECTIONS = ("uniform", "learned")

    def __init__(
        self,
        *,
        text_dim: int,
        condition_dim: int,
        num_components: int = 3,
        selection: str = "uniform",
        tau: float = 1.0,
        activation: str = "none",
        kl_reduction: str = "sum",
    ) -> None:
        super().__init__()
        _check_dims("mixture", text_dim, condition_dim)
        if not isinstance(num_components, int) or num_components < 1:
            raise ValueError(f"conditioning 'mixture': num_components={num_components!r}; expected a positive int")
        if selection not in self.SELECTIONS:
            raise ValueError(f"conditioning 'mixture': selection={selection!r}; expected one of {self.SELECTIONS}")
        if kl_reduction not in KL_REDUCTIONS:
            raise ValueError(f"conditioning 'mixture': kl_reduction={kl_reduction!r}; expected one of {KL_REDUCTIONS}")
        if not tau > 0:
            raise ValueError(f"conditioning 'mixture': tau={tau!r}; expected > 0")
        self.text_dim, self.condition_dim = text_dim, condition_dim
        self.num_components, self.selection, self.tau, self.kl_reduction = num_components, selection, tau, kl_reduction
        self.act = _activation("mixture", activation)
        self.fcs = nn.ModuleList(nn.Linear(text_dim, _fc_width(activation, condition_dim)) for _ in range(num_components))
        self.selector = nn.Linear(text_dim, num_components) if selection == "learned" else None

    def draw(self, n: int, generator: torch.Generator) -> dict[str, Tensor]:
        """eps (n, K, N_g) ~ N(0, I); the component: uniform ids (n,) or Gumbel noise (n, K) when learned."""
        k = self.num_components
        draws = {"eps": torch.randn(n, k, self.condition_dim, generator=generator)}
        if self.selector is None:
            draws["component"] = torch.randint(k, (n,), generator=generator)
        else:
            draws["gumbel"] = -torch.empty(n, k).exponential_(generator=generator).log()
        return draws

    def _weights(self, text: Tensor) -> tuple[Tensor, Tensor]:
        """Mixture probabilities pi (B, K) and one-hot choices (B, K) (straight-through when learned)."""
        batch, k = text.shape[0], self.num_components
        if self.selector is None:
            pi = text.new_full((batch, k), 1.0 / k)
            component = self._random("component", lambda: torch.randint(k, (batch,), device=text.device), text)
            choice = F.one_hot(component, k).to(text.dtype)
        else:
            logits = self.selector(text)
            pi = logits.softmax(dim=1)
            if self.draws is None:
                choice = F.gumbel_softmax(logits, tau=self.tau, hard=True, dim=1)
            else:  # F.gumbel_softmax's straight-through estimator, with the given Gumbel noise
                soft = ((logits + self._random("gumbel", None, logits)) / self.tau).softmax(dim=1)
                hard = torch.zeros_like(soft).scatter_(1, soft.argmax(dim=1, keepdim=True), 1.0)
                choice = hard - soft.detach() + soft
        return pi, choice

    def forward(self, text: Tensor) -> ConditioningOutput:
        mus, logvars = [], []
        for fc in self.fcs:
            x = self.act(fc(text))
            mus.append(x[:, : self.condition_dim])
            logvars.append(x[:, self.condition_dim :])
        mu, logvar = torch.stack(mus, dim=1), torch.stack(logvars, dim=1)  # (B, K, N_g)
        pi, choice = self._weights(text)
        mean = (pi.unsqueeze(2) * mu).sum(dim=1)
        if self.use_mean:
            code = mean
        else:
            std = logvar.mul(0.5).exp()
            samples = mu + std * self._random("eps", lambda: torch.randn_like(std), std)
            code = (choice.unsqueeze(2) * samples).sum(dim=1)
        kl = sum(gaussian_kl(mu[:, i], logvar[:, i], self.kl_reduction) for i in range(self.num_components))
        return ConditioningOutput(code=code, mean=mean, regulariser=kl, stats=self._separation(mu))

    def _separation(self, mu: Tensor) -> dict[str, Tensor]:
        with torch.no_grad():
            if self.num_components < 2:
                zero = mu.new_zeros(())
                return {"component_separation": zero, "component_separation_rel": zero}
            pairs = itertools.combinations(range(self.num_components), 2)
            dist = torch.stack([(mu[:, i] - mu[:, j]).norm(dim=1) for i, j in pairs]).mean()
            scale = mu.norm(dim=2).mean().clamp_min(1e-8)
            return {"component_separation": dist, "component_separation_rel": dist / scale}
