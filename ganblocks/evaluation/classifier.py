"""A user-supplied classifier for the inception score (`metrics.is_classifier=PATH`), the papers' protocol hook.

The StackGAN papers scored CUB and Oxford-102 with an Inception-v3 fine-tuned on the dataset's classes; a
PyTorch port of such a network is what this hook takes. The file is either

- a TorchScript module (`torch.jit.save`): called on float images in [-1, 1] of size `size` x `size`, it
  returns raw logits (B, C); or
- a state dict (`torch.save(model.state_dict())`, read with `weights_only=True`, never unpickling code) of
  torchvision's Inception-v3 (`torchvision.models.inception_v3`): the class count comes from `fc.weight`.

Its logits feed torch-fidelity's inception score through a registered feature extractor named after a
fingerprint of the file's bytes, so another file at the same path is another classifier. Nothing downloads.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ganblocks.evaluation.evaluator import to_unit_range

SETTING = "metrics.is_classifier"
LOGITS = "logits"
_BOUND: dict[str, nn.Module] = {}  # extractor name -> the classifier its instances wrap


def file_fingerprint(path: Path, length: int = 12) -> str:
    """sha256 of a file's bytes, first `length` hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def _inception_from_state_dict(state: dict[str, Any], where: str) -> nn.Module:
    from torchvision.models import inception_v3

    if "fc.weight" not in state:
        raise ValueError(f"{where}: a state dict without 'fc.weight' is not torchvision's Inception-v3; supply "
                         "a TorchScript module (torch.jit.save) or an Inception-v3 state dict")
    net = inception_v3(weights=None, aux_logits=any(k.startswith("AuxLogits.") for k in state),
                       init_weights=False, num_classes=int(state["fc.weight"].shape[0]))
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{where}: not a torchvision Inception-v3 state dict ({str(err).splitlines()[0]})") from err
    return net


def load_is_classifier(path: str | Path) -> nn.Module:
    """The classifier in `path` (TorchScript, or an Inception-v3 state dict read with weights_only=True), in eval mode.

    Raises:
        FileNotFoundError: `path` is not a file (the message names metrics.is_classifier).
        ValueError: the file is neither a TorchScript module nor an Inception-v3 state dict.
    """
    path = Path(path).expanduser()
    where = f"{SETTING}={str(path)!r}"
    if not path.is_file():
        raise FileNotFoundError(f"{where}: no such file. Supply the classifier the IS is computed with: a "
                                "TorchScript module or a torchvision Inception-v3 state dict (see docs/evaluation.md)")
    try:
        net = torch.jit.load(str(path), map_location="cpu")
    except RuntimeError:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unreadable file gets the same clear message
            raise ValueError(f"{where}: neither a TorchScript module nor a state dict readable with "
                             f"weights_only=True ({type(err).__name__}: {err})") from err
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
            raise ValueError(f"{where}: holds a {type(state).__name__}, not a state dict of tensors")
        net = _inception_from_state_dict(state, where)
    return net.eval()


class ClassifierLogits(nn.Module):
    """uint8 (B, 3, H, W) -> resized to `size`, scaled to [-1, 1] -> the classifier's raw logits (B, C)."""

    def __init__(self, net: nn.Module, size: int) -> None:
        super().__init__()
        self.net, self.size = net, int(size)

    def forward(self, images: Tensor) -> Tensor:
        x = to_unit_range(images)
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size,) * 2, mode="bilinear", align_corners=False, antialias=True)
        out = self.net(x)
        logits = out.logits if hasattr(out, "logits") else out[0] if isinstance(out, (tuple, list)) else out
        if not isinstance(logits, Tensor) or logits.dim() != 2:
            raise ValueError(f"{SETTING}: the classifier must return logits (B, C), returned {type(out).__name__}"
                             + (f" of shape {tuple(logits.shape)}" if isinstance(logits, Tensor) else ""))
        return logits


def _extractor_class():
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase

    class ClassifierFeatureExtractor(FeatureExtractorBase):
        """torch-fidelity view of a user classifier: uint8 (B, 3, H, W) -> (logits (B, C),), for IS only."""

        def __init__(self, name: str, features_list: list[str], **kwargs: Any) -> None:
            super().__init__(name, features_list)
            self.net = _BOUND[name]

        @staticmethod
        def get_provided_features_list() -> tuple[str, ...]:
            return (LOGITS,)

        @staticmethod
        def get_default_feature_layer_for_metric(metric: str) -> str:
            if metric != "isc":
                raise ValueError(f"{SETTING} is used for the inception score only, not {metric}")
            return LOGITS

        @staticmethod
        def can_be_compiled() -> bool:
            return False

        @staticmethod
        def get_dummy_input_for_compile() -> Tensor:
            return torch.zeros(1, 3, 64, 64, dtype=torch.uint8)

        def forward(self, images: Tensor) -> tuple[Tensor, ...]:
            with torch.no_grad():
                return (self.net(images).double(),)

    return ClassifierFeatureExtractor


def register_is_classifier(path: str | Path, size: int = 299) -> tuple[dict, str]:
    """Load the classifier in `path`, register it with torch-fidelity; returns (extractor keywords, label).

    The label (recorded with the IS) names the file and its fingerprint: `path (sha256 abc..., 299 px)`.
    """
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    path = Path(path).expanduser()
    net = load_is_classifier(path)
    fingerprint = file_fingerprint(path)
    name = f"ganblocks-is-classifier-{fingerprint}-s{int(size)}"
    _BOUND[name] = ClassifierLogits(net, size)
    if name not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(name, _extractor_class())
    return {"feature_extractor": name}, f"{path} (sha256 {fingerprint}, {int(size)} px)"
