"""The one in-memory dataset record every loader returns, its caches, and `build_dataset`.

A loader (registered in the `dataset` registry) turns a layout on disk into a `TextImageDataset`: decoded,
cropped uint8 images at the official load size (cached once as a memory-mapped .npy), caption text, and
caption embeddings from a text encoder (cached once per dataset and encoder).

    >>> ds = build_dataset("synthbirds", "train", imsize=64, text_encoder="bow", size="tiny")
    >>> ds.images.shape, ds.embeddings.shape          # (N, 3, 76, 76) uint8, (N, 10, 1024) float32
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ganblocks.data.images import ImageModeError, bbox_crop, check_bbox, to_rgb
from ganblocks.io import atomic_open, cache_dir, stable_hash
from ganblocks.registry import registry

LOADER_VERSION = 1


class DatasetError(ValueError):
    """A dataset on disk is missing a file, malformed, or inconsistent; the message names the file."""


def dataset_root(root: Any, dataset: str, placeholder: str, layout: str) -> Path:
    """The folder `root` of a user's dataset as a Path.

    Raises:
        DatasetError: root is None (naming `root=<placeholder>`) or not a folder; both end with `layout`.
    """
    if root is None:
        raise DatasetError(f"dataset {dataset!r} needs root={placeholder}{layout}")
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist{layout}")
    return root


def load_size(imsize: int) -> int:
    """The official load size: images are cached at imsize * 76 / 64 and randomly cropped to imsize."""
    return imsize * 76 // 64


@dataclass
class TextImageDataset:
    """A split of a text-image dataset, held in memory (images memory-mapped).

    images:             uint8 (N, 3, L, L), L = load_size(imsize).
    embeddings:         float32 (N, n_captions, D) caption embeddings (D = 0 when no encoder was given).
    captions:           N lists of n_captions strings.
    class_ids:          int64 (N,) 0-based class index.
    filenames:          N keys as in filenames.pickle ('<class dir>/<name>', no extension).
    attributes:         int64 (N, A) per-image attribute labels (built-in dataset), else None.
    attribute_spec:     [(name, values, fine)] for `attributes`, else None.
    caption_attributes: per image, per caption, the {attribute index: value index} it names, else None.
    dataset_hash:       identifies the data (not the split or resolution); caches key on it.
    num_classes:        classes of the whole dataset (all splits).
    """

    name: str
    split: str
    imsize: int
    images: torch.Tensor
    embeddings: torch.Tensor
    captions: list[list[str]]
    class_ids: torch.Tensor
    filenames: list[str]
    dataset_hash: str
    num_classes: int
    root: Path | None = None
    attributes: torch.Tensor | None = None
    attribute_spec: list[tuple[str, tuple[str, ...], bool]] | None = None
    caption_attributes: list[list[dict[int, int]]] | None = None
    text_encoder: Any = None
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def load_size(self) -> int:
        return int(self.images.shape[-1])

    @property
    def n_captions(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def embedding_dim(self) -> int:
        return int(self.embeddings.shape[2])


# ---------------------------------------------------------------------------------------------------------
# Image decoding and the uint8 image cache
# ---------------------------------------------------------------------------------------------------------
def decode_image(path: Path, size: int, bbox: Sequence[float] | None = None, square: bool = False,
                 layout: str = "", bbox_source: str = "bbox") -> np.ndarray:
    """Decode, crop and resize one image: -> uint8 (3, size, size).

    Any image mode is first turned into its 8-bit RGB values, or refused by name (`ganblocks.data.images`:
    alpha composited over white, 16-bit grey scaled, 32-bit modes refused). With a CUB bounding box
    (x, y, w, h) the crop is the official one: a square of side 1.5 * max(w, h) around the box centre,
    clipped to the image; then a bilinear resize to size x size. Without a box the whole image is resized
    (official for flowers/COCO), or centre-cropped to a square first (`square`).

    Raises:
        DatasetError: a missing or undecodable file, a refused mode, a box of zero size or outside the image;
            the message names the file (and `bbox_source`, where the box came from).
    """
    if not path.is_file():
        raise DatasetError(f"missing image file {path}{layout}")
    try:
        with Image.open(path) as im:
            img = to_rgb(im)
    except ImageModeError as e:
        raise DatasetError(f"cannot use image {path}: {e}{layout}") from None
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise DatasetError(f"cannot decode image {path}: {e}{layout}") from None
    return crop_and_resize(img, size, bbox, square, path=path, layout=layout, bbox_source=bbox_source)


def crop_and_resize(img: Image.Image, size: int, bbox: Sequence[float] | None = None, square: bool = False, *,
                    path: Path | str = "<image>", layout: str = "", bbox_source: str = "bbox") -> np.ndarray:
    """`decode_image`'s crop and resize of a decoded RGB image: -> uint8 (3, size, size). Also frames the
    built-in evaluator's fresh renders exactly as the dataset's images are framed. `path`, `layout` and
    `bbox_source` only name the image and its box in a DatasetError."""
    width, height = img.size
    if bbox is not None:
        try:
            img = img.crop(bbox_crop(check_bbox(bbox, bbox_source), width, height, path, bbox_source))
        except ValueError as e:
            raise DatasetError(f"{e}{layout}") from None
    elif square and width != height:
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        img = img.crop((left, top, left + side, top + side))
    img = img.resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


def files_fingerprint(paths: Sequence[Path]) -> list:
    """(name, size, mtime) of each file: a cache key that changes when an image on disk changes."""
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append([str(p), st.st_size, st.st_mtime_ns])
        except FileNotFoundError:
            out.append([str(p), None, None])
    return out


def cached_images(key: str, n: int, size: int, decode: Callable[[int], np.ndarray]) -> torch.Tensor:
    """uint8 (n, 3, size, size) images, decoded once into a memory-mapped .npy keyed by `key`.

    The file is written under a temporary name and renamed when complete, so a killed decode is redone.
    """
    path = cache_dir("data", "images") / f"{key}-{size}.npy"
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, 3, size, size))
            for i in range(n):
                arr[i] = decode(i)
            arr.flush()
            del arr
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    arr = np.load(path, mmap_mode="c")
    if arr.shape != (n, 3, size, size):
        raise DatasetError(f"image cache {path} has shape {arr.shape}, expected {(n, 3, size, size)}; delete it")
    return torch.from_numpy(arr)


# ---------------------------------------------------------------------------------------------------------
# Caption embeddings and their cache
# ---------------------------------------------------------------------------------------------------------
def embed_captions(captions: list[list[str]], encoder: Any, names: Sequence[str] | None = None) -> torch.Tensor:
    """(N, n) captions -> float32 (N, n, D), computed once per (captions, encoder) and cached.

    `names` (N image names) are what an error about a non-finite or empty embedding names.
    """
    n = len(captions[0]) if captions else 0
    if encoder is None:
        return torch.zeros(len(captions), n, 0)
    key = stable_hash([encoder.cache_key(), captions], 24)
    path = cache_dir("data", "embeddings") / f"{key}.npy"
    if path.exists():
        arr = np.load(path)
    else:
        flat = [c for caps in captions for c in caps]
        out = encoder.encode(flat)
        arr = np.asarray(out.detach().cpu() if isinstance(out, torch.Tensor) else out, dtype=np.float32)
        arr = arr.reshape(len(captions), n, -1)
        check_embeddings(arr, f"text encoder {type(encoder).__name__}",
                         list(names) if names is not None else [f"captions {caps[:1]!r}..." for caps in captions])
        with atomic_open(path, "wb") as f:
            np.save(f, arr)
    return torch.from_numpy(arr)


def read_text(path: Path, layout: str = "") -> str:
    """A text file of a dataset, decoded as UTF-8 (a leading BOM dropped); errors name the file and line."""
    if not path.is_file():
        raise DatasetError(f"missing file {path}{layout}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e}{layout}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise DatasetError(f"{path} line {line} is not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start}); "
                           f"save it as UTF-8, e.g. iconv -f latin1 -t utf-8 FILE > FILE.utf8{layout}") from None


def read_caption_file(path: Path, layout: str = "") -> list[str]:
    """The captions of one image: the file's non-blank lines, stripped, in order (UTF-8, errors name the file)."""
    if not path.is_file():
        raise DatasetError(f"missing caption file {path}{layout}")
    lines = [ln.strip() for ln in read_text(path, layout).splitlines() if ln.strip()]
    if not lines:
        raise DatasetError(f"empty caption file {path}: expected one caption per line{layout}")
    return lines


