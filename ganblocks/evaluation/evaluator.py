"""The built-in evaluator: a small CNN with a class head (the inception-score classifier) and attribute heads
(the judge), trained on held-out renders of the built-in dataset, never on the GAN's training images.

It plays the role that the CUB-fine-tuned Inception-v3 plays in the StackGAN papers: its class head covers the
test classes (IS), its penultimate features feed FID / KID / diversity, and its attribute heads judge whether an
image shows what a caption names (R-precision, attribute accuracy, rank proxy). Its held-out accuracy is stored
with it, and `Evaluator.check` refuses one that is too weak to be trusted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ganblocks.data.batching import pixels_to_unit
from ganblocks.io import atomic_torch_save, atomic_write_json, cache_dir, load_torch_file, stable_hash

EVALUATOR_VERSION = 1  # bump when the network or its training changes: old cache entries are then ignored
CROP_FRACTION = 64 / 76  # the official crop of the load size, so renders look like the GAN's (cropped) images


class EvaluatorTooWeakError(RuntimeError):
    """The evaluator's held-out accuracy is below the threshold a metric needs to be meaningful."""


@dataclass(frozen=True)
class AttributeInfo:
    """One attribute the judge predicts: its name, how many values it takes, and whether it is fine detail."""

    name: str
    num_values: int
    fine: bool


def attribute_infos(spec: Iterable[Any]) -> list[AttributeInfo]:
    """Normalise a dataset's `attribute_spec` to `AttributeInfo`s.

    Accepts entries that are (name, values, fine) tuples, dicts with those keys, or objects with those
    attributes; `values` is a sequence of value names or a count.
    """
    infos = []
    for i, entry in enumerate(spec):
        if isinstance(entry, AttributeInfo):
            infos.append(entry)
            continue
        if isinstance(entry, dict):
            name, values, fine = entry.get("name"), entry.get("values"), entry.get("fine", False)
        elif isinstance(entry, (tuple, list)) and len(entry) == 3:
            name, values, fine = entry
        elif hasattr(entry, "name") and hasattr(entry, "values"):
            name, values, fine = entry.name, entry.values, getattr(entry, "fine", False)
        else:
            raise TypeError(
                f"attribute_spec[{i}] = {entry!r} is not understood; expected (name, values, fine), a dict with "
                "those keys, or an object with .name, .values and .fine"
            )
        count = int(values) if isinstance(values, int) else len(values)
        if count < 2:
            raise ValueError(f"attribute_spec[{i}] ({name!r}) has {count} values; an attribute needs at least 2")
        infos.append(AttributeInfo(str(name), count, bool(fine)))
    return infos


@dataclass
class EvaluatorOutput:
    """What the evaluator returns for a batch of images.

    features:         (B, F) penultimate features (FID, KID, diversity, realism).
    class_logits:     (B, C_test) raw logits over the test classes (IS).
    attribute_logits: list of (B, V_a) raw logits, one per attribute (the judge).
    """

    features: Tensor
    class_logits: Tensor
    attribute_logits: list[Tensor]


