"""Loaders of the StackGAN/CUB layout family: `stackgan`, `cub` and the built-in `synthbirds`.

They share one code path, so the built-in dataset (written in the CUB layout) exercises exactly the code a
user's real CUB-200-2011 goes through.

StackGAN preprocessed layout (birds, flowers, COCO), DATA_DIR =
    {train,test}/filenames.pickle      keys '<class dir>/<name>' (Python 2 pickles: read as latin1)
    {train,test}/class_info.pickle     1-based class of each key (optional: else from CUB labels, else 0..N-1)
    {train,test}/*-embeddings.pickle   (N, 10, D) caption embeddings (for text_encoder='precomputed')
    CUB_200_2011/images/<key>.jpg + images.txt + bounding_boxes.txt   (birds: bounding-box crop)
    or images/<key>.jpg                                                (flowers, COCO: whole image)
    text_c10/<key>.txt                 10 captions, one per line (needed unless embeddings are precomputed)
Raw CUB-200-2011: CUB_200_2011/{images.txt, bounding_boxes.txt, image_class_labels.txt, images/} and
text_c10/; without {split}/filenames.pickle the split is by class (first 75% of class ids train).
"""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganblocks.data import synthbirds
from ganblocks.data.dataset import (
    LOADER_VERSION,
    DatasetError,
    TextImageDataset,
    cached_images,
    check_embeddings,
    decode_image,
    embed_captions,
    files_fingerprint,
    load_size,
    read_caption_file,
    read_text,
    resolve_text_encoder,
)
from ganblocks.data.images import DECODE_VERSION, check_bbox
from ganblocks.io import UnsafeFileError, stable_hash
from ganblocks.registry import register

STACKGAN_LAYOUT = (
    "\nexpected layout (StackGAN): DATA_DIR/{train,test}/filenames.pickle, class_info.pickle, "
    "*-embeddings.pickle (N x 10 x D); images at DATA_DIR/CUB_200_2011/images/<key>.jpg with images.txt and "
    "bounding_boxes.txt beside them, or DATA_DIR/images/<key>.jpg; captions at DATA_DIR/text_c10/<key>.txt"
)
CUB_LAYOUT = (
    "\nexpected layout (raw CUB-200-2011): ROOT/CUB_200_2011/images.txt, bounding_boxes.txt, "
    "image_class_labels.txt, images/<class dir>/<name>.jpg; captions at ROOT/text_c10/<class dir>/<name>.txt "
    "(optional ROOT/{train,test}/filenames.pickle fixes the split)"
)


