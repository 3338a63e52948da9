"""The evaluator of a built-in dataset: trained on fresh renders of its test classes, cached by its hash.

Renders come from the dataset's renderer with a seed the dataset build never uses, so the evaluator never sees
an image the GAN trains or is compared on. One evaluator per (dataset hash, test classes, resolution, render
and training settings) is trained once and read from `cache_dir("evaluators", key)` afterwards.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from ganblocks.evaluation.evaluator import Evaluator, cached_evaluator

RENDER_SEED = 1000  # the synthbirds build seeds its images (dataset_seed, 1, i); renders use (seed, 7, i)


def dataset_renderer(dataset: Any) -> Callable[[Tensor, int, int], tuple[Tensor, Tensor]]:
    """`(class_ids, seed, size) -> (uint8 images (N, 3, size, size), attributes (N, A))` for a dataset.

    A dataset may carry its own `render` with that signature; the built-in synthbirds is rendered by
    `ganblocks.data.synthbirds.render` with the class table of the build the dataset was loaded from.
    """
    own = getattr(dataset, "render", None)
    if callable(own):
        return own
    manifest = (getattr(dataset, "meta", None) or {}).get("manifest")
    if getattr(dataset, "name", None) == "synthbirds" and manifest is not None:
        from ganblocks.data import synthbirds

        def render(class_ids: Tensor, seed: int, size: int) -> tuple[Tensor, Tensor]:
            return synthbirds.render(class_ids, seed, size, num_classes=int(manifest["num_classes"]),
                                     dataset_seed=int(manifest.get("seed", 0)))

        return render
    raise ValueError(
        f"dataset {getattr(dataset, 'name', dataset)!r} has no renderer, so no built-in evaluator can be trained "
        "for it; use Inception-v3 from a local file (metrics.inception_weights=PATH)"
    )


def evaluator_for_dataset(
    dataset: Any,
    *,
    image_size: int = 128,
    renders_per_class: int = 60,
    epochs: int = 12,
    width: int = 8,
    seed: int = RENDER_SEED,
    progress: bool = True,
) -> Evaluator:
    """The cached evaluator of `dataset`'s classes (its test split: class head over the test classes).

    Args:
        dataset:           a `TextImageDataset` with `attributes`, `attribute_spec` and a renderer.
        image_size:        the resolution the evaluator judges at (128+ to see fine attributes).
        renders_per_class: fresh renders per class (a fifth is held out to measure accuracy).
    """
    if getattr(dataset, "attributes", None) is None or getattr(dataset, "attribute_spec", None) is None:
        raise ValueError(f"dataset {getattr(dataset, 'name', dataset)!r} has no attributes: no built-in evaluator")
    render = dataset_renderer(dataset)
    classes = sorted(int(c) for c in dataset.class_ids.unique())
    load = image_size * 76 // 64
    key_parts = {"dataset_hash": dataset.dataset_hash, "classes": classes, "renders_per_class": renders_per_class,
                 "render_seed": seed, "render_size": load}

    def make_training_data():
        class_ids = torch.tensor(classes).repeat_interleave(renders_per_class)
        images, attributes = render(class_ids, seed, load)
        return images, class_ids, attributes, dataset.attribute_spec

    device = "cuda" if torch.cuda.is_available() else "cpu"
    return cached_evaluator(key_parts, make_training_data, progress=progress, device=device, image_size=image_size,
                            epochs=epochs, width=width, seed=seed)
