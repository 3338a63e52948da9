"""The detail reader: a small second network that reads the attributes the evaluator's judge reads poorly, each at
the resolution where it shows, and supplies their logits in place of the judge's (`DetailedEvaluator`).

The evaluator (`ganblocks.evaluation.evaluator`) sees every image at one size (128 px for the tables): one-pixel
details that only survive at 256 px (synthbirds' back spots) average out on the way in, and a small shape at
64 px (the beak) shares its trunk with ten other heads. A detail reader has one branch per attribute it reads,
each a light CNN at its own input size (`size`: images of other sizes are resized to it, bilinear, antialiased),
trained on free renders (every attribute drawn per image, independently of the class) drawn at that size, and a
share `other_fraction` of each branch's images drawn at the other branches' sizes and resized to its own: so
the 256 px branch also sees 64 px images brought up (it learns that spots are unknown there, not absent) and the
64 px branch sees 256 px images brought down (it reads the beak of a large image like a small one's).

The evaluator's class head, features and other attribute heads are untouched: IS, FID, KID, diversity and the
other readings stay bit-identical; only the name changes (it carries the reader's weights fingerprint).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ganblocks.evaluation.evaluator import CROP_FRACTION, Evaluator, EvaluatorOutput, weights_fingerprint
from ganblocks.evaluation.pixels import high_pass, to_unit_range
from ganblocks.io import CorruptFileError, load_torch_file

DETAIL_VERSION = 1  # bump when the reader's network or training changes


def resize(x: Tensor, size: int) -> Tensor:
    """Float images (B, 3, H, W) -> (B, 3, size, size), bilinear, antialiased when shrinking; same if equal."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


