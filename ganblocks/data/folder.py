"""`folder`: a user's own images with a captions.jsonl beside them.

Layout: ROOT/captions.jsonl, one JSON object per line:
    {"image": "images/0001.jpg", "captions": ["a red bird ...", ...],
     "class_id": 3, "split": "train", "bbox": [x, y, w, h]}
`image` is relative to ROOT; `class_id` (0-based, default 0), `split` (default: in every split) and
`bbox` (CUB-style crop) are optional. Without a bbox the image is centre-cropped to a square.
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
    decode_image,
    embed_captions,
    files_fingerprint,
    load_size,
    resolve_text_encoder,
)
from ganblocks.io import stable_hash
from ganblocks.registry import register

FOLDER_LAYOUT = (
    '\nexpected layout (folder): ROOT/captions.jsonl with one line per image: {"image": "relative/path.jpg", '
    '"captions": ["...", ...], optional "class_id": int, "split": "train"|"test", "bbox": [x, y, w, h]}'
)


def _records(path: Path) -> list[dict]:
    if not path.is_file():
        raise DatasetError(f"missing {path}{FOLDER_LAYOUT}")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path} line {n} is not JSON ({e}){FOLDER_LAYOUT}") from None
        if not isinstance(rec, dict) or "image" not in rec or "captions" not in rec:
            raise DatasetError(f"{path} line {n} needs keys 'image' and 'captions'{FOLDER_LAYOUT}")
        caps = rec["captions"]
        if isinstance(caps, str):
            caps = rec["captions"] = [caps]
        if not caps or any(not isinstance(c, str) or not c.strip() for c in caps):
            raise DatasetError(f"{path} line {n} ({rec['image']}): empty caption in {caps!r}{FOLDER_LAYOUT}")
        out.append(rec)
    if not out:
        raise DatasetError(f"{path} lists no images{FOLDER_LAYOUT}")
    return out


@register("dataset", "folder")
def load_folder(*, split: str, imsize: int, text_encoder: Any = "bow", root: Any = None,
                n_captions: int = 10) -> TextImageDataset:
    """A folder of images with captions.jsonl (a user's own data)."""
    if root is None:
        raise DatasetError(f"dataset 'folder' needs root=FOLDER{FOLDER_LAYOUT}")
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist{FOLDER_LAYOUT}")
    records = [r for r in _records(root / "captions.jsonl") if r.get("split", split) == split]
    if not records:
        raise DatasetError(f"{root / 'captions.jsonl'} has no images of split {split!r}{FOLDER_LAYOUT}")
    files = [root / r["image"] for r in records]
    bboxes = [r.get("bbox") for r in records]
    captions = [[r["captions"][i % len(r["captions"])] for i in range(n_captions)] for r in records]
    class_ids = np.array([int(r.get("class_id", 0)) for r in records], dtype=np.int64)
    encoder = resolve_text_encoder(text_encoder, dataset="folder", root=str(root))
    embeddings = embed_captions(captions, encoder)
    dataset_hash = stable_hash(["folder", str(root.resolve()), LOADER_VERSION])
    size = load_size(imsize)
    key = stable_hash([dataset_hash, split, [str(f) for f in files], bboxes, files_fingerprint(files)], 20)
    images = cached_images(key, len(files), size,
                           lambda i: decode_image(files[i], size, bboxes[i], square=True, layout=FOLDER_LAYOUT))
    return TextImageDataset(
        name="folder", split=split, imsize=imsize, images=images, embeddings=embeddings, captions=captions,
        class_ids=torch.from_numpy(class_ids), filenames=[str(r["image"]) for r in records],
        dataset_hash=dataset_hash, num_classes=int(class_ids.max()) + 1, root=root, text_encoder=encoder,
    )
