"""torch-fidelity glue: the evaluator as a registered feature extractor, Inception from a local file, one call.

The evaluator is registered under its own name (`ganblocks-evaluator-<recipe>-w<weights>`): layer `logits` (raw class logits)
feeds the inception score, layer `features` (penultimate) feeds FID and KID. For real datasets, torch-fidelity's
Inception-v3 is used with weights from a local file only (`metrics.inception_weights=PATH`); nothing downloads.
Images are always given as a Dataset of uint8 tensors, never as a generator (torch-fidelity 0.4.0's
class-conditional generator path crashes on `np.int`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ganblocks.evaluation.evaluator import Evaluator
from ganblocks.io import cache_dir, honour_umask, stable_hash

INCEPTION_NAME = "inception-v3-compat"
FEATURES, LOGITS = "features", "logits"
_BOUND: dict[str, Evaluator] = {}  # extractor name -> the evaluator its instances wrap


class UInt8Images(Dataset):
    """A Dataset view of a uint8 image tensor (N, 3, H, W), the input form torch-fidelity expects."""

    def __init__(self, images: Tensor) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected uint8 images (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Tensor:
        return self.images[i]


def _extractor_class():
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase

    class EvaluatorFeatureExtractor(FeatureExtractorBase):
        """torch-fidelity view of a ganblocks Evaluator: uint8 (B, 3, H, W) -> (features (B, F), logits (B, C))."""

        def __init__(self, name: str, features_list: list[str], **kwargs: Any) -> None:
            super().__init__(name, features_list)
            self.net = _BOUND[name].net

        @staticmethod
        def get_provided_features_list() -> tuple[str, ...]:
            return (FEATURES, LOGITS)

        @staticmethod
        def get_default_feature_layer_for_metric(metric: str) -> str:
            return LOGITS if metric == "isc" else FEATURES

        @staticmethod
        def can_be_compiled() -> bool:
            return False

        @staticmethod
        def get_dummy_input_for_compile() -> Tensor:
            return torch.zeros(1, 3, 64, 64, dtype=torch.uint8)

        def forward(self, images: Tensor) -> tuple[Tensor, ...]:
            out = self.net(images)
            layers = {FEATURES: out.features, LOGITS: out.class_logits}
            return tuple(layers[f].double() for f in self.features_list)

    return EvaluatorFeatureExtractor


def register_evaluator(evaluator: Evaluator) -> str:
    """Register `evaluator` with torch-fidelity (once per name) and return the extractor name to pass it."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    name = evaluator.name
    _BOUND[name] = evaluator
    if name not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(name, _extractor_class())
    return name


def inception_kwargs(weights_path: str | Path | None) -> dict:
    """torch-fidelity keywords for its Inception-v3 with weights read from a local file (never downloaded).

    Raises:
        FileNotFoundError: the setting is unset or names a missing file.
    """
    if not weights_path:
        raise FileNotFoundError(
            "this dataset has no built-in evaluator, so IS/FID/KID need Inception-v3 weights from a local file: "
            "set metrics.inception_weights=PATH (torch-fidelity's weights-inception-2015-12-05-6726825d.pth); "
            "ganblocks never downloads weights at run time"
        )
    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"metrics.inception_weights={str(weights_path)!r}: no such file. Point it at a local copy of "
            "torch-fidelity's Inception-v3 weights (weights-inception-2015-12-05-6726825d.pth); "
            "ganblocks never downloads weights at run time"
        )
    return {"feature_extractor": INCEPTION_NAME, "feature_extractor_weights_path": str(path)}


def fidelity_metrics(
    fake: Tensor,
    real: Tensor | None = None,
    *,
    extractor: dict,
    isc: bool = False,
    fid: bool = False,
    kid: bool = False,
    isc_splits: int = 10,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    real_cache_name: str | None = None,
    seed: int = 2020,
    batch_size: int = 64,
) -> dict[str, float]:
    """One torch-fidelity call on uint8 tensors; returns its dict (inception_score_mean, frechet_..., ...).

    Args:
        fake:            (N, 3, S, S) uint8 generated images (input1).
        real:            (M, 3, S, S) uint8 real images (input2), needed for FID and KID.
        extractor:       torch-fidelity keywords naming the feature extractor (`register_evaluator` name as
                         {"feature_extractor": name}, or `inception_kwargs(path)`).
        real_cache_name: when given, real features and statistics are cached under it (in the ganblocks cache
                         folder); it must cover dataset, split, resolution, extractor and sample count.
    """
    import torch_fidelity

    name = extractor.get("feature_extractor")
    on_cuda = _BOUND[name].device.type == "cuda" if name in _BOUND else torch.cuda.is_available()
    kwargs: dict[str, Any] = dict(
        input1=UInt8Images(fake),
        isc=isc, fid=fid, kid=kid,
        isc_splits=isc_splits, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size,
        batch_size=batch_size, rng_seed=seed, verbose=False, save_cpu_ram=True,
        cuda=on_cuda,
        cache_root=str(cache_dir("fidelity")), cache=real_cache_name is not None,
        **extractor,
    )
    if real is not None:
        kwargs["input2"] = UInt8Images(real)
        if real_cache_name is not None:
            kwargs["input2_cache_name"] = real_cache_name
    elif fid or kid:
        raise ValueError("FID and KID need real images (real=None was given)")
    out = torch_fidelity.calculate_metrics(**kwargs)
    if real_cache_name is not None:  # torch-fidelity writes its cache through tempfile: 0600
        for path in Path(kwargs["cache_root"]).glob(f"{real_cache_name}-*"):
            honour_umask(path)
    return out


def real_cache_name(dataset_hash: str, split: str, resolution: int, extractor: dict, n_samples: int,
                    content: str | None = None) -> str:
    """The cache name of real-image features: covers dataset, split, resolution, extractor and sample count,
    and content: `content` is a fingerprint of the real images' bytes (`tensor_fingerprint`), and the
    extractor is named by its weights' bytes (`extractor_fingerprint`), never by a path alone, so images or
    weights replaced at the same path get fresh statistics."""
    return "real-" + stable_hash([dataset_hash, split, resolution, extractor_fingerprint(extractor), n_samples,
                                  content])


def tensor_fingerprint(images: Tensor) -> str:
    """sha256 (first 16 hex) of a tensor's dtype, shape and bytes: equal iff the images are."""
    digest = hashlib.sha256(f"{images.dtype}:{tuple(images.shape)}".encode())
    digest.update(images.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def extractor_fingerprint(extractor: dict) -> dict:
    """torch-fidelity extractor keywords with a weights file replaced by the sha256 of its bytes.

    The built-in evaluator's extractor name already carries the fingerprint of its weights.
    """
    out = dict(extractor)
    path = out.pop("feature_extractor_weights_path", None)
    if path is not None:
        from ganblocks.evaluation.artifacts import file_sha256

        out["feature_extractor_weights_sha256"] = file_sha256(path)
    return out