def to_unit_range(images: Tensor) -> Tensor:
    """uint8 [0, 255] or float [-1, 1] images -> float [-1, 1]; (B, 3, H, W) -> (B, 3, H, W)."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return pixels_to_unit(images)
    return images.float()


def to_uint8(images: Tensor) -> Tensor:
    """float [-1, 1] images -> uint8 [0, 255]; (B, 3, H, W) -> (B, 3, H, W)."""
    if images.dtype == torch.uint8:
        return images
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def center_crop(images: Tensor, size: int) -> Tensor:
    """Central square crop; (B, C, L, L) -> (B, C, size, size). Used on real images at the load size."""
    h, w = images.shape[-2:]
    if size > min(h, w):
        raise ValueError(f"cannot crop {size}x{size} out of images of size {h}x{w}")
    top, left = (h - size) // 2, (w - size) // 2
    return images[..., top : top + size, left : left + size]


class EvaluatorNet(nn.Module):
    """Small CNN: images -> penultimate features, test-class logits, one logit vector per attribute.

    (B, 3, H, W) uint8 or [-1, 1] float, resized to `image_size` -> EvaluatorOutput with features (B, feature_dim).
    A 4x4 stride-2 stem (its window still spans two-pixel stripes and rings, the fine attributes at 128 px), then
    stride-2 3x3 convs (BatchNorm, ReLU) halve the size down to 4x4, widths doubling from `width` up to 8 * width.
    """

    def __init__(
        self,
        num_classes: int,
        attribute_sizes: Sequence[int],
        image_size: int = 64,
        width: int = 16,
        feature_dim: int = 128,
    ) -> None:
        super().__init__()
        if image_size < 16 or image_size & (image_size - 1):
            raise ValueError(f"image_size={image_size} must be a power of two >= 16")
        self.image_size = image_size
        layers: list[nn.Module] = [nn.Conv2d(3, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
        channels, size = width, image_size // 2
        while size > 4:
            out = min(channels * 2, width * 8)
            layers += [nn.Conv2d(channels, out, 3, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(True)]
            channels, size = out, size // 2
        self.trunk = nn.Sequential(*layers)
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(channels * 16, feature_dim), nn.ReLU(True))
        self.class_head = nn.Linear(feature_dim, num_classes)
        self.attribute_heads = nn.ModuleList(nn.Linear(feature_dim, n) for n in attribute_sizes)

    def _input(self, images: Tensor) -> Tensor:
        x = to_unit_range(images)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size,) * 2, mode="bilinear", align_corners=False, antialias=True)
        return x

    def forward(self, images: Tensor) -> EvaluatorOutput:
        features = self.embed(self.trunk(self._input(images)))
        return EvaluatorOutput(features, self.class_head(features), [h(features) for h in self.attribute_heads])

    def realism_features(self, images: Tensor) -> Tensor:
        """Content and style of images, for nearest-real-image realism; (B, 3, H, W) -> (B, F_r) of norm 1.

        Half content: the unit-normalised penultimate features. Half style: per trunk stage, the channel means
        and standard deviations of its activations, unit-normalised, each stage an equal share. A classifier's
        features know nothing of texture (a flat grey image lands among the real images in content alone);
        the style statistics of every stage do.
        """
        x, styles = self._input(images), []
        for layer in self.trunk:
            x = layer(x)
            if isinstance(layer, nn.ReLU):
                styles.append(F.normalize(torch.cat([x.mean((2, 3)), x.std((2, 3))], 1), dim=1))
        content = F.normalize(self.embed(x), dim=1)
        style = torch.cat(styles, 1) / len(styles) ** 0.5
        return torch.cat([content, style], 1) / 2**0.5


class Evaluator:
    """A trained `EvaluatorNet` with what it was trained on and how accurate it is on held-out renders.

    Attributes:
        net:        the network, in eval mode on CPU (or moved with `.to`).
        meta:       JSON-able: key, dataset_hash, image_size, class_ids (dataset class id of each class-head
                    output), attributes (name, num_values, fine), accuracy {class, attributes, coarse, fine},
                    n_train, n_heldout, seed.
    """

    def __init__(self, net: EvaluatorNet, meta: dict) -> None:
        self.net = net.eval()
        self.meta = meta
        if "weights" not in self.meta:  # evaluators saved before the fingerprint was kept
            self.meta["weights"] = weights_fingerprint(self.net)

    @property
    def key(self) -> str:
        return str(self.meta["key"])

    @property
    def name(self) -> str:
        """The label every result carries, 'ganblocks-evaluator-<recipe>-w<weights>': the recipe hash names
        how it was trained (data, settings), the weights fingerprint which weights came out. The same recipe
        trained on another device or torch gives other weights, so another name, and its numbers are never
        passed off as comparable."""
        return f"ganblocks-evaluator-{self.key}-w{self.meta['weights']}"

    @property
    def attributes(self) -> list[AttributeInfo]:
        return [AttributeInfo(**a) for a in self.meta["attributes"]]

    @property
    def accuracy(self) -> dict:
        return self.meta["accuracy"]

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: str | torch.device) -> "Evaluator":
        self.net.to(device)
        return self

    @torch.no_grad()
    def outputs(self, images: Tensor, batch_size: int = 256) -> EvaluatorOutput:
        """Evaluate many images in batches; (N, 3, H, W) -> EvaluatorOutput of N rows (on CPU)."""
        if len(images) == 0:
            raise ValueError("no images to evaluate")
        parts = []
        for start in range(0, len(images), batch_size):
            out = self.net(images[start : start + batch_size].to(self.device))
            parts.append(out)
        return EvaluatorOutput(
            torch.cat([p.features for p in parts]).cpu(),
            torch.cat([p.class_logits for p in parts]).cpu(),
            [torch.cat([p.attribute_logits[a] for p in parts]).cpu() for a in range(len(self.net.attribute_heads))],
        )

    @torch.no_grad()
    def realism_features(self, images: Tensor, batch_size: int = 256) -> Tensor:
        """`EvaluatorNet.realism_features` of many images in batches; (N, 3, H, W) -> (N, F_r) on CPU."""
        if len(images) == 0:
            raise ValueError("no images to evaluate")
        return torch.cat([self.net.realism_features(images[start : start + batch_size].to(self.device)).cpu()
                          for start in range(0, len(images), batch_size)])

    def check(self, min_class_accuracy: float = 0.0, min_attribute_accuracy: float = 0.0) -> None:
        """Raise `EvaluatorTooWeakError` if the held-out accuracy is below either threshold."""
        acc = self.accuracy
        problems = []
        if acc["class"] < min_class_accuracy:
            problems.append(
                f"class accuracy {acc['class']:.3f} < metrics.min_class_accuracy={min_class_accuracy} "
                f"(chance is {1 / len(self.meta['class_ids']):.3f})"
            )
        if acc["attributes_mean"] < min_attribute_accuracy:
            problems.append(
                f"mean attribute accuracy {acc['attributes_mean']:.3f} < metrics.min_attribute_accuracy="
                f"{min_attribute_accuracy} (per attribute: {acc['attributes']})"
            )
        if problems:
            raise EvaluatorTooWeakError(
                f"evaluator {self.name} is too weak to score images on held-out renders: " + "; ".join(problems)
                + ". Train it longer or on more renders (metrics.evaluator_renders_per_class, "
                "metrics.evaluator_epochs), or lower the threshold knowingly."
            )

    def save(self, folder: str | Path) -> None:
        """Write `evaluator.pt` (weights + meta) and `evaluator.json` (meta) atomically into `folder`."""
        folder = Path(folder)
        atomic_torch_save(folder / "evaluator.pt", {"state_dict": self.net.state_dict(), "meta": self.meta})
        atomic_write_json(folder / "evaluator.json", self.meta)

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> "Evaluator":
        """Read an evaluator written by `save`."""
        path = Path(folder) / "evaluator.pt"
        if not path.exists():
            raise FileNotFoundError(f"no evaluator at {path}")
        blob = load_torch_file(path, map_location=device)  # weights_only: a cached file cannot run code
        meta = blob["meta"]
        net = EvaluatorNet(
            num_classes=len(meta["class_ids"]),
            attribute_sizes=[a["num_values"] for a in meta["attributes"]],
            image_size=meta["image_size"],
            width=meta["width"],
            feature_dim=meta["feature_dim"],
        )
        net.load_state_dict(blob["state_dict"])
        return cls(net.to(device), meta)


def _heldout_split(class_index: Tensor, fraction: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Indices of a per-class stratified split: (train, held-out)."""
    train, held = [], []
    for c in class_index.unique():
        idx = (class_index == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        n_held = max(1, round(len(idx) * fraction)) if len(idx) > 1 else 0
        held.append(idx[:n_held])
        train.append(idx[n_held:])
    return torch.cat(train), torch.cat(held)


def _augment(x: Tensor, image_size: int, generator: torch.Generator) -> Tensor:
    """Random crop of CROP_FRACTION of the side, resize to image_size, random horizontal flip (per batch)."""
    side = x.shape[-1]
    crop = max(1, round(side * CROP_FRACTION))
    top, left = torch.randint(0, side - crop + 1, (2,), generator=generator).tolist()
    x = x[..., top : top + crop, left : left + crop]
    if crop != image_size:
        x = F.interpolate(x, size=(image_size,) * 2, mode="bilinear", align_corners=False, antialias=True)
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


@torch.no_grad()
def measure_accuracy(net: EvaluatorNet, images: Tensor, class_index: Tensor, attributes: Tensor,
                     infos: Sequence[AttributeInfo]) -> dict:
    """Held-out accuracy of the class head and of each attribute head, and coarse / fine means."""
    net.eval()
    x = center_crop(images, max(1, round(images.shape[-1] * CROP_FRACTION)))
    outs = [net(x[i : i + 256]) for i in range(0, len(x), 256)]
    class_pred = torch.cat([o.class_logits.argmax(1) for o in outs])
    per_attr = {}
    for a, info in enumerate(infos):
        pred = torch.cat([o.attribute_logits[a].argmax(1) for o in outs])
        per_attr[info.name] = float((pred == attributes[:, a]).float().mean())
    coarse = [per_attr[i.name] for i in infos if not i.fine]
    fine = [per_attr[i.name] for i in infos if i.fine]
    return {
        "class": float((class_pred == class_index).float().mean()),
        "attributes": per_attr,
        "attributes_mean": sum(per_attr.values()) / max(1, len(per_attr)),
        "coarse": sum(coarse) / len(coarse) if coarse else None,
        "fine": sum(fine) / len(fine) if fine else None,
    }


def train_evaluator(
    images: Tensor,
    class_ids: Tensor,
    attributes: Tensor,
    attribute_spec: Iterable[Any],
    *,
    image_size: int = 64,
    width: int = 8,
    feature_dim: int = 128,
    epochs: int = 12,
    batch_size: int = 32,
    lr: float = 2e-3,
    heldout_fraction: float = 0.2,
    seed: int = 0,
    key: str | None = None,
    extra_meta: dict | None = None,
    progress: bool = True,
    device: str | torch.device = "cpu",
) -> Evaluator:
    """Train the evaluator on real renders and measure it on a held-out part of them.

    Args:
        images:          (N, 3, L, L) uint8 renders (at the load size; cropped like the GAN's images).
        class_ids:       (N,) int64 dataset class ids (the test classes); mapped to class-head outputs.
        attributes:      (N, A) int64 attribute values, in the order of `attribute_spec`.
        attribute_spec:  per attribute (name, values, fine), see `attribute_infos`.
        image_size:      the resolution the network sees (power of two); 128+ to judge fine attributes.
        heldout_fraction: per-class fraction of renders kept out of training to measure accuracy.
        key:             cache key stored in the meta (default: a hash of the inputs' shapes and settings).
        device:          where to train (the images stay on CPU; batches move).
    Returns:
        An `Evaluator` in eval mode on CPU, with `meta["accuracy"]` measured on the held-out renders.
    """
    infos = attribute_infos(attribute_spec)
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be uint8 (N, 3, L, L), got {images.dtype} {tuple(images.shape)}")
    if attributes.shape != (len(images), len(infos)):
        raise ValueError(
            f"attributes have shape {tuple(attributes.shape)}; expected ({len(images)}, {len(infos)}) "
            f"for {len(images)} images and {len(infos)} attributes in attribute_spec"
        )
    classes = sorted(int(c) for c in class_ids.unique())
    lookup = {c: i for i, c in enumerate(classes)}
    class_index = torch.tensor([lookup[int(c)] for c in class_ids], dtype=torch.long)
    attributes = attributes.long()

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    train_idx, held_idx = _heldout_split(class_index, heldout_fraction, gen)
    net = EvaluatorNet(len(classes), [i.num_values for i in infos], image_size, width, feature_dim).to(device)
    class_index, attributes = class_index.to(device), attributes.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps_per_epoch = max(1, len(train_idx) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)

    from ganblocks.progress import progress_bar

    bar = progress_bar(total=epochs * steps_per_epoch, desc="training evaluator", leave=False, disable=not progress)
    for _ in range(epochs):
        net.train()
        order = train_idx[torch.randperm(len(train_idx), generator=gen)]
        for step in range(steps_per_epoch):
            idx = order[step * batch_size : (step + 1) * batch_size]
            x = _augment(to_unit_range(images[idx]), image_size, gen)
            out = net(x.to(device))
            idx = idx.to(device)
            loss = F.cross_entropy(out.class_logits, class_index[idx])
            for a, logits in enumerate(out.attribute_logits):
                loss = loss + F.cross_entropy(logits, attributes[idx, a])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            if step % 20 == 0:  # reading the loss syncs with the device: not every step
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()

    net = net.cpu()
    class_index, attributes = class_index.cpu(), attributes.cpu()
    accuracy = measure_accuracy(net, images[held_idx], class_index[held_idx], attributes[held_idx], infos) \
        if len(held_idx) else {"class": float("nan"), "attributes": {}, "attributes_mean": float("nan"),
                               "coarse": None, "fine": None}
    settings = dict(image_size=image_size, width=width, feature_dim=feature_dim, epochs=epochs,
                    batch_size=batch_size, lr=lr, heldout_fraction=heldout_fraction, seed=seed)
    meta = {
        "key": key or stable_hash([EVALUATOR_VERSION, settings, classes, [i.__dict__ for i in infos],
                                   list(images.shape)]),
        "version": EVALUATOR_VERSION,
        **settings,
        "class_ids": classes,
        "attributes": [dict(name=i.name, num_values=i.num_values, fine=i.fine) for i in infos],
        "accuracy": accuracy,
        "n_train": int(len(train_idx)),
        "n_heldout": int(len(held_idx)),
        **(extra_meta or {}),
    }
    return Evaluator(net.eval(), meta)


def weights_fingerprint(net: nn.Module, length: int = 8) -> str:
    """Short sha256 of a module's state_dict (names, dtypes, shapes and bytes): equal iff the weights are."""
    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:length]