def check_embeddings(emb: np.ndarray, source: str, names: Sequence[str], layout: str = "") -> None:
    """Refuse caption embeddings (N, n, D) with n = 0, D = 0 or a non-finite value, naming `source` and the image.

    A NaN row would otherwise train until the losses are NaN and the run is recorded as diverged.
    """
    if emb.ndim != 3 or emb.shape[2] == 0:
        raise DatasetError(f"{source} gives embeddings of shape {tuple(emb.shape)}: each caption needs a vector "
                           f"of at least one value, (N, n_captions, D) with D >= 1{layout}")
    if emb.shape[1] == 0:
        raise DatasetError(f"{source} gives embeddings of shape {tuple(emb.shape)}: no caption embedding per "
                           f"image, (N, n_captions, D) with n_captions >= 1{layout}")
    bad = ~np.isfinite(emb)
    if bad.any():
        i, j, _ = np.argwhere(bad)[0]
        raise DatasetError(f"{source}: embedding {j} of image {i} ({names[i]}) holds non-finite values "
                           f"({int(bad[i, j].sum())} of {emb.shape[2]} are nan or inf); {int(bad.any(axis=2).sum())} "
                           f"caption embeddings in all are affected{layout}")


# ---------------------------------------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------------------------------------
def resolve_text_encoder(text_encoder: Any, **context: Any) -> Any:
    """A text encoder instance from a registered name, a mapping {"name": NAME, **keywords} (the config's
    `data.text_encoder` and `data.text_encoder_options`; `text_encoder_spec`), an instance, or None (no
    embeddings). The loader's `context` (dataset, root) goes to the keywords the encoder's `context_keys` name.

    Raises:
        UnknownComponentError: an unregistered name; TextEncoderOptionsError: a keyword the encoder does not
            take, or a value of the wrong kind or range (`ganblocks.data.text_options`).
    """
    from ganblocks.data.text_options import check_options

    if isinstance(text_encoder, Mapping):
        options = dict(text_encoder)
        name = options.pop("name")
        check_options(name, options)
    elif isinstance(text_encoder, str):
        name, options = text_encoder, {}
    else:
        return text_encoder
    cls = registry("text_encoder").get(name, where="text_encoder")
    accepted = getattr(cls, "context_keys", ())
    return cls(**{k: v for k, v in context.items() if k in accepted}, **options)


def text_encoder_spec(name: str, options: Mapping | None) -> Any:
    """What `build_dataset` takes for encoder `name` built with `options`: the name alone when there are none."""
    return {"name": name, **options} if options else name


def build_dataset(name: str, split: str, imsize: int, text_encoder: Any = "bow", root: str | os.PathLike | None = None,
                  **kw: Any) -> TextImageDataset:
    """Load split `split` of the registered dataset `name` at `imsize`, with caption embeddings.

    Args:
        name: a `dataset` registry name (synthbirds, stackgan, cub, folder).
        split: 'train' or 'test'.
        imsize: training resolution; images are held at load_size(imsize) = imsize * 76 // 64.
        text_encoder: a `text_encoder` registry name, an encoder instance, or None (no embeddings).
        root: the dataset folder (synthbirds: None builds the built-in one into the cache).
        **kw: loader options, e.g. size='tiny', seed=0 for synthbirds.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split {split!r}: expected 'train' or 'test'")
    if not isinstance(imsize, int) or imsize < 8:
        raise ValueError(f"imsize {imsize!r}: expected an int >= 8 (64, 128, 256, ...)")
    return registry("dataset").build(name, where="data.name", split=split, imsize=imsize,
                                     text_encoder=text_encoder, root=root, **kw)
