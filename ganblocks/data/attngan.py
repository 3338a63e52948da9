"""AttnGAN's data layout (taoxugit/AttnGAN code/datasets.py), registered as the `attngan` dataset.

DATA_DIR =
    captions.pickle                 [train_captions, test_captions, ixtoword, wordtoix] (Python 2 pickle, protocol 2):
                                    caption j of image i of a split is entry i * n + j, a list of word indices
                                    1..V-1 (0 is '<end>' and never inside a caption); ixtoword {index: word},
                                    wordtoix {word: index}. Optional: without it the captions are read from text/.
    {train,test}/filenames.pickle   keys '<class dir>/<name>' (CUB) or 'COCO_train2014_000000000009' (COCO)
    {train,test}/class_info.pickle  optional: 1-based class of each key (else one class per image, as AttnGAN)
    text/<key>.txt                  the captions, one per line (AttnGAN's tokens: \\w+ runs of the lower-cased line,
                                    non-ASCII characters dropped, lines without a token skipped; the first n kept)
    birds: CUB_200_2011/images/<key>.jpg + images.txt + bounding_boxes.txt   (square crop of 1.5 x the box side)
    COCO:  images/<key>.jpg                                                   (whole image)
AttnGAN tells the two by 'birds' in DATA_DIR; here CUB_200_2011/images.txt decides. Birds have 10 captions per
image and at most 18 words (cfg/bird_attn2.yml), COCO 5 and 12 (cfg/coco_attn2.yml); with captions.pickle the
number of captions is read from it (its length / the number of filenames).

The dataset's `captions` are the caption tokens joined by spaces (what AttnGAN's encoders see); `meta` holds
`word_ids` (per image, per caption, the list of word indices), `ixtoword`, `wordtoix` and `words_num`, so the
released DAMSM text encoder (whose vocabulary is captions.pickle's) can encode them. Pickles are read with the
restricted unpickler of `ganblocks.data.loaders.read_pickle` (lists, dicts, strings, numbers, numpy arrays only).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganblocks.data.dataset import (
    LOADER_VERSION, DatasetError, TextImageDataset, cached_images, decode_image, embed_captions, files_fingerprint,
    dataset_root, load_size, read_text, resolve_text_encoder,
)
from ganblocks.data.images import DECODE_VERSION
from ganblocks.data.loaders import _as_str, _cub_index, read_pickle
from ganblocks.io import stable_hash
from ganblocks.registry import register

ATTNGAN_LAYOUT = (
    "\nexpected layout (AttnGAN): DATA_DIR/captions.pickle ([train_captions, test_captions, ixtoword, wordtoix]), "
    "DATA_DIR/{train,test}/filenames.pickle (+ optional class_info.pickle), DATA_DIR/text/<key>.txt; images at "
    "DATA_DIR/CUB_200_2011/images/<key>.jpg with images.txt and bounding_boxes.txt (birds) or DATA_DIR/images/<key>.jpg "
    "(COCO)"
)
BIRDS = {"n_captions": 10, "words_num": 18}  # cfg/bird_attn2.yml TEXT.CAPTIONS_PER_IMAGE, TEXT.WORDS_NUM
COCO = {"n_captions": 5, "words_num": 12}    # cfg/coco_attn2.yml
_WORD = re.compile(r"\w+")


def attngan_tokens(line: str) -> list[str]:
    """AttnGAN's tokens of one caption line: RegexpTokenizer(r'\\w+') on the lower-cased line, non-ASCII dropped."""
    line = line.replace("\ufffd\ufffd", " ")
    out = []
    for token in _WORD.findall(line.lower()):
        token = token.encode("ascii", "ignore").decode("ascii")
        if token:
            out.append(token)
    return out


def read_filenames(root: Path, split: str) -> list[str]:
    """The keys of {split}/filenames.pickle (a non-empty list of strings); errors name the file."""
    path = root / split / "filenames.pickle"
    raw = read_pickle(path, ATTNGAN_LAYOUT)
    if not isinstance(raw, (list, tuple)) or not raw:
        raise DatasetError(f"{path} must hold a non-empty list of keys, got {type(raw).__name__}{ATTNGAN_LAYOUT}")
    bad = next((i for i, k in enumerate(raw) if not isinstance(k, (str, bytes))), None)
    if bad is not None:
        raise DatasetError(f"{path} entry {bad} is {raw[bad]!r} ({type(raw[bad]).__name__}); keys are strings"
                           f"{ATTNGAN_LAYOUT}")
    return [_as_str(k) for k in raw]


