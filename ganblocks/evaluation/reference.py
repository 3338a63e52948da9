"""The `real` row: real test images scored through the same protocol as generated ones, and each metric's chance.

A reader cannot tell whether IS 6.0 or FID 1274 is good without the value real images get under the same
evaluator, resolution and sample count. `real_reference` splits the real images of the evaluation split in two
halves: half A plays the generated set (each image with one of its own captions, up to `n_samples` images),
half B the real set (up to `n_real`). So IS, R-precision, attribute accuracy and pixelation are those of real
images, FID and KID are one real half against the other, and diversity is the spread of real images within a
class (real images have one image per caption, so the class is their group, as the caption is the group of
generated images). Results are cached per evaluator (its name carries a fingerprint of its weights), dataset
hash, split, resolution and settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch

from ganblocks.evaluation.samples import EvalSamples, MetricRefused
from ganblocks.evaluation.sampling import caption_pool, evaluation_captions
from ganblocks.io import atomic_write_json, cache_dir, stable_hash

VERSION = 5  # bump when the real row's protocol changes: old cache entries are then ignored
#           2: attributes leave fine ones out below the judge's input size (attr_all of 64 px real halves)
#           3: each attribute judged from its own min_size (back spots from 256 px); the detail reader
#           4: R-precision scores a caption only on the attributes judged at the images' size
#           5: `size`, which no image shows, is judged at no size (synthbirds.MIN_SIZE)
MetricFn = Callable[[str], Callable[[EvalSamples], dict[str, dict]]]  # metric name -> built metric


def real_halves(images: torch.Tensor, dataset: Any, n_samples: int, n_real: int | None, seed: int,
                **protocol: Any) -> EvalSamples:
    """Real images (N, 3, S, S) of `dataset` split into a 'generated' half A with own captions and a real half B.

    `protocol` passes the remaining `EvalSamples` fields (evaluator, inception_weights, real_split, resize, ...).
    """
    n = len(images)
    if n < 2:
        raise MetricRefused(f"the real row needs at least 2 real images, the split has {n}")
    captions = evaluation_captions(dataset, n, seed)  # every image once, in a random order
    half = min(int(n_samples), n // 2)
    a, b = captions.image_index[:half], captions.image_index[half:]
    if n_real is not None:
        b = b[: int(n_real)]
    has_judge = captions.values is not None
    pool_values, pool_images = caption_pool(dataset) if has_judge else (None, None)
    return EvalSamples(
        fake=images[a].contiguous(), fake_caption_ids=dataset.class_ids[a], fake_class_ids=dataset.class_ids[a],
        fake_values=captions.values[:half] if has_judge else None, fake_image_ids=a,
        real=images[b].contiguous(), real_class_ids=dataset.class_ids[b], pool_values=pool_values,
        pool_image_ids=pool_images, seed=seed, fake_texts=captions.texts[:half], dataset=dataset, **protocol)


def real_reference(samples: EvalSamples, names: list[str], metric: MetricFn, key_parts: list,
                   skip: set[str] = frozenset()) -> dict[str, Any]:
    """Every metric of `names` on the real halves `samples`, cached by `key_parts` + the protocol.

    Returns {"metrics": {result name: record}, "refused": {metric name: message}}.
    """
    classifier = None
    if samples.is_classifier:
        from ganblocks.evaluation.classifier import file_fingerprint

        classifier = file_fingerprint(Path(samples.is_classifier).expanduser())
    key = stable_hash(["real-reference", VERSION, samples.evaluator_label(), classifier, names, *key_parts,
                       len(samples.fake), len(samples.real)])
    path = cache_dir("real_reference") / f"{key}.json"
    if path.is_file():
        return json.loads(path.read_text())
    out: dict[str, Any] = {"metrics": {}, "refused": {}}
    for name in names:
        if name in skip:
            continue
        try:
            out["metrics"].update(metric(name)(samples))
        except MetricRefused as err:
            out["refused"][name] = str(err)
    for rec in out["metrics"].values():
        rec["reference"] = "real: half of the real images against the other half, own captions"
    atomic_write_json(path, out)
    return out
