"""The built-in evaluator: a small CNN with a class head (the inception-score classifier) and attribute heads
(the judge), trained on held-out renders of the built-in dataset, never on the GAN's training images
(training: `ganblocks.evaluation.training`; the built-in recipe: `ganblocks.evaluation.builtin`).

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

from ganblocks.evaluation.pixels import center_crop, high_pass, to_uint8, to_unit_range  # noqa: F401 (re-exported)
from ganblocks.io import CorruptFileError, atomic_torch_save, atomic_write_json, load_torch_file

# Bump when the network or its training changes: old cache entries are then ignored.
# 2: attribute heads trained on free renders only, attention-pooled, high-pass input; bbox-framed renders.
EVALUATOR_VERSION = 2
CROP_FRACTION = 64 / 76  # the official crop of the load size, so renders look like the GAN's (cropped) images


class EvaluatorTooWeakError(RuntimeError):
    """The evaluator's held-out accuracy is below the threshold a metric needs to be meaningful."""


@dataclass(frozen=True)
class AttributeInfo:
    """One attribute the judge predicts: its name, how many values it takes, whether it is fine detail, and
    `min_size`: the smallest image side (px) it is judged on (0: any; see `Evaluator.attributes`)."""

    name: str
    num_values: int
    fine: bool
    min_size: int = 0


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


