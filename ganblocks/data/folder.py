"""`folder`: a user's own images with a captions.jsonl beside them.

Layout: ROOT/captions.jsonl, one JSON object per line:
    {"image": "images/0001.jpg", "captions": ["a red bird ...", ...],
     "class_id": 3, "split": "train", "bbox": [x, y, w, h]}
`image` is relative to ROOT; `class_id` (0-based, default 0), `split` (default: in every split) and
`bbox` (CUB-style crop) are optional. Without a bbox the image is centre-cropped to a square. An image with
fewer than `n_captions` captions has them repeated in order (each embedding is its own caption's).
Every record is checked when read: an unknown key, a split other than train/test, a class_id that is not an
integer >= 0, a bbox that is not four numbers with w, h > 0 (or reaches outside its image) is an error
naming captions.jsonl and the line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganblocks.data.dataset import (
    LOADER_VERSION,
    DatasetError,
    TextImageDataset,
    cached_images,
    dataset_root,
    decode_image,
    embed_captions,
    files_fingerprint,
    load_size,
    read_text,
    resolve_text_encoder,
)
from ganblocks.data.images import DECODE_VERSION, check_bbox
from ganblocks.io import stable_hash
from ganblocks.registry import register

SPLITS = ("train", "test")
FOLDER_LAYOUT = (
    '\nexpected layout (folder): ROOT/captions.jsonl with one line per image: {"image": "relative/path.jpg", '
    '"captions": ["...", ...], optional "class_id": int, "split": "train"|"test", "bbox": [x, y, w, h]}'
)


def _records(path: Path) -> list[tuple[int, dict]]:
    """(line number, record) of captions.jsonl, each checked; an error names the file, the line and the value."""
    if not path.is_file():
        raise DatasetError(f"missing {path}{FOLDER_LAYOUT}")
    out = []
    for n, line in enumerate(read_text(path, FOLDER_LAYOUT).splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path} line {n} is not JSON ({e}){FOLDER_LAYOUT}") from None
        if not isinstance(rec, dict) or "image" not in rec or "captions" not in rec:
            raise DatasetError(f"{path} line {n} needs keys 'image' and 'captions'{FOLDER_LAYOUT}")
        if not isinstance(rec["image"], str) or not rec["image"].strip():
            raise DatasetError(f"{path} line {n}: image {rec['image']!r}; expected a path relative to {path.parent}"
                               f"{FOLDER_LAYOUT}")
        where = f"{path} line {n} ({rec['image']})"
        unknown = sorted(set(rec) - {"image", "captions", "class_id", "split", "bbox"})
        if unknown:
            raise DatasetError(f"{where}: unknown keys {unknown}; accepted: image, captions, class_id, split, "
                               f"bbox{FOLDER_LAYOUT}")
        caps = rec["captions"]
        if isinstance(caps, str):
            caps = rec["captions"] = [caps]
        if not isinstance(caps, list) or not caps or any(not isinstance(c, str) for c in caps):
            raise DatasetError(f"{where}: captions {caps!r}; expected a non-empty list of strings{FOLDER_LAYOUT}")
        if any(not c.strip() for c in caps):
            raise DatasetError(f"{where}: empty caption in {caps!r}{FOLDER_LAYOUT}")
        if rec.get("split", "train") not in SPLITS:
            raise DatasetError(f"{where}: split {rec['split']!r}; expected one of {list(SPLITS)} (or no split: "
                               f"the image is then in both){FOLDER_LAYOUT}")
        class_id = rec.get("class_id", 0)
        if isinstance(class_id, bool) or not isinstance(class_id, int) or class_id < 0:
            raise DatasetError(f"{where}: class_id {class_id!r}; expected an integer >= 0 (0-based class "
                               f"index){FOLDER_LAYOUT}")
        if rec.get("bbox") is not None:
            try:
                rec["bbox"] = check_bbox(rec["bbox"], where)
            except ValueError as e:
                raise DatasetError(f"{e}{FOLDER_LAYOUT}") from None
        out.append((n, rec))
    if not out:
        raise DatasetError(f"{path} lists no images{FOLDER_LAYOUT}")
    return out


@register("dataset", "folder")
def load_folder(*, split: str, imsize: int, text_encoder: Any = "bow", root: Any = None,
                n_captions: int = 10) -> TextImageDataset:
    """A folder of images with captions.jsonl (a user's own data)."""
    root = dataset_root(root, "folder", "FOLDER", FOLDER_LAYOUT)
    listing = root / "captions.jsonl"
    numbered = [(n, r) for n, r in _records(listing) if r.get("split", split) == split]
    records = [r for _, r in numbered]
    if not records:
        raise DatasetError(f"{root / 'captions.jsonl'} has no images of split {split!r}{FOLDER_LAYOUT}")
    files = [root / r["image"] for r in records]
    bboxes = [r.get("bbox") for r in records]
    captions = [[r["captions"][i % len(r["captions"])] for i in range(n_captions)] for r in records]
    class_ids = np.array([int(r.get("class_id", 0)) for r in records], dtype=np.int64)
    encoder = resolve_text_encoder(text_encoder, dataset="folder", root=str(root))
    embeddings = embed_captions(captions, encoder, names=[str(r["image"]) for r in records])
    dataset_hash = stable_hash(["folder", str(root.resolve()), LOADER_VERSION])
    size = load_size(imsize)
    key = stable_hash([dataset_hash, split, DECODE_VERSION, [str(f) for f in files], bboxes, files_fingerprint(files)], 20)
    images = cached_images(key, len(files), size,
                           lambda i: decode_image(files[i], size, bboxes[i], square=True, layout=FOLDER_LAYOUT,
                                                  bbox_source=f"{listing} line {numbered[i][0]}"))
    return TextImageDataset(
        name="folder", split=split, imsize=imsize, images=images, embeddings=embeddings, captions=captions,
        class_ids=torch.from_numpy(class_ids), filenames=[str(r["image"]) for r in records],
        dataset_hash=dataset_hash, num_classes=int(class_ids.max()) + 1, root=root, text_encoder=encoder,
    )