def cached_evaluator(key_parts: dict, make_training_data, progress: bool = True, device: str | torch.device = "cpu",
                     **train_kwargs) -> Evaluator:
    """The evaluator cached under `cache_dir("evaluators", stable_hash(key_parts, settings))`, trained on a miss.

    Args:
        key_parts:          what identifies the training data (dataset hash, render seed, renders per class).
        make_training_data: () -> (images, class_ids, attributes, attribute_spec), called only on a miss.
        train_kwargs:       passed to `train_evaluator`; part of the cache key (`device` is not).
    """
    key = stable_hash([EVALUATOR_VERSION, key_parts, train_kwargs])
    folder = cache_dir("evaluators", key)
    if (folder / "evaluator.pt").exists():
        return Evaluator.load(folder)
    from ganblocks.progress import long_step

    with long_step("rendering the evaluator's training images (once; cached)", "rendered the evaluator's images",
                   progress=progress):
        images, class_ids, attributes, spec = make_training_data()
    with long_step("training the evaluator (once; cached)", "trained the evaluator", progress=False) as step:
        evaluator = train_evaluator(images, class_ids, attributes, spec, key=key,
                                    extra_meta={"trained_on": key_parts}, progress=progress, device=device,
                                    **train_kwargs)
        evaluator.save(folder)
        step.result = f"{folder} ({describe(evaluator)})"
    return evaluator


def describe(evaluator: Evaluator) -> str:
    """One line for logs and table captions: name, resolution, held-out accuracy."""
    acc = evaluator.accuracy
    return (f"{evaluator.name} ({evaluator.meta['image_size']}px, {len(evaluator.meta['class_ids'])} classes; "
            f"held-out class acc {acc['class']:.3f}, attribute acc {acc['attributes_mean']:.3f})")