def read_captions_pickle(path: Path, n_images: dict[str, int]) -> tuple[dict[str, list[list[int]]], dict[int, str], dict[str, int], int]:
    """captions.pickle -> ({split: flat word-index lists}, ixtoword, wordtoix, captions per image).

    Checks what AttnGAN assumes without checking: four entries, both splits a multiple of their image counts
    (`n_images`, from filenames.pickle) with the same number of captions per image, every caption a non-empty list
    of indices 1..V-1 each with a word in ixtoword. Errors name the file, the split and the record.
    """
    x = read_pickle(path, ATTNGAN_LAYOUT)
    if not isinstance(x, (list, tuple)) or len(x) < 4:
        raise DatasetError(f"{path} must hold [train_captions, test_captions, ixtoword, wordtoix], got "
                           f"{type(x).__name__} of length {len(x) if isinstance(x, (list, tuple)) else '-'}{ATTNGAN_LAYOUT}")
    if not isinstance(x[2], dict) or not isinstance(x[3], dict):
        raise DatasetError(f"{path}: ixtoword and wordtoix (entries 2 and 3) must be dicts, got "
                           f"{type(x[2]).__name__} and {type(x[3]).__name__}{ATTNGAN_LAYOUT}")
    ixtoword = {int(i): _as_str(w) for i, w in _vocabulary_items(path, x[2], 2, "ixtoword")}
    wordtoix = {_as_str(w): int(i) for w, i in _vocabulary_items(path, x[3], 3, "wordtoix")}
    splits, per_image = {}, {}
    for s, (split, entry) in enumerate(zip(("train", "test"), x[:2])):
        if not isinstance(entry, (list, tuple)):
            raise DatasetError(f"{path}: {split}_captions (entry {s}) must be a list, got {type(entry).__name__}"
                               f"{ATTNGAN_LAYOUT}")
        n = n_images[split]
        if len(entry) == 0 or len(entry) % n:
            raise DatasetError(f"{path}: {split}_captions holds {len(entry)} captions for the {n} images of "
                               f"{split}/filenames.pickle; caption j of image i is entry i * n + j, so it needs a "
                               f"multiple of {n}{ATTNGAN_LAYOUT}")
        per_image[split] = len(entry) // n
        for r, caption in enumerate(entry):
            ids = np.asarray(caption).reshape(-1) if isinstance(caption, (list, tuple, np.ndarray)) else None
            where = f"{path}: {split}_captions record {r} (image {r // per_image[split]}, caption {r % per_image[split]})"
            if ids is None or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
                raise DatasetError(f"{where} is {caption!r}; expected a non-empty list of word indices{ATTNGAN_LAYOUT}")
            unknown = [int(i) for i in ids if int(i) not in ixtoword or int(i) == 0]
            if unknown:
                raise DatasetError(f"{where} holds word index {unknown[0]}, which is "
                                   f"{'<end> (0), never inside a caption' if unknown[0] == 0 else 'not in ixtoword'}; "
                                   f"indices run 1..{len(ixtoword) - 1}{ATTNGAN_LAYOUT}")
        splits[split] = [[int(i) for i in np.asarray(c).reshape(-1)] for c in entry]
    if per_image["train"] != per_image["test"]:
        raise DatasetError(f"{path}: {per_image['train']} captions per train image but {per_image['test']} per test "
                           f"image; AttnGAN uses one count (TEXT.CAPTIONS_PER_IMAGE){ATTNGAN_LAYOUT}")
    return splits, ixtoword, wordtoix, per_image["train"]


def _vocabulary_items(path: Path, table: dict, entry: int, name: str) -> list[tuple[Any, Any]]:
    """The items of ixtoword (int -> word) or wordtoix (word -> int); a wrong-typed pair names the file and entry."""
    def is_index(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)
    index_first = name == "ixtoword"
    for k, v in table.items():
        index, word = (k, v) if index_first else (v, k)
        if not is_index(index) or not isinstance(word, (str, bytes)):
            raise DatasetError(f"{path}: {name} (entry {entry}) maps {k!r} ({type(k).__name__}) to {v!r} "
                               f"({type(v).__name__}); expected "
                               f"{'integer index -> word' if index_first else 'word -> integer index'}{ATTNGAN_LAYOUT}")
    return list(table.items())


def read_text_captions(root: Path, keys: list[str], n_captions: int) -> list[list[list[str]]]:
    """Per image, the token lists of the first `n_captions` captions of text/<key>.txt; fewer is an error."""
    out = []
    for key in keys:
        path = root / "text" / f"{key}.txt"
        if not path.is_file():
            raise DatasetError(f"missing caption file {path}{ATTNGAN_LAYOUT}")
        caps = [t for t in (attngan_tokens(line) for line in read_text(path, ATTNGAN_LAYOUT).split("\n")) if t]
        if len(caps) < n_captions:
            raise DatasetError(f"{path} has {len(caps)} captions with words; AttnGAN pairs caption j of image i with "
                               f"entry i * {n_captions} + j, so every file needs {n_captions}{ATTNGAN_LAYOUT}")
        out.append(caps[:n_captions])
    return out


def build_vocabulary(captions: list[list[str]]) -> tuple[dict[int, str], dict[str, int]]:
    """AttnGAN's build_dictionary: '<end>' is 0, then every word in order of first appearance (train, then test)."""
    wordtoix = {"<end>": 0}
    for tokens in captions:
        for w in tokens:
            wordtoix.setdefault(w, len(wordtoix))
    return {i: w for w, i in wordtoix.items()}, wordtoix


