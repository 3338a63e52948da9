"""Building SynthBirds on disk, in the StackGAN CUB layout (images, boxes, captions, pickles, manifest),
atomically and once per configuration in the cache.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ganblocks.data.synthbirds.attributes import SPEC, class_attributes
from ganblocks.data.synthbirds.captions import make_caption
from ganblocks.data.synthbirds.drawing import render_one
from ganblocks.io import atomic_write_json, cache_dir, honour_umask, stable_hash
from ganblocks.progress import Step, long_step, report_done

GENERATOR_VERSION = "synthbirds-1"
MANIFEST = "manifest.json"
PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"num_classes": 20, "images_per_class": 8, "max_size": 128},
    "small": {"num_classes": 200, "images_per_class": 15, "max_size": 256},
    "default": {"num_classes": 200, "images_per_class": 60, "max_size": 256},
}
TRAIN_FRACTION = 0.75  # 150 / 50 of 200 classes, as CUB
N_CAPTIONS = 10


def resolve_config(size: str = "default", seed: int = 0, num_classes: int | None = None,
                   images_per_class: int | None = None, max_size: int | None = None) -> dict:
    """The full build configuration of a preset with overrides; what the cache folder is keyed by."""
    if size not in PRESETS:
        raise ValueError(f"unknown synthbirds size {size!r}; sizes: {', '.join(PRESETS)}")
    cfg = dict(PRESETS[size])
    for key, value in (("num_classes", num_classes), ("images_per_class", images_per_class), ("max_size", max_size)):
        if value is not None:
            cfg[key] = int(value)
    if cfg["num_classes"] < 2 or cfg["images_per_class"] < 1 or cfg["max_size"] < 32:
        raise ValueError(f"synthbirds config {cfg}: needs num_classes >= 2, images_per_class >= 1, max_size >= 32")
    cfg.update(size=size, seed=int(seed), version=GENERATOR_VERSION, n_captions=N_CAPTIONS)
    return cfg


def class_dir(c: int) -> str:
    """Folder name of class c (0-based), CUB style: '001.Synthbird_001'."""
    return f"{c + 1:03d}.Synthbird_{c + 1:03d}"


def _write_pickle(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _workers(workers: int | None, n_images: int) -> int:
    if workers is not None:
        return max(1, int(workers))
    return 1 if n_images < 400 else max(1, min(4, os.cpu_count() or 1))


def _render_chunk(task: tuple) -> list[tuple[float, float, float, float]]:
    """Render and save a chunk of images (a worker's unit); returns their bounding boxes in order."""
    folder, items, seed, size = task
    boxes = []
    for image_id, key, attrs in items:
        img, box = render_one(attrs, (seed, 1, image_id), size)
        Image.fromarray(img).save(folder / f"{key}.png", compress_level=1)
        boxes.append(box)
    return boxes


def _counted(boxes: list, step: Step) -> list:
    step.update(len(boxes))  # one box per image of the chunk
    return boxes


def build(root: str | os.PathLike, size: str = "default", seed: int = 0, workers: int | None = None,
          **overrides: int | None) -> Path:
    """Render the dataset into `root` (which must not exist yet), atomically; returns `root`.

    Built in a temporary sibling folder, the manifest written last, then renamed onto `root`: an
    interrupted build never looks finished. Layout (StackGAN CUB):
        CUB_200_2011/images/<class dir>/<name>.png, images.txt, bounding_boxes.txt,
        image_class_labels.txt, classes.txt; {train,test}/filenames.pickle, class_info.pickle;
        text_c10/<class dir>/<name>.txt (10 captions); attributes.json; manifest.json.
    `workers` processes render in parallel (default: 1 below 400 images, else up to 4); the bytes written
    do not depend on it.
    """
    cfg = resolve_config(size, seed, **overrides)
    root = Path(root)
    if (root / MANIFEST).exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.building-", dir=root.parent))
    honour_umask(tmp)  # mkdtemp makes 0700; the built folder is renamed onto `root`, often a shared cache
    try:
        start = time.perf_counter()
        table = class_attributes(cfg["num_classes"], seed)
        n_train = max(1, min(cfg["num_classes"] - 1, round(cfg["num_classes"] * TRAIN_FRACTION)))
        cub = tmp / "CUB_200_2011"
        images_txt, bbox_txt, labels_txt, per_split = [], [], [], {"train": ([], []), "test": ([], [])}
        caption_attrs: dict[str, list[dict[str, int]]] = {}
        jobs = []  # (image id, key, class) in file order
        for c in range(cfg["num_classes"]):
            (cub / "images" / class_dir(c)).mkdir(parents=True, exist_ok=True)
            (tmp / "text_c10" / class_dir(c)).mkdir(parents=True, exist_ok=True)
            for k in range(cfg["images_per_class"]):
                jobs.append((len(jobs) + 1, f"{class_dir(c)}/Synthbird_{c + 1:03d}_{k + 1:04d}", c))
        n_workers = _workers(workers, len(jobs))
        tasks = [(cub / "images", [(i, key, table[c].tolist()) for i, key, c in jobs[lo:lo + 64]], seed,
                  cfg["max_size"]) for lo in range(0, len(jobs), 64)]
        with long_step(f"rendering SynthBirds-200 {size} ({len(jobs):,} images)",
                       f"rendered SynthBirds-200 {size} ({len(jobs):,} images)", total=len(jobs), unit="img") as step:
            if n_workers > 1:
                ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
                with ctx.Pool(n_workers) as pool:
                    chunks = [_counted(chunk, step) for chunk in pool.imap(_render_chunk, tasks)]
            else:
                chunks = [_counted(_render_chunk(t), step) for t in tasks]
        boxes = [b for chunk in chunks for b in chunk]
        for (image_id, key, c), (x, y, w, h) in zip(jobs, boxes):
            images_txt.append(f"{image_id} {key}.png")
            bbox_txt.append(f"{image_id} {x:.1f} {y:.1f} {w:.1f} {h:.1f}")
            labels_txt.append(f"{image_id} {c + 1}")
            rng = np.random.default_rng([seed, 2, image_id])
            caps = [make_caption(table[c], rng) for _ in range(N_CAPTIONS)]
            (tmp / "text_c10" / f"{key}.txt").write_text("\n".join(t for t, _ in caps) + "\n")
            caption_attrs[key] = [{str(i): v for i, v in named.items()} for _, named in caps]
            split = "train" if c < n_train else "test"
            per_split[split][0].append(key)
            per_split[split][1].append(c + 1)
        (cub / "images.txt").write_text("\n".join(images_txt) + "\n")
        (cub / "bounding_boxes.txt").write_text("\n".join(bbox_txt) + "\n")
        (cub / "image_class_labels.txt").write_text("\n".join(labels_txt) + "\n")
        (cub / "classes.txt").write_text("".join(f"{c + 1} {class_dir(c)}\n" for c in range(cfg["num_classes"])))
        for split, (keys, classes) in per_split.items():
            _write_pickle(tmp / split / "filenames.pickle", keys)
            _write_pickle(tmp / split / "class_info.pickle", classes)
        atomic_write_json(tmp / "attributes.json", {
            "spec": [[a.name, list(a.values), a.fine] for a in SPEC],
            "class_attributes": table.tolist(),
            "caption_attributes": caption_attrs,
        })
        seconds = time.perf_counter() - start
        manifest = dict(cfg, n_images=len(jobs), n_train_classes=n_train, build_seconds=round(seconds, 3),
                        images_per_second=round(len(jobs) / max(seconds, 1e-9), 2), workers=n_workers, hash=stable_hash(cfg))
        atomic_write_json(tmp / MANIFEST, manifest)  # last: its presence marks a finished build
        try:
            os.rename(tmp, root)
        except OSError:
            if not (root / MANIFEST).exists():  # a concurrent build finished first otherwise
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report_done(f"built SynthBirds-200 {size} ({len(jobs):,} images)", time.perf_counter() - start, root)
    return root


def ensure_built(size: str = "default", seed: int = 0, workers: int | None = None,
                 **overrides: int | None) -> Path:
    """The cached build of (size, seed, overrides) under cache_dir('synthbirds'); built on first use."""
    cfg = resolve_config(size, seed, **overrides)
    root = cache_dir("synthbirds") / f"{size}-seed{seed}-{stable_hash(cfg, 10)}"
    if not (root / MANIFEST).exists():
        build(root, size, seed, workers, **overrides)
    return root


def read_manifest(root: str | os.PathLike) -> dict:
    """The manifest of a built dataset."""
    return json.loads((Path(root) / MANIFEST).read_text())
