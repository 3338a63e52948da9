"""Every loader on a small fixture written in its exact layout, and every error path."""

import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from ganblocks.data import DatasetError, build_dataset, load_size
from ganblocks.registry import UnknownComponentError


def py2_pickle_of_strings(strings):
    """The bytes Python 2's pickle.dump(list_of_str, f, 2) writes: SHORT_BINSTRING opcodes, latin1 bytes."""
    out = b"\x80\x02]q\x00("
    for s in strings:
        raw = s.encode("latin1")
        out += b"U" + bytes([len(raw)]) + raw
    return out + b"e."


def _image(path, w, h, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((h, w, 3), np.uint8)
    arr[...] = colour
    arr[h // 4: h // 2, w // 4: w // 2] = 255 - np.asarray(colour)
    Image.fromarray(arr).save(path)


def write_stackgan_birds(root, n_train=4, n_test=2, dim=6, py2=True):
    """DATA_DIR with CUB_200_2011 (images.txt, bounding_boxes.txt), split pickles, embeddings, text_c10."""
    cub = root / "CUB_200_2011"
    lines, boxes, i = [], [], 0
    splits = {"train": [], "test": []}
    for split, n in (("train", n_train), ("test", n_test)):
        for k in range(n):
            i += 1
            cls = (1 if k % 2 == 0 else 2) if split == "train" else 3
            key = f"{cls:03d}.Bird_{cls}/Bird_é_{i:04d}"
            _image(cub / "images" / f"{key}.jpg", 60, 40, (10 * i, 100, 200))
            lines.append(f"{i} {key}.jpg")
            boxes.append(f"{i} 10.0 5.0 20.0 16.0")
            (root / "text_c10" / f"{key}.txt").parent.mkdir(parents=True, exist_ok=True)
            (root / "text_c10" / f"{key}.txt").write_text("".join(f"caption {c} of image {i}\n" for c in range(10)))
            splits[split].append((key, cls))
    (cub / "images.txt").write_text("\n".join(lines) + "\n")
    (cub / "bounding_boxes.txt").write_text("\n".join(boxes) + "\n")
    for split, items in splits.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        keys = [k for k, _ in items]
        (root / split / "filenames.pickle").write_bytes(py2_pickle_of_strings(keys) if py2 else pickle.dumps(keys))
        with open(root / split / "class_info.pickle", "wb") as f:
            pickle.dump([c for _, c in items], f, protocol=2)
        emb = np.arange(len(items) * 10 * dim, dtype=np.float32).reshape(len(items), 10, dim)
        with open(root / split / "char-CNN-RNN-embeddings.pickle", "wb") as f:
            pickle.dump(emb, f, protocol=2)
    return root


def test_py2_pickle_fixture_really_needs_latin1(tmp_path):
    data = py2_pickle_of_strings(["Bird_é"])
    with pytest.raises(UnicodeDecodeError):
        pickle.loads(data)
    assert pickle.loads(data, encoding="latin1") == ["Bird_é"]


def test_stackgan_layout_precomputed(tmp_path):
    root = write_stackgan_birds(tmp_path / "birds")
    ds = build_dataset("stackgan", "train", 64, "precomputed", root=root)
    assert ds.images.shape == (4, 3, load_size(64), load_size(64)) and ds.images.dtype == torch.uint8
    assert ds.embeddings.shape == (4, 10, 6)
    assert ds.embeddings[1, 0, 0] == 60.0  # the pickle's rows, in filenames order
    assert ds.class_ids.tolist() == [0, 1, 0, 1]  # class_info is 1-based
    assert ds.filenames[0] == "001.Bird_1/Bird_é_0001"
    assert ds.captions[2][3] == "caption 3 of image 3"
    assert torch.equal(ds.text_encoder.encode(["caption 0 of image 2"]), ds.embeddings[1, :1])
    test = build_dataset("stackgan", "test", 128, "precomputed", root=root)
    assert test.images.shape == (2, 3, 152, 152) and test.class_ids.tolist() == [2, 2]


def test_stackgan_bbox_crop_is_the_official_one(tmp_path):
    root = write_stackgan_birds(tmp_path / "birds", n_train=2, n_test=1)
    ds = build_dataset("stackgan", "train", 64, "precomputed", root=root)
    img = Image.open(root / "CUB_200_2011/images" / f"{ds.filenames[0]}.jpg").convert("RGB")
    r = int(max(20, 16) * 0.75)  # bbox 10, 5, 20, 16: centre (20, 13)
    ref = img.crop((max(0, 20 - r), max(0, 13 - r), 20 + r, 13 + r)).resize((76, 76), Image.BILINEAR)
    assert np.array_equal(ds.images[0].permute(1, 2, 0).numpy(), np.asarray(ref))


def test_flowers_layout_without_cub_folder(tmp_path):
    root = tmp_path / "flowers"
    keys = ["jpg/image_00001", "jpg/image_00002"]
    for k in keys:
        _image(root / "images" / f"{k}.jpg", 50, 30, (0, 255, 0))
    (root / "train").mkdir(parents=True)
    (root / "train" / "filenames.pickle").write_bytes(py2_pickle_of_strings(keys))
    with open(root / "train" / "char-CNN-RNN-embeddings.pickle", "wb") as f:
        pickle.dump([np.ones((10, 4), np.float32), np.zeros((10, 4), np.float32)], f, protocol=2)
    ds = build_dataset("stackgan", "train", 64, "precomputed", root=root)
    assert ds.embeddings.shape == (2, 10, 4) and ds.class_ids.tolist() == [0, 1]
    assert ds.meta["captions_available"] is False
    with pytest.raises(DatasetError, match="no captions"):
        build_dataset("stackgan", "train", 64, "bow", root=root)


def test_stackgan_with_a_project_encoder_embeds_text_c10(tmp_path):
    root = write_stackgan_birds(tmp_path / "birds")
    ds = build_dataset("stackgan", "train", 64, "bow", root=root)
    assert ds.embeddings.shape == (4, 10, 1024)


def test_raw_cub_splits_by_class(tmp_path):
    root = write_stackgan_birds(tmp_path / "cub")
    for split in ("train", "test"):
        for f in (root / split).iterdir():
            f.unlink()
        (root / split).rmdir()
    labels = []
    for line in (root / "CUB_200_2011/images.txt").read_text().split("\n"):
        if line:
            i, rel = line.split()
            labels.append(f"{i} {int(rel[:3])}")
    (root / "CUB_200_2011/image_class_labels.txt").write_text("\n".join(labels) + "\n")
    train = build_dataset("cub", "train", 64, "bow", root=root)
    test = build_dataset("cub", "test", 64, "bow", root=root)
    assert set(train.class_ids.tolist()) == {0, 1} and set(test.class_ids.tolist()) == {2}
    assert len(train) == 4 and len(test) == 2 and train.num_classes == 3
    (root / "CUB_200_2011/image_class_labels.txt").unlink()
    with pytest.raises(DatasetError, match="image_class_labels.txt exists: cannot tell the train images"):
        build_dataset("cub", "train", 64, "bow", root=root)


def test_folder_layout(tmp_path):
    root = tmp_path / "mine"
    recs = []
    for i in range(3):
        _image(root / "images" / f"{i}.png", 40 + 10 * i, 40, (i * 80, 0, 0))
        recs.append({"image": f"images/{i}.png", "captions": [f"a photo number {i}", "another one"],
                     "class_id": i % 2, "split": "train" if i < 2 else "test"})
    (root / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    ds = build_dataset("folder", "train", 64, "bow", root=root)
    assert ds.images.shape == (2, 3, 76, 76) and ds.embeddings.shape == (2, 10, 1024)
    assert ds.captions[0][:3] == ["a photo number 0", "another one", "a photo number 0"]
    assert len(build_dataset("folder", "test", 64, "bow", root=root)) == 1


def test_synthbirds_through_the_cub_loader(tiny_synthbirds):
    ds = build_dataset("synthbirds", "test", 64, "bow", size="tiny")
    assert ds.root == tiny_synthbirds and len(ds) == 5 * 8
    assert ds.attributes.shape == (40, 11) and ds.attributes.dtype == torch.int64
    assert len(ds.attribute_spec) == 11 and ds.num_classes == 20
    for i in range(len(ds)):
        assert len(ds.caption_attributes[i]) == ds.n_captions == 10
        for named in ds.caption_attributes[i]:
            assert all(ds.attributes[i, a] == v for a, v in named.items())
    again = build_dataset("synthbirds", "test", 64, "bow", root=tiny_synthbirds)
    assert torch.equal(ds.images, again.images) and torch.equal(ds.embeddings, again.embeddings)
    assert again.dataset_hash == ds.dataset_hash


# ----------------------------------------------------------------------------------------- error paths
def test_error_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"(?s)does not exist.*expected layout \(StackGAN\)"):
        build_dataset("stackgan", "train", 64, "precomputed", root=tmp_path / "nope")
    with pytest.raises(DatasetError, match="needs root"):
        build_dataset("cub", "train", 64, "bow")
    with pytest.raises(UnknownComponentError, match="registered dataset names"):
        build_dataset("cubb", "train", 64, "bow")


def test_error_missing_image(tmp_path):
    root = write_stackgan_birds(tmp_path / "b")
    victim = next((root / "CUB_200_2011/images").rglob("*_0002.jpg"))
    victim.unlink()
    with pytest.raises(DatasetError, match=f"missing image file .*{victim.name}"):
        build_dataset("stackgan", "train", 64, "precomputed", root=root)


def test_error_corrupt_image(tmp_path):
    root = write_stackgan_birds(tmp_path / "b")
    victim = next((root / "CUB_200_2011/images").rglob("*_0003.jpg"))
    victim.write_bytes(b"not a jpeg at all")
    with pytest.raises(DatasetError, match=f"cannot decode image .*{victim.name}"):
        build_dataset("stackgan", "train", 64, "precomputed", root=root)


def test_error_count_mismatch(tmp_path):
    root = write_stackgan_birds(tmp_path / "b")
    with open(root / "train" / "char-CNN-RNN-embeddings.pickle", "wb") as f:
        pickle.dump(np.zeros((3, 10, 6), np.float32), f)
    with pytest.raises(DatasetError, match=r"embeddings of shape \(3, 10, 6\) for 4 filenames"):
        build_dataset("stackgan", "train", 64, "precomputed", root=root)
    with open(root / "train" / "class_info.pickle", "wb") as f:
        pickle.dump([1, 2], f)
    with pytest.raises(DatasetError, match="2 classes for 4 filenames"):
        build_dataset("stackgan", "train", 64, "precomputed", root=root)


def test_error_corrupt_pickle(tmp_path):
    root = write_stackgan_birds(tmp_path / "b")
    (root / "train" / "filenames.pickle").write_bytes(b"\x80\x02garbage")
    with pytest.raises(DatasetError, match="corrupt pickle .*filenames.pickle"):
        build_dataset("stackgan", "train", 64, "precomputed", root=root)


def test_error_missing_or_ambiguous_embeddings(tmp_path):
    root = write_stackgan_birds(tmp_path / "b")
    (root / "train" / "char-CNN-RNN-embeddings.pickle").rename(root / "train" / "other.pickle")
    with pytest.raises(DatasetError, match="found no \\*-embeddings.pickle"):
        build_dataset("stackgan", "train", 64, "precomputed", root=root)


def test_error_empty_caption(tmp_path):
    root = write_stackgan_birds(tmp_path / "b")
    victim = next((root / "text_c10").rglob("*_0001.txt"))
    victim.write_text("\n\n")
    with pytest.raises(DatasetError, match=f"empty caption file .*{victim.name}"):
        build_dataset("stackgan", "train", 64, "bow", root=root)
    folder = tmp_path / "f"
    _image(folder / "a.png", 8, 8, (0, 0, 0))
    (folder / "captions.jsonl").write_text(json.dumps({"image": "a.png", "captions": ["ok", ""]}) + "\n")
    with pytest.raises(DatasetError, match=r"line 1 \(a.png\): empty caption"):
        build_dataset("folder", "train", 64, "bow", root=folder)


def test_error_unfinished_synthbirds_build(tmp_path):
    (tmp_path / "half").mkdir()
    with pytest.raises(DatasetError, match="not a finished synthbirds build"):
        build_dataset("synthbirds", "train", 64, "bow", root=tmp_path / "half")


def test_error_bad_split_and_imsize(tiny_synthbirds):
    with pytest.raises(ValueError, match="split 'val'"):
        build_dataset("synthbirds", "val", 64, "bow", root=tiny_synthbirds)
    with pytest.raises(ValueError, match="imsize 0"):
        build_dataset("synthbirds", "train", 0, "bow", root=tiny_synthbirds)


# ----------------------------------------------------------------------------------------- caches
def test_embeddings_and_images_are_cached_and_follow_changes_on_disk(tmp_path, monkeypatch):
    from ganblocks.io import cache_dir

    monkeypatch.setenv("GANBLOCKS_CACHE", str(tmp_path / "cache"))  # counts files: no other writer may share it

    root = write_stackgan_birds(tmp_path / "b")
    next((root / "text_c10").rglob("*_0001.txt")).write_text(f"a caption unique to {tmp_path}\n")
    emb_dir, img_dir = cache_dir("data", "embeddings"), cache_dir("data", "images")
    before = set(emb_dir.iterdir()), set(img_dir.iterdir())
    first = build_dataset("stackgan", "train", 64, "bow", root=root)
    after = set(emb_dir.iterdir()), set(img_dir.iterdir())
    assert len(after[0] - before[0]) == 1 and len(after[1] - before[1]) == 1
    build_dataset("stackgan", "train", 64, "bow", root=root)
    assert (set(emb_dir.iterdir()), set(img_dir.iterdir())) == after  # nothing recomputed
    victim = root / "CUB_200_2011/images" / f"{first.filenames[0]}.jpg"
    _image(victim, 60, 40, (255, 255, 0))
    changed = build_dataset("stackgan", "train", 64, "bow", root=root)
    assert not torch.equal(changed.images[0], first.images[0])
    assert torch.equal(changed.images[1:], first.images[1:])


def test_no_text_encoder_gives_empty_embeddings(tiny_synthbirds):
    ds = build_dataset("synthbirds", "train", 64, None, root=tiny_synthbirds)
    assert ds.embeddings.shape == (len(ds), 10, 0) and ds.text_encoder is None