class EvaluatorNet(nn.Module):
    """Small CNN: images -> penultimate features, test-class logits, one logit vector per attribute.

    (B, 3, H, W) uint8 or [-1, 1] float, resized to `image_size` -> EvaluatorOutput with features (B, feature_dim).
    A 4x4 stride-2 stem (its window still spans two-pixel stripes and rings, the fine attributes at 128 px), then
    stride-2 3x3 convs (BatchNorm, ReLU) halve the size down to 4x4, widths doubling from `width` up to 8 * width.
    The class head reads the flattened 4x4 map (through `embed`, the FID features). Each attribute head first
    finds its part: a softmax attention map over the image_size/8 grid (that stage's features beside the 4x4
    ones, upsampled) pools the features where the part is, so the head reads that part's colour or texture
    wherever the bird stands, rather than the whole-image summary the class head uses.
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
        layers: list[nn.Module] = [nn.Conv2d(6, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
        channels, size, stage_channels = width, image_size // 2, [width]
        while size > 4:
            out = min(channels * 2, width * 8)
            layers += [nn.Conv2d(channels, out, 3, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(True)]
            channels, size = out, size // 2
            stage_channels.append(out)
        self.trunk = nn.Sequential(*layers)
        self.part_stage = min(2, len(stage_channels) - 1)  # the image_size/8 grid (16x16 at 128 px)
        part_channels = stage_channels[self.part_stage] + channels
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(channels * 16, feature_dim), nn.ReLU(True))
        self.class_head = nn.Linear(feature_dim, num_classes)
        self.attend = nn.Conv2d(part_channels, len(attribute_sizes), 1)
        self.attribute_heads = nn.ModuleList(nn.Linear(part_channels + feature_dim, n) for n in attribute_sizes)

    def _input(self, images: Tensor) -> Tensor:
        """The image at image_size and its high-pass detail (image minus its 3x3 binomial blur, x4): (B, 6, S, S).
        The detail channels carry the one- and two-pixel patterns of the fine attributes and nothing of a
        blurred image."""
        x = to_unit_range(images)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size,) * 2, mode="bilinear", align_corners=False, antialias=True)
        return high_pass(x)

    def forward(self, images: Tensor) -> EvaluatorOutput:
        x, stages = self._input(images), []
        for layer in self.trunk:
            x = layer(x)
            if isinstance(layer, nn.ReLU):
                stages.append(x)
        features = self.embed(x)
        part = stages[self.part_stage]
        grid = torch.cat([part, F.interpolate(x, size=part.shape[-2:], mode="nearest")], 1).flatten(2)  # (B, C, P)
        attention = self.attend.weight.flatten(1) @ grid + self.attend.bias[:, None]  # (B, A, P)
        pooled = attention.softmax(-1) @ grid.transpose(1, 2)  # (B, A, C)
        logits = [head(torch.cat([pooled[:, a], features], 1)) for a, head in enumerate(self.attribute_heads)]
        return EvaluatorOutput(features, self.class_head(features), logits)

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
        """The attributes with the image side each is judged from: `meta["min_size"][name]` where the recipe
        names one (synthbirds' back spots: 256 px, where they survive), else the evaluator's `image_size` for
        a fine attribute (smaller images cannot show it), else 0 (coarse: any size)."""
        declared = self.meta.get("min_size") or {}
        return [AttributeInfo(a["name"], a["num_values"], a["fine"],
                              int(declared.get(a["name"], self.meta["image_size"] if a["fine"] else 0)))
                for a in self.meta["attributes"]]

    def judged_at(self, size: int) -> list[int]:
        """Indices of the attributes judged on images of side `size` px (`min_size <= size`)."""
        return [a for a, info in enumerate(self.attributes) if info.min_size <= size]

    def judged_values(self, values: Tensor, size: int) -> Tensor:
        """Named attribute values (..., A), -1 = not named, with every attribute not judged at `size` px set to
        -1: what a text score (R-precision, the rank proxy) may compare against an image of that size."""
        unseen = [a for a, info in enumerate(self.attributes) if info.min_size > size]
        if not unseen:
            return values
        values = values.clone()
        values[..., unseen] = -1
        return values

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
                "metrics.evaluator_free_renders, metrics.evaluator_epochs), or lower the threshold knowingly."
            )

    def save(self, folder: str | Path) -> None:
        """Write `evaluator.pt` (weights + meta) and `evaluator.json` (meta) atomically into `folder`."""
        folder = Path(folder)
        atomic_torch_save(folder / "evaluator.pt", {"state_dict": self.net.state_dict(), "meta": self.meta})
        atomic_write_json(folder / "evaluator.json", self.meta)

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> "Evaluator":
        """Read an evaluator written by `save` (`folder/evaluator.pt`)."""
        path = Path(folder) / "evaluator.pt"
        if not path.exists():
            raise FileNotFoundError(f"no evaluator at {path}")
        return cls.load_file(path, device)

    @classmethod
    def load_file(cls, path: str | Path, device: str | torch.device = "cpu") -> "Evaluator":
        """Read an `evaluator.pt` (tensors and JSON-able meta only: `torch.load(weights_only=True)`).

        Raises:
            CorruptFileError (a ValueError): the file is not an evaluator (no {"state_dict", "meta"} with the
                network's settings, or weights that do not fit them), or its weights' fingerprint differs from
                the one recorded in its meta.
        """
        blob = load_torch_file(path, map_location=device)  # weights_only: a cached file cannot run code
        expected = ('expected a dict {"state_dict", "meta"} written by Evaluator.save, its meta holding class_ids, '
                    'attributes, image_size, width and feature_dim')
        meta = blob.get("meta") if isinstance(blob, dict) else None
        try:
            net = EvaluatorNet(
                num_classes=len(meta["class_ids"]),
                attribute_sizes=[a["num_values"] for a in meta["attributes"]],
                image_size=meta["image_size"],
                width=meta["width"],
                feature_dim=meta["feature_dim"],
            )
            net.load_state_dict(blob["state_dict"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            found = sorted(blob) if isinstance(blob, dict) else type(blob).__name__
            first = (str(err).strip().splitlines() or [""])[0]
            raise CorruptFileError(f"{path} is not an evaluator (it holds {found}; {type(err).__name__}: {first}); "
                             f"{expected}") from err
        recorded = meta.get("weights")
        if recorded is not None and weights_fingerprint(net) != recorded:
            raise CorruptFileError(f"{path}: its weights have fingerprint {weights_fingerprint(net)}, its meta records "
                             f"{recorded}; the file was altered after it was saved")
        return cls(net.to(device), meta)


def weights_fingerprint(net: nn.Module, length: int = 8) -> str:
    """Short sha256 of a module's state_dict (names, dtypes, shapes and bytes): equal iff the weights are."""
    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:length]


def describe(evaluator: Evaluator) -> str:
    """One line for logs and table captions: name, resolution, held-out accuracy."""
    acc = evaluator.accuracy
    return (f"{evaluator.name} ({evaluator.meta['image_size']}px, {len(evaluator.meta['class_ids'])} classes; "
            f"held-out class acc {acc['class']:.3f}, attribute acc {acc['attributes_mean']:.3f})")