def _class_ids(root: Path, split: str, keys: list[str]) -> np.ndarray:
    path = root / split / "class_info.pickle"
    if not path.is_file():
        return np.arange(len(keys), dtype=np.int64)  # AttnGAN: one class per image (COCO)
    info = np.asarray(read_pickle(path, ATTNGAN_LAYOUT)).reshape(-1)
    if info.size != len(keys) or not np.issubdtype(info.dtype, np.integer):
        raise DatasetError(f"{path} holds {info.size} values of type {info.dtype} for the {len(keys)} keys of "
                           f"{root / split / 'filenames.pickle'}; expected one integer class per key{ATTNGAN_LAYOUT}")
    if info.min() < 1:
        bad = int(np.argmin(info))
        raise DatasetError(f"{path} gives class {int(info[bad])} to {keys[bad]!r} (entry {bad}); class_info.pickle "
                           f"numbers classes from 1{ATTNGAN_LAYOUT}")
    return info.astype(np.int64) - 1


@register("dataset", "attngan")
def load_attngan(*, split: str, imsize: int, text_encoder: Any = "bow", root: Any = None,
                 n_captions: int | None = None, words_num: int | None = None) -> TextImageDataset:
    """AttnGAN's layout (birds or COCO): captions.pickle word indices, filenames.pickle, text/, CUB boxes."""
    root = dataset_root(root, "attngan", "DATA_DIR", ATTNGAN_LAYOUT)
    cub = root / "CUB_200_2011"
    birds = (cub / "images.txt").is_file()
    defaults = BIRDS if birds else COCO
    words_num = int(words_num or defaults["words_num"])
    names = {s: read_filenames(root, s) for s in ("train", "test")}
    keys = names[split]
    n = len(keys)

    # Captions: captions.pickle when present (as AttnGAN), else the text files and AttnGAN's vocabulary.
    pickle_file = root / "captions.pickle"
    if pickle_file.is_file():
        flat, ixtoword, wordtoix, per_image = read_captions_pickle(pickle_file, {s: len(k) for s, k in names.items()})
        if n_captions is not None and int(n_captions) != per_image:
            raise DatasetError(f"n_captions={n_captions} but {pickle_file} holds {per_image} captions per image"
                               f"{ATTNGAN_LAYOUT}")
        word_ids = [flat[split][i * per_image:(i + 1) * per_image] for i in range(n)]
    else:
        per_image = int(n_captions or defaults["n_captions"])
        tokens = {s: read_text_captions(root, k, per_image) for s, k in names.items()}
        ixtoword, wordtoix = build_vocabulary([c for s in ("train", "test") for caps in tokens[s] for c in caps])
        word_ids = [[[wordtoix[w] for w in c] for c in caps] for caps in tokens[split]]
    captions = [[" ".join(ixtoword[i] for i in c) for c in caps] for caps in word_ids]

    # Classes, images and boxes.
    class_ids = _class_ids(root, split, keys)
    if birds:
        paths, boxes, box_sources, _ = _cub_index(cub, ATTNGAN_LAYOUT)
        missing = [k for k in keys if k not in paths]
        if missing:
            raise DatasetError(f"key {missing[0]!r} from {root / split / 'filenames.pickle'} is not in "
                               f"{cub / 'images.txt'} ({len(missing)} keys are missing){ATTNGAN_LAYOUT}")
        files, bboxes = [paths[k] for k in keys], [boxes.get(k) for k in keys]
        sources = [box_sources.get(k, "bbox") for k in keys]
    else:
        files, bboxes, sources = [root / "images" / f"{k}.jpg" for k in keys], [None] * n, ["bbox"] * n

    encoder = resolve_text_encoder(text_encoder, dataset="attngan", root=str(root))
    if getattr(encoder, "reads_dataset_embeddings", False):  # `precomputed`
        raise DatasetError(f"text encoder 'precomputed' reads *-embeddings.pickle, which AttnGAN's layout does not have "
                           f"({root}); use a project text encoder (data.text_encoder=bow, rnn, damsm){ATTNGAN_LAYOUT}")
    embeddings = embed_captions(captions, encoder, names=keys)
    dataset_hash = stable_hash(["attngan", str(root.resolve()), LOADER_VERSION])
    size = load_size(imsize)
    img_key = stable_hash([dataset_hash, split, LOADER_VERSION, DECODE_VERSION, keys, bboxes, files_fingerprint(files)], 20)
    images = cached_images(img_key, n, size, lambda i: decode_image(files[i], size, bboxes[i], layout=ATTNGAN_LAYOUT,
                                                                    bbox_source=sources[i]))
    num_classes = int(max(_class_ids(root, s, names[s]).max() for s in ("train", "test"))) + 1
    return TextImageDataset(
        name="attngan", split=split, imsize=imsize, images=images, embeddings=embeddings, captions=captions,
        class_ids=torch.from_numpy(np.ascontiguousarray(class_ids)), filenames=keys, dataset_hash=dataset_hash,
        num_classes=num_classes, root=root, text_encoder=encoder,
        meta={"bboxes": bboxes, "captions_available": True, "word_ids": word_ids, "ixtoword": ixtoword,
              "wordtoix": wordtoix, "words_num": words_num,
              "vocabulary_source": str(pickle_file if pickle_file.is_file() else root / "text")},
    )
