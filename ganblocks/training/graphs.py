"""The whole training step (D step, G step, Adam, EMA) captured once in a CUDA graph and replayed.

    train_step(stage, batch)   # goes through `graphed_step` when stage.plan.cuda_graph

Why: Stage-I at paper width is launch-bound (~500 kernel launches, GPU busy 4.7 ms of an 11-15 ms step on
an H200); one graph replay launches them all at once (shared/FACTS.md: 13.0 -> 8.6 ms fp32, 14.5 -> 7.1 ms
bf16 for the official architecture).

How, and what stays exact:
- Static shapes: the batch is copied into buffers allocated at capture; a batch of another shape or dtype
  (a short last batch) runs the eager step on the same weights and optimizer state.
- Warm-up before capture (cuDNN autotune, Adam's lazy state, autograd's streams) runs real steps on a
  side stream, then every weight, buffer, EMA weight, optimizer state and the RNG are put back in place,
  so capturing changes nothing: the first replay is the step the eager path would have taken next.
- RNG inside the graph: noise and the conditioning's samples come from the default CUDA generator, which
  PyTorch registers with the graph (each replay advances its Philox offset), so `rng_state()` in a
  checkpoint and a resume continue the same stream.
- Adam is fused and capturable (step counts on the device); the learning rate is baked into the graph,
  so a schedule that changes it (lr halving) triggers a new capture, which happens once per change.
- Per-step statistics come out of the graph in static tensors and are added to `stage.sums` after each
  replay (a few tiny kernels); nothing is read back to the host.

`capture=False` (tests, CPU) builds the same object with the same static buffers, warm-up and restore,
and "replays" by running the eager step on the static buffers: the CPU tests check everything but the
capture itself.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable

import torch

from ganblocks.training.state import rng_state, set_rng_state
from ganblocks.types import Batch

WARMUP_STEPS = 3  # eager steps on a side stream before capture (PyTorch's whole-network example uses 3)


class _NoSchedule:
    """Stands in for the LR schedules inside the captured step (they step on the host after each replay)."""

    def step(self) -> None:
        pass


def eager_view(s: Any) -> Any:
    """A copy of the stage record sharing its models and optimizers, whose step runs eagerly, with fresh
    `sums`/`nonfinite` and no LR schedules (what the graph captures; also what FLOP counting runs)."""
    plan = dataclasses.replace(s.plan, cuda_graph=False) if s.plan is not None else None
    return dataclasses.replace(s, plan=plan, graph=None, sums={}, nonfinite=None,
                               sched_g=_NoSchedule(), sched_d=_NoSchedule())


class GraphedStep:
    """One stage's step as a replayable CUDA graph (or, with capture=False, its eager stand-in).

    Args:
        s: the stage (`ganblocks.training.step.Stage`); its models and optimizers are used in place.
        batch: a batch whose shapes and dtypes the static buffers take.
        capture: record a CUDA graph (CUDA only); False runs the eager step on the static buffers.
        step: the eager step it captures, `ganblocks.training.step.train_step` (passed in, so that this
            module does not import the step that imports it).

    Raises:
        ValueError: capture=True on a device that is not CUDA.
    """

    def __init__(self, s: Any, batch: Batch, capture: bool = True, *, step: Callable[[Any, Batch], None]) -> None:
        device = s.device
        self.step = step
        if capture and device.type != "cuda":
            raise ValueError(f"a CUDA graph needs a CUDA device, got {device}; use train.cuda_graph=auto or false")
        self.device, self.capture = device, capture
        self.static = Batch(**{k: v.detach().clone() for k, v in batch.__dict__.items()})
        self.view = eager_view(s)
        self.lrs = _lrs(s)
        self.graph: torch.cuda.CUDAGraph | None = None
        self._record(s)

    def accepts(self, batch: Batch) -> bool:
        """True when `batch` fits the static buffers (same shapes, dtypes and device)."""
        return all(v.shape == getattr(batch, k).shape and v.dtype == getattr(batch, k).dtype
                   and v.device == getattr(batch, k).device for k, v in self.static.__dict__.items())

    def __call__(self, s: Any, batch: Batch) -> None:
        """Run one step on `batch` and fold its statistics into `s.sums` / `s.nonfinite`; schedules step."""
        if _lrs(s) != self.lrs:  # the schedule changed the learning rate baked into the graph
            self.lrs = _lrs(s)
            self._record(s)
        for key, value in batch.__dict__.items():
            getattr(self.static, key).copy_(value, non_blocking=True)
        if self.graph is not None:
            self.graph.replay()
        else:
            self._body()
        _accumulate(s, self.view)
        s.sched_g.step()
        s.sched_d.step()

    # ------------------------------------------------------------------------------------------------------
    def _body(self) -> None:
        self.view.sums, self.view.nonfinite = {}, None
        self.step(self.view, self.static)

    def _record(self, s: Any) -> None:
        """Warm up, restore every state the warm-up moved, then capture (CUDA) or keep the eager body."""
        saved = _snapshot(s)
        self.view.step = s.step
        if self.capture:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(WARMUP_STEPS):
                    self._body()
            torch.cuda.current_stream(self.device).wait_stream(side)
        else:
            for _ in range(WARMUP_STEPS):
                self._body()
        _restore(s, saved)
        if self.capture:
            self.graph = torch.cuda.CUDAGraph()
            for opt in (s.opt_d, s.opt_g):
                opt.zero_grad(set_to_none=True)
            with torch.cuda.graph(self.graph):
                self._body()
            _restore_rng(saved)  # capturing records kernels without running them; the RNG stays where it was


def graphed_step(s: Any, batch: Batch, step: Callable[[Any, Batch], None]) -> None:
    """`step` (the eager `train_step`) through the stage's graph (captured on the first call, or again for a
    new batch shape)."""
    if s.graph is None:
        s.graph = GraphedStep(s, batch, capture=s.device.type == "cuda", step=step)
    if not s.graph.accepts(batch):
        view = eager_view(s)
        step(view, batch)
        _accumulate(s, view)
        s.sched_g.step()
        s.sched_d.step()
        return
    s.graph(s, batch)


# ----------------------------------------------------------------------------------------------------------
def _lrs(s: Any) -> tuple[float, ...]:
    return tuple(float(g["lr"]) for opt in (s.opt_d, s.opt_g) for g in opt.param_groups)


def _accumulate(s: Any, view: Any) -> None:
    """Add the view's one-step statistics into the stage's running sums (what the eager step does)."""
    for key, value in view.sums.items():
        s.sums[key] = s.sums[key] + value if key in s.sums else value.clone()
    if view.nonfinite is not None:
        s.nonfinite = view.nonfinite.clone() if s.nonfinite is None else s.nonfinite | view.nonfinite


def _snapshot(s: Any) -> dict:
    modules = {"G": s.G, "D": s.D, **({"ema": s.ema} if s.ema is not None else {})}
    return {
        "modules": {k: copy.deepcopy(m.state_dict()) for k, m in modules.items()},
        "opt": [{p: {k: v.detach().clone() if torch.is_tensor(v) else v for k, v in opt.state[p].items()}
                 for p in opt.state} for opt in (s.opt_d, s.opt_g)],
        "rng": rng_state(),
    }


@torch.no_grad()
def _restore(s: Any, saved: dict) -> None:
    """Put weights, buffers, EMA, Adam moments and step counts, and the RNG back, in place (same tensors)."""
    modules = {"G": s.G, "D": s.D, **({"ema": s.ema} if s.ema is not None else {})}
    for key, module in modules.items():
        live = module.state_dict(keep_vars=True)  # the module's own tensors, parameters included
        for name, value in saved["modules"][key].items():
            live[name].copy_(value)
    for opt, before in zip((s.opt_d, s.opt_g), saved["opt"]):
        for p, state in opt.state.items():
            for k, v in state.items():
                if torch.is_tensor(v):
                    v.copy_(before[p][k]) if p in before else v.zero_()  # fresh Adam state is all zeros
        opt.zero_grad(set_to_none=True)
    _restore_rng(saved)


def _restore_rng(saved: dict) -> None:
    set_rng_state(saved["rng"])