class DetailBranch(nn.Module):
    """One attribute at one input size: (B, 3, H, W) uint8 or [-1, 1] -> (B, num_values) logits.

    Image and high-pass detail (6 channels) at `size`; four stages of a 3x3 stride-1 conv (BatchNorm, ReLU;
    widths w, 2w, 4w, 4w) each followed by a 2x2 max-pool, so a dot one or two pixels wide at full resolution
    keeps its peak on the way down (a strided conv averages it with its dark ring); the head reads an
    attention-pooled, a max-pooled and a mean summary of the last (size/16)^2 map, so it finds its part (beak,
    back) wherever the bird stands and counts a pattern's strength.
    """

    def __init__(self, num_values: int, size: int, width: int) -> None:
        super().__init__()
        if size < 32 or size & (size - 1):
            raise ValueError(f"detail reader branch size={size}; expected a power of two >= 32")
        self.size = size
        layers: list[nn.Module] = []
        channels = 6
        for out in (width, 2 * width, 4 * width, 4 * width):
            layers += [nn.Conv2d(channels, out, 3, 1, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(True),
                       nn.MaxPool2d(2)]
            channels = out
        self.trunk = nn.Sequential(*layers)
        self.attend = nn.Conv2d(channels, 1, 1)
        self.head = nn.Linear(3 * channels, num_values)

    def forward(self, images: Tensor) -> Tensor:
        h = self.trunk(high_pass(resize(to_unit_range(images), self.size))).flatten(2)  # (B, C, P)
        attention = (self.attend.weight.flatten(1) @ h + self.attend.bias[:, None]).softmax(-1)  # (B, 1, P)
        return self.head(torch.cat([(h * attention).sum(-1), h.amax(-1), h.mean(-1)], 1))


class DetailReaderNet(nn.Module):
    """One `DetailBranch` per read attribute ({num_values, size, width}); (B, 3, H, W) -> list of (B, V_a)
    logits in `reads` order."""

    def __init__(self, reads: Sequence[dict]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(DetailBranch(int(r["num_values"]), int(r["size"]), int(r["width"]))
                                      for r in reads)

    def forward(self, images: Tensor) -> list[Tensor]:
        return [branch(images) for branch in self.branches]


class DetailReader:
    """A trained `DetailReaderNet` and its meta: key, version, reads [{name, index, num_values, size, width,
    epochs}], training settings, accuracy {name: held-out accuracy at its size}, weights (fingerprint)."""

    def __init__(self, net: DetailReaderNet, meta: dict) -> None:
        self.net, self.meta = net.eval(), meta
        self.meta.setdefault("weights", weights_fingerprint(net))

    @property
    def reads(self) -> list[dict]:
        return list(self.meta["reads"])

    @torch.no_grad()
    def logits(self, images: Tensor) -> list[Tensor]:
        """(B, 3, H, W) -> list of (B, V_a) logits, one per read attribute (on the net's device)."""
        return self.net(images.to(next(self.net.parameters()).device))

    def state(self) -> dict:
        return {"state_dict": self.net.state_dict(), "meta": self.meta}

    @classmethod
    def load_file(cls, path: Any, device: str | torch.device = "cpu") -> "DetailReader":
        """Read a file written from `state()` (`torch.load(weights_only=True)`), its fingerprint checked.

        Raises:
            CorruptFileError (a ValueError): the file is not a detail reader (no {"state_dict", "meta": {"reads",
                ...}}, or weights that do not fit its reads), or its weights' fingerprint differs from its meta's.
        """
        blob = load_torch_file(path, map_location=device)
        expected = ('expected a dict {"state_dict", "meta"} written by DetailReader.state(), its meta listing '
                    '"reads" [{name, index, num_values, size, width}]')
        meta = blob.get("meta") if isinstance(blob, dict) else None
        if not isinstance(meta, dict) or not isinstance(meta.get("reads"), list) or "state_dict" not in blob:
            found = sorted(blob) if isinstance(blob, dict) else type(blob).__name__
            raise CorruptFileError(f"{path} is not a detail reader (it holds {found}"
                             f"{'' if not isinstance(meta, dict) else ', meta keys ' + str(sorted(meta))}); {expected}")
        try:
            net = DetailReaderNet(meta["reads"])
            net.load_state_dict(blob["state_dict"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            first = str(err).strip().splitlines()[0]
            raise CorruptFileError(f"{path} is not a detail reader its meta describes ({type(err).__name__}: "
                             f"{first}); {expected}") from err
        if weights_fingerprint(net) != meta.get("weights"):
            raise CorruptFileError(f"{path}: its weights have fingerprint {weights_fingerprint(net)}, its meta records "
                             f"{meta.get('weights')}; the file was altered after it was saved")
        return cls(net.to(device), meta)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


class DetailedEvaluator(Evaluator):
    """An `Evaluator` whose logits for the detail reader's attributes come from the reader.

    Everything else (features, class logits, the other attributes' logits, realism features) is the base
    evaluator's, unchanged. The name appends `-d<reader weights>`, so no cache keyed by the evaluator's name
    (real reference, metrics) reuses results of the base judge alone.
    """

    def __init__(self, base: Evaluator, detail: DetailReader) -> None:
        super().__init__(base.net, {**base.meta, "detail": detail.meta})
        self.base, self.detail = base, detail
        names = [a.name for a in base.attributes]
        for r in detail.reads:
            if names[int(r["index"])] != r["name"]:
                raise ValueError(f"detail reader reads {r['name']!r} as attribute {r['index']}, but the evaluator's "
                                 f"attribute {r['index']} is {names[int(r['index'])]!r}")

    @property
    def name(self) -> str:
        return f"{super().name}-d{self.detail.meta['weights']}"

    @property
    def accuracy(self) -> dict:
        """The base judge's held-out accuracy with the reader's attributes replaced by the reader's own (measured
        on its held-out free renders) and the coarse / fine / overall means recomputed; `detail_reader` names them."""
        base = self.base.accuracy
        attrs = {**base["attributes"], **{k: float(v) for k, v in self.detail.meta["accuracy"].items()}}
        coarse = [attrs[i.name] for i in self.attributes if not i.fine and i.name in attrs]
        fine = [attrs[i.name] for i in self.attributes if i.fine and i.name in attrs]
        return {**base, "attributes": attrs, "attributes_mean": _mean(list(attrs.values())), "coarse": _mean(coarse),
                "fine": _mean(fine), "detail_reader": sorted(self.detail.meta["accuracy"])}

    def to(self, device: str | torch.device) -> "DetailedEvaluator":
        self.net.to(device)
        self.detail.net.to(device)
        return self

    @torch.no_grad()
    def outputs(self, images: Tensor, batch_size: int = 256) -> EvaluatorOutput:
        out = super().outputs(images, batch_size)
        parts = [self.detail.logits(images[s : s + batch_size]) for s in range(0, len(images), batch_size)]
        for j, r in enumerate(self.detail.reads):
            out.attribute_logits[int(r["index"])] = torch.cat([p[j] for p in parts]).cpu()
        return out


def _views(renders: dict[int, Tensor], idx: Tensor, size: int, other_fraction: float, gen: torch.Generator) -> Tensor:
    """Training views for a branch at `size`: each image a random CROP_FRACTION crop of its render at that
    branch's load size, or (a share `other_fraction`) of its render at another load size, resized to `size`;
    then a random horizontal flip. -> float (B, 3, size, size) in [-1, 1]."""
    loads = sorted(renders)
    own = size * 76 // 64
    others = [load for load in loads if load != own]
    pick = torch.rand(len(idx), generator=gen)
    out = torch.empty(len(idx), 3, size, size)
    for j, load in enumerate([own] + others):
        if others:
            mask = (pick >= other_fraction) if j == 0 else \
                ((pick < other_fraction * j / len(others)) & (pick >= other_fraction * (j - 1) / len(others)))
        else:
            mask = torch.ones(len(idx), dtype=torch.bool)
        if not mask.any():
            continue
        crop = round(load * CROP_FRACTION)
        top, left = torch.randint(0, load - crop + 1, (2,), generator=gen).tolist()
        x = to_unit_range(renders[load][idx[mask]][..., top : top + crop, left : left + crop])
        if load < own:  # a small image on its way up: down to its size first (it is already), then up
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        out[mask] = resize(x, size)
    flip = torch.rand(len(idx), generator=gen) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


def train_detail_reader(rows: Tensor, renders: dict[int, Tensor], reads: Sequence[dict], *, batch_size: int = 32,
                        lr: float = 3e-3, other_fraction: float = 0.25, heldout: int = 500, seed: int = 0,
                        key: str = "", extra_meta: dict | None = None, progress: bool = True) -> DetailReader:
    """Train one branch per entry of `reads`, one after the other; measure each on `heldout` held-out renders.

    Each branch: Adam with a one-cycle schedule (peak `lr`) for its own `epochs` passes over the training
    renders, batches of `batch_size` views (`_views`: its own size, or a share `other_fraction` of another).

    Args:
        rows:     (N, A) int64 attribute values of the free renders (drawn independently of the class).
        renders:  {load size: uint8 (N, 3, L, L)}: the same N birds drawn at each load size (76 for a 64 px
                  branch, 304 for a 256 px one: the branch crops CROP_FRACTION of it, as the GAN's images are).
        reads:    [{name, index (column of rows), num_values, size (the branch's input size), width, epochs}].
    Returns:
        A `DetailReader` in eval mode on CPU; `meta["accuracy"][name]` is the held-out accuracy on centre crops
        at the branch's own size. Deterministic on CPU for a fixed seed (seeded order, crops, initialisation).
    Raises:
        ValueError: a branch's load size missing from `renders`, or renders and rows of different lengths.
    """
    for r in reads:
        if int(r["size"]) * 76 // 64 not in renders:
            raise ValueError(f"detail reader: {r['name']} reads at {r['size']} px but no renders at load size "
                             f"{int(r['size']) * 76 // 64} were given (have {sorted(renders)})")
    if any(len(x) != len(rows) for x in renders.values()):
        raise ValueError(f"detail reader: {len(rows)} rows but renders of lengths {[len(x) for x in renders.values()]}")
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = DetailReaderNet(reads)
    order = torch.randperm(len(rows), generator=gen)
    train, held = order[heldout:], order[:heldout]
    from ganblocks.progress import progress_bar

    accuracy, seconds = {}, {}
    for branch, r in zip(net.branches, reads):
        t0, target = time.perf_counter(), rows[:, int(r["index"])]
        steps = int(r["epochs"]) * (len(train) // batch_size)
        opt = torch.optim.Adam(branch.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
        bar = progress_bar(total=steps, desc=f"training the detail reader: {r['name']}", leave=False,
                           disable=not progress)
        branch.train()
        for _ in range(int(r["epochs"])):
            perm = train[torch.randperm(len(train), generator=gen)]
            for i in range(0, len(perm) - batch_size + 1, batch_size):
                idx = perm[i : i + batch_size]
                loss = F.cross_entropy(branch(_views(renders, idx, branch.size, other_fraction, gen)), target[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                bar.update(1)
        bar.close()
        branch.eval()
        load = int(r["size"]) * 76 // 64
        c = (load - round(load * CROP_FRACTION)) // 2
        x = renders[load][held][..., c : load - c, c : load - c]
        with torch.no_grad():
            pred = torch.cat([branch(x[s : s + 128]).argmax(1) for s in range(0, len(x), 128)])
        accuracy[r["name"]] = int((pred == target[held]).sum()) / len(held)
        seconds[r["name"]] = round(time.perf_counter() - t0, 1)
    meta = {"key": key, "version": DETAIL_VERSION, "reads": [dict(r) for r in reads], "batch_size": batch_size,
            "lr": lr, "other_fraction": other_fraction, "seed": seed, "n_train": int(len(train)),
            "n_heldout": int(len(held)), "accuracy": accuracy, "train_s": round(time.perf_counter() - start, 1),
            "train_s_per_branch": seconds, "threads": torch.get_num_threads(), **(extra_meta or {})}
    return DetailReader(net.eval(), meta)