# The only callables a StackGAN data pickle (lists of str/int, numpy arrays; Python 2 or 3) names. Anything
# else (os.system, a class's constructor) is refused unread: a crafted pickle must not run code, even when a
# run folder's config.yaml, not the user, chose data.root.
_DATA_PICKLE_GLOBALS = frozenset({
    *((m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("_reconstruct", "scalar")),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    *((m, n) for m in ("builtins", "__builtin__") for n in ("set", "frozenset", "bytes", "bytearray", "complex")),
})


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _DATA_PICKLE_GLOBALS:
            raise UnsafeFileError(f"it names the Python callable {module}.{name}")
        return super().find_class(module, name)


def read_pickle(path: Path, layout: str = "") -> Any:
    """Load a pickle written by Python 2 or 3 (latin1 for Python 2 str); errors name the file.

    Only lists, dicts, strings, numbers and numpy arrays are rebuilt: a pickle naming any other callable is
    refused before it is called (`UnsafeFileError`), so a crafted file cannot run code.
    """
    if not path.is_file():
        raise DatasetError(f"missing file {path}{layout}")
    try:
        with open(path, "rb") as f:
            return _DataUnpickler(f, encoding="latin1").load()
    except UnsafeFileError as e:
        raise UnsafeFileError(f"refusing to load {path}: {e}; dataset pickles (StackGAN's, AttnGAN's) hold only "
                              f"lists, dicts, strings, numbers and numpy arrays, so this one was made by something "
                              f"else or crafted, and unpickling it could run code from it{layout}") from None
    except Exception as e:  # any unpickling failure means a corrupt or foreign file
        raise DatasetError(f"corrupt pickle {path}: {type(e).__name__}: {e}{layout}") from None


def _as_str(key: Any) -> str:
    return key.decode("latin1") if isinstance(key, bytes) else str(key)


def _read_table(path: Path, layout: str, columns: int) -> list[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank line of a whitespace-separated table (UTF-8)."""
    rows = []
    for n, line in enumerate(read_text(path, layout).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) < columns:
            raise DatasetError(f"{path} line {n}: expected {columns} columns, got {line!r}{layout}")
        rows.append((n, parts))
    return rows


def _numbers(path: Path, n: int, fields: list[str], kind: type, layout: str) -> list:
    try:
        return [kind(v) for v in fields]
    except ValueError:
        what = "integer" if kind is int else "number"
        raise DatasetError(f"{path} line {n}: expected {what}s, got {' '.join(fields)!r}{layout}") from None


def _cub_index(cub: Path, layout: str) -> tuple[dict[str, Path], dict[str, list[float]], dict[str, str], dict[str, int]]:
    """key -> image path, key -> bbox (x, y, w, h), key -> where its bbox is written, key -> 1-based class
    (when labels exist). A box of zero size or a class below 1 is refused, naming the file and line."""
    ids = {r[0]: r[1] for _, r in _read_table(cub / "images.txt", layout, 2)}
    paths = {str(Path(rel).with_suffix("")): cub / "images" / rel for rel in ids.values()}
    boxes, sources = {}, {}
    for n, r in _read_table(cub / "bounding_boxes.txt", layout, 5):
        if r[0] in ids:
            key, source = str(Path(ids[r[0]]).with_suffix("")), f"{cub / 'bounding_boxes.txt'} line {n}"
            try:
                boxes[key] = check_bbox(_numbers(cub / "bounding_boxes.txt", n, r[1:5], float, layout), source)
            except ValueError as e:
                raise DatasetError(f"{e}{layout}") from None
            sources[key] = source
    labels = {}
    if (cub / "image_class_labels.txt").is_file():
        for n, r in _read_table(cub / "image_class_labels.txt", layout, 2):
            if r[0] in ids:
                (label,) = _numbers(cub / "image_class_labels.txt", n, r[1:2], int, layout)
                if label < 1:
                    raise DatasetError(f"{cub / 'image_class_labels.txt'} line {n}: class {label}; CUB classes "
                                       f"are numbered from 1{layout}")
                labels[str(Path(ids[r[0]]).with_suffix(""))] = label
    return paths, boxes, sources, labels


def _class_split(labels: dict[str, int], split: str) -> list[str]:
    classes = sorted(set(labels.values()))
    n_train = max(1, min(len(classes) - 1, round(len(classes) * synthbirds.TRAIN_FRACTION)))
    chosen = set(classes[:n_train] if split == "train" else classes[n_train:])
    return [k for k in sorted(labels) if labels[k] in chosen]


def load_cub_family(name: str, root: Path, split: str, imsize: int, text_encoder: Any, n_captions: int = 10,
                    embedding_file: str | None = None, layout: str = STACKGAN_LAYOUT,
                    dataset_hash: str | None = None, encoder_context: dict | None = None) -> TextImageDataset:
    """Load one split of a StackGAN/CUB-layout folder (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist{layout}")
    cub = root / "CUB_200_2011"
    has_cub = (cub / "images.txt").is_file()
    paths, boxes, box_sources, labels = _cub_index(cub, layout) if has_cub else ({}, {}, {}, {})

    # Which images: filenames.pickle, else a class-disjoint split of raw CUB.
    names_file = root / split / "filenames.pickle"
    if names_file.is_file() or not has_cub:
        raw = read_pickle(names_file, layout)
        if not isinstance(raw, (list, tuple)) or not raw:
            raise DatasetError(f"{names_file} must hold a non-empty list of keys, got {type(raw).__name__}{layout}")
        keys = [_as_str(k) for k in raw]
    else:
        if not labels:
            raise DatasetError(f"neither {names_file} nor {cub / 'image_class_labels.txt'} exists: cannot tell "
                               f"the {split} images{layout}")
        keys = _class_split(labels, split)
    n = len(keys)

    # Classes: class_info.pickle (1-based), else CUB labels, else one class per image.
    info_file = root / split / "class_info.pickle"
    if info_file.is_file():
        info = np.asarray(read_pickle(info_file, layout), dtype=np.int64).reshape(-1)
        if info.size != n:
            raise DatasetError(f"{info_file} has {info.size} classes for {n} filenames in {names_file}{layout}")
        if info.size and info.min() < 1:
            bad = int(np.argmin(info))
            raise DatasetError(f"{info_file} gives class {int(info[bad])} to {keys[bad]!r} (entry {bad}); "
                               f"class_info.pickle numbers classes from 1{layout}")
        class_ids = info - 1
    elif labels:
        missing = [k for k in keys if k not in labels]
        if missing:
            raise DatasetError(f"{missing[0]!r} has no class in {cub / 'image_class_labels.txt'}{layout}")
        class_ids = np.array([labels[k] - 1 for k in keys], dtype=np.int64)
    else:
        class_ids = np.arange(n, dtype=np.int64)
    num_classes = int(max(labels.values())) if labels else int(class_ids.max()) + 1

    # Image files and boxes.
    if has_cub:
        missing = [k for k in keys if k not in paths]
        if missing:
            raise DatasetError(f"key {missing[0]!r} from {names_file} is not in {cub / 'images.txt'}{layout}")
        files = [paths[k] for k in keys]
        bboxes = [boxes.get(k) for k in keys]
        bbox_sources = [box_sources.get(k, "bbox") for k in keys]
    else:
        files = []
        for k in keys:
            cands = [root / "images" / f"{k}{ext}" for ext in (".jpg", ".png", ".jpeg")]
            files.append(next((p for p in cands if p.is_file()), cands[0]))
        bboxes = [None] * n
        bbox_sources = ["bbox"] * n

    # Captions: each file's lines, in order.
    text_dir = root / "text_c10"
    caption_files = [text_dir / f"{k}.txt" for k in keys]
    captions = [read_caption_file(f, layout) for f in caption_files] if text_dir.is_dir() else None

    # Embeddings: the pickled ones (caption i of a file is embedding i), or from the encoder.
    encoder = resolve_text_encoder(text_encoder, **(encoder_context or {}))
    if getattr(encoder, "reads_dataset_embeddings", False):  # `precomputed`: no model, the pickle is the text
        emb_file = _find_embeddings(root / split, embedding_file or encoder.filename, layout)
        emb = np.asarray(read_pickle(emb_file, layout), dtype=np.float32)
        if emb.ndim == 2:
            emb = emb[:, None, :]
        if emb.ndim != 3 or emb.shape[0] != n:
            raise DatasetError(f"{emb_file} holds embeddings of shape {emb.shape} for {n} filenames in "
                               f"{names_file}; expected ({n}, n_captions, D){layout}")
        check_embeddings(emb, str(emb_file), keys, layout)
        if captions is None:
            captions = [[""] * emb.shape[1] for _ in range(n)]
        else:
            short = [i for i, caps in enumerate(captions) if len(caps) < emb.shape[1]]
            if short:
                i = short[0]
                raise DatasetError(f"{caption_files[i]} has {len(captions[i])} captions but {emb_file} holds "
                                   f"{emb.shape[1]} embeddings for {keys[i]!r}: caption j must be embedding j, so "
                                   f"each file needs at least {emb.shape[1]} lines ({len(short)} files are short)"
                                   f"{layout}")
            captions = [caps[:emb.shape[1]] for caps in captions]  # extra lines have no embedding (as AttnGAN)
        encoder.add(captions, emb)
        embeddings = torch.from_numpy(emb)
    else:
        if captions is None and encoder is not None:
            raise DatasetError(f"no captions: {text_dir} is missing, and text encoder "
                               f"{type(encoder).__name__} needs caption text{layout}")
        if captions is None:
            captions = [[""] * n_captions for _ in range(n)]
        captions = _fill_captions(captions, caption_files, n_captions)
        embeddings = embed_captions(captions, encoder, names=keys)

    dataset_hash = dataset_hash or stable_hash([name, str(root.resolve()), LOADER_VERSION])
    size = load_size(imsize)
    img_key = stable_hash([dataset_hash, split, LOADER_VERSION, DECODE_VERSION, keys, bboxes, files_fingerprint(files)], 20)
    images = cached_images(img_key, n, size, lambda i: decode_image(files[i], size, bboxes[i], layout=layout,
                                                                    bbox_source=bbox_sources[i]))
    return TextImageDataset(
        name=name, split=split, imsize=imsize, images=images, embeddings=embeddings, captions=captions,
        class_ids=torch.from_numpy(np.ascontiguousarray(class_ids)), filenames=keys, dataset_hash=dataset_hash,
        num_classes=num_classes, root=root, text_encoder=encoder,
        meta={"bboxes": bboxes, "captions_available": text_dir.is_dir()},
    )


def _fill_captions(captions: list[list[str]], files: list[Path], n_captions: int) -> list[list[str]]:
    """Exactly `n_captions` per image for a project encoder: a file with fewer lines has them repeated in order
    (each embedding is still computed from its own caption), more lines are cut; a warning counts the repairs."""
    short = [f for f, caps in zip(files, captions) if len(caps) < n_captions]
    if short:
        warnings.warn(f"{len(short)} caption files hold fewer than {n_captions} captions (first: {short[0]}); "
                      f"their captions are repeated in order to fill {n_captions}", stacklevel=3)
    return [[caps[i % len(caps)] for i in range(n_captions)] for caps in captions]


def _find_embeddings(folder: Path, filename: str | None, layout: str) -> Path:
    if filename:
        return folder / filename
    found = sorted(folder.glob("*-embeddings.pickle"))
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} ({', '.join(p.name for p in found)})"
        raise DatasetError(f"found {what} *-embeddings.pickle in {folder}; expected exactly one, or pass "
                           f"embedding_file=NAME{layout}")
    return found[0]


@register("dataset", "stackgan")
def load_stackgan(*, split: str, imsize: int, text_encoder: Any = "precomputed", root: Any = None,
                  n_captions: int = 10, embedding_file: str | None = None) -> TextImageDataset:
    """StackGAN preprocessed data (birds, flowers, COCO): filenames/class_info/*-embeddings pickles."""
    if root is None:
        raise DatasetError(f"dataset 'stackgan' needs root=DATA_DIR{STACKGAN_LAYOUT}")
    return load_cub_family("stackgan", Path(root), split, imsize, text_encoder, n_captions, embedding_file,
                           STACKGAN_LAYOUT, encoder_context={"dataset": "stackgan", "root": root})


@register("dataset", "cub")
def load_cub(*, split: str, imsize: int, text_encoder: Any = "bow", root: Any = None,
             n_captions: int = 10) -> TextImageDataset:
    """Raw CUB-200-2011 with text_c10 captions; embeddings from a project text encoder."""
    if root is None:
        raise DatasetError(f"dataset 'cub' needs root=FOLDER{CUB_LAYOUT}")
    root = Path(root)
    for need in (root / "CUB_200_2011" / "images.txt", root / "text_c10"):
        if not need.exists():
            raise DatasetError(f"missing {need}{CUB_LAYOUT}")
    return load_cub_family("cub", root, split, imsize, text_encoder, n_captions, None, CUB_LAYOUT,
                           encoder_context={"dataset": "cub", "root": root})


@register("dataset", "synthbirds")
def load_synthbirds(*, split: str, imsize: int, text_encoder: Any = "bow", root: Any = None,
                    size: str = "default", seed: int = 0, num_classes: int | None = None,
                    images_per_class: int | None = None, max_size: int | None = None) -> TextImageDataset:
    """SynthBirds-200, the built-in procedural benchmark (CUB layout, attributes, fine details)."""
    overrides = {"num_classes": num_classes, "images_per_class": images_per_class, "max_size": max_size}
    if root is None:
        root = synthbirds.ensure_built(size, seed, **overrides)
    root = Path(root)
    manifest_file = root / synthbirds.MANIFEST
    if not manifest_file.is_file():
        raise DatasetError(f"{root} is not a finished synthbirds build: {manifest_file} is missing{STACKGAN_LAYOUT}")
    manifest = synthbirds.read_manifest(root)
    context = {"dataset": "synthbirds", "root": str(root)}
    ds = load_cub_family("synthbirds", root, split, imsize, text_encoder, manifest["n_captions"], None,
                         STACKGAN_LAYOUT, dataset_hash=stable_hash(["synthbirds", manifest["hash"]]),
                         encoder_context=context)
    attr_file = root / "attributes.json"
    if not attr_file.is_file():
        raise DatasetError(f"missing {attr_file} (synthbirds attribute labels)")
    try:
        attrs = json.loads(attr_file.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"corrupt {attr_file}: {e}") from None
    table = np.asarray(attrs["class_attributes"], dtype=np.int64)
    ds.attributes = torch.from_numpy(table[ds.class_ids.numpy()])
    ds.attribute_spec = [(a, tuple(v), bool(f)) for a, v, f in attrs["spec"]]
    ds.caption_attributes = [[{int(i): int(v) for i, v in d.items()} for d in attrs["caption_attributes"][k]]
                             for k in ds.filenames]
    ds.num_classes = int(manifest["num_classes"])
    ds.meta.update(manifest=manifest, class_attributes=table)
    return ds
