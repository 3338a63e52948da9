"""AttnGAN's data layout (`attngan` dataset): captions.pickle word indices, filenames.pickle, text/, CUB boxes,
COCO's whole images; bad files are errors naming the file and record (issue 16, item 4)."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest

from ganblocks.data import DatasetError, build_dataset
from ganblocks.data.attngan import attngan_tokens
from ganblocks.io import UnsafeFileError
from tests.data.test_loaders import _image

VOCAB = ["<end>", "a", "red", "bird", "blue", "wings", "small"]
IXTOWORD = dict(enumerate(VOCAB))
WORDTOIX = {w: i for i, w in IXTOWORD.items()}


def _ids(text: str) -> list[int]:
    return [WORDTOIX[w] for w in text.split()]


def write_attngan_birds(root, n_captions=2, captions_pickle=True):
    """DATA_DIR with CUB_200_2011 (3 train images of classes 1, 1, 2; 1 test image of class 3), AttnGAN pickles
    and text/ files. Image i's caption j is 'a red bird' + i small words + (wings if j)."""
    cub = root / "CUB_200_2011"
    lines, boxes, names, texts = [], [], {"train": [], "test": []}, {"train": [], "test": []}
    for i, (split, cls) in enumerate([("train", 1), ("train", 1), ("train", 2), ("test", 3)], 1):
        key = f"{cls:03d}.Bird_{cls}/Bird_{i:04d}"
        _image(cub / "images" / f"{key}.jpg", 60, 40, (10 * i, 100, 200))
        lines.append(f"{i} {key}.jpg")
        boxes.append(f"{i} 10 5 20 16")
        caps = [" ".join(["a", "red", "bird"] + ["small"] * i + (["wings"] if j else [])) for j in range(n_captions)]
        (root / "text" / f"{key}.txt").parent.mkdir(parents=True, exist_ok=True)
        (root / "text" / f"{key}.txt").write_text("".join(c.upper() + ".\n\n" for c in caps))  # tokens lower-cased
        names[split].append((key, cls))
        texts[split] += caps
    (cub / "images.txt").write_text("\n".join(lines) + "\n")
    (cub / "bounding_boxes.txt").write_text("\n".join(boxes) + "\n")
    for split, items in names.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        with open(root / split / "filenames.pickle", "wb") as f:
            pickle.dump([k for k, _ in items], f, protocol=2)
        with open(root / split / "class_info.pickle", "wb") as f:
            pickle.dump([c for _, c in items], f, protocol=2)
    if captions_pickle:
        write_captions_pickle(root, [[_ids(t) for t in texts["train"]], [_ids(t) for t in texts["test"]],
                                     IXTOWORD, WORDTOIX])
    return root


def write_captions_pickle(root, value):
    with open(root / "captions.pickle", "wb") as f:
        pickle.dump(value, f, protocol=2)


def test_birds_layout_reads_word_indices_vocabulary_classes_and_boxes(tmp_path):
    root = write_attngan_birds(tmp_path / "birds")
    train = build_dataset("attngan", "train", 64, None, root=root)
    assert train.filenames == ["001.Bird_1/Bird_0001", "001.Bird_1/Bird_0002", "002.Bird_2/Bird_0003"]
    assert train.captions[1] == ["a red bird small small", "a red bird small small wings"]
    assert train.meta["word_ids"][1][1] == [1, 2, 3, 6, 6, 5]  # entry i * n + j of train_captions
    assert train.meta["ixtoword"] == IXTOWORD and train.meta["wordtoix"] == WORDTOIX
    assert train.meta["words_num"] == 18  # birds
    assert train.class_ids.tolist() == [0, 0, 1] and train.num_classes == 3
    assert train.images.shape == (3, 3, 76, 76)
    # the crop is the box's 1.5x square (the inverted patch of the 60x40 image fills its middle, not a corner)
    img = train.images[0].numpy().astype(int)
    assert abs(img[:, 38, 38] - img[:, 2, 2]).sum() > 100
    test = build_dataset("attngan", "test", 64, "bow", root=root)
    assert test.captions == [["a red bird small small small small", "a red bird small small small small wings"]]
    assert test.embeddings.shape == (1, 2, 1024)


def test_text_files_without_captions_pickle_give_the_same_captions(tmp_path):
    with_pickle = build_dataset("attngan", "train", 64, None, root=write_attngan_birds(tmp_path / "a"))
    root = write_attngan_birds(tmp_path / "b", captions_pickle=False)
    from_text = build_dataset("attngan", "train", 64, None, root=root, n_captions=2)
    assert from_text.captions == with_pickle.captions
    # AttnGAN's build_dictionary: <end> first, then words in order of first appearance (train, then test)
    assert from_text.meta["ixtoword"] == {0: "<end>", 1: "a", 2: "red", 3: "bird", 4: "small", 5: "wings"}
    assert not (root / "captions.pickle").exists()  # the user's folder is never written


def test_attngan_tokens_as_regexp_tokenizer():
    assert attngan_tokens("This bird's wing-bar is RED, café!") == ["this", "bird", "s", "wing", "bar", "is", "red", "caf"]


def test_coco_layout_whole_images_five_captions(tmp_path):
    root = tmp_path / "coco"
    keys = {"train": ["COCO_train2014_000000000009", "COCO_train2014_000000000025"],
            "test": ["COCO_val2014_000000000042"]}
    texts = {}
    for split, ks in keys.items():
        (root / split).mkdir(parents=True)
        with open(root / split / "filenames.pickle", "wb") as f:
            pickle.dump(ks, f, protocol=2)
        texts[split] = []
        for i, k in enumerate(ks):
            _image(root / "images" / f"{k}.jpg", 50, 30, (40 * i, 30, 90))
            texts[split] += [f"a {'red' if i else 'blue'} bird" + " small" * j for j in range(5)]
    write_captions_pickle(root, [[_ids(t) for t in texts["train"]], [_ids(t) for t in texts["test"]], IXTOWORD, WORDTOIX])
    train = build_dataset("attngan", "train", 64, None, root=root)
    assert train.n_captions == 5 and train.meta["words_num"] == 12  # COCO's counts
    assert train.captions[1][2] == "a red bird small small"
    assert train.class_ids.tolist() == [0, 1]  # no class_info.pickle: one class per image, as AttnGAN
    img = train.images[0].numpy()  # the whole 50x30 image squeezed to 76x76: the patch at a quarter of it
    assert abs(int(img[0, 28, 28]) - int(img[0, 5, 5])) > 100


@pytest.mark.parametrize("value, message", [
    ("not a list", r" must hold \[train_captions, test_captions, ixtoword, wordtoix\], got str"),
    ([[[1, 2]] * 5, [[1]] * 2, IXTOWORD, WORDTOIX],
     r": train_captions holds 5 captions for the 3 images of train/filenames.pickle"),
    ([[[1, 2]] * 6, [[1]] * 3, IXTOWORD, WORDTOIX], r"2 captions per train image but 3 per test image"),
    ([[[1, 2]] * 4 + [[1, 0, 3]] + [[1]], [[1]] * 2, IXTOWORD, WORDTOIX],
     r"train_captions record 4 \(image 2, caption 0\) holds word index 0, which is <end> \(0\), never inside"),
    ([[[1, 2]] * 5 + [[1, 99]], [[1]] * 2, IXTOWORD, WORDTOIX],
     r"train_captions record 5 \(image 2, caption 1\) holds word index 99, which is not in ixtoword"),
    ([[[1, 2]] * 5 + [[]], [[1]] * 2, IXTOWORD, WORDTOIX],
     r"train_captions record 5 \(image 2, caption 1\) is \[\]; expected a non-empty list of word indices"),
    ([[[1, 2]] * 6, [[1]] * 2, ["<end>", "a"], WORDTOIX], r"ixtoword and wordtoix \(entries 2 and 3\) must be dicts"),
    ([[[1, 2]] * 6, [[1]] * 2, {**IXTOWORD, "x": "zz"}, WORDTOIX],
     r"ixtoword \(entry 2\) maps 'x' \(str\) to 'zz' \(str\); expected integer index -> word"),
    ([[[1, 2]] * 6, [[1]] * 2, {**IXTOWORD, 3: None}, WORDTOIX],
     r"ixtoword \(entry 2\) maps 3 \(int\) to None \(NoneType\); expected integer index -> word"),
    ([[[1, 2]] * 6, [[1]] * 2, IXTOWORD, {**WORDTOIX, "bird": "two"}],
     r"wordtoix \(entry 3\) maps 'bird' \(str\) to 'two' \(str\); expected word -> integer index"),
])
def test_bad_captions_pickle_names_file_split_and_record(tmp_path, value, message):
    root = write_attngan_birds(tmp_path / "birds")
    write_captions_pickle(root, value)
    with pytest.raises(DatasetError, match=re.escape(str(root / "captions.pickle")) + ".*" + message):
        build_dataset("attngan", "train", 64, None, root=root)


def test_crafted_captions_pickle_is_refused_unread(tmp_path):
    root = write_attngan_birds(tmp_path / "birds")
    marker = tmp_path / "ran"

    class Crafted:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    write_captions_pickle(root, [Crafted(), [], {}, {}])
    with pytest.raises(UnsafeFileError, match=re.escape(str(root / "captions.pickle")) + ".*names the Python callable") as e:
        build_dataset("attngan", "train", 64, None, root=root)
    assert not marker.exists()
    assert "StackGAN data pickles" not in str(e.value) and "AttnGAN's" in str(e.value)  # the message fits this layout


def test_bad_files_name_the_file(tmp_path):
    root = write_attngan_birds(tmp_path / "birds", captions_pickle=False)
    key = "002.Bird_2/Bird_0003"
    (root / "text" / f"{key}.txt").write_text("a red bird\n!!!\n")  # a line without words does not count
    with pytest.raises(DatasetError, match=re.escape(str(root / "text" / f"{key}.txt")) + " has 1 captions with "
                                           r"words; .* every file needs 2"):
        build_dataset("attngan", "train", 64, None, root=root, n_captions=2)
    (root / "text" / f"{key}.txt").write_bytes(b"a red bird\na caf\xe9 bird\n")
    with pytest.raises(DatasetError, match=re.escape(str(root / "text" / f"{key}.txt")) + " line 2 is not UTF-8"):
        build_dataset("attngan", "train", 64, None, root=root, n_captions=2)
    root = write_attngan_birds(tmp_path / "b2")
    with open(root / "train" / "class_info.pickle", "wb") as f:
        pickle.dump([1, 0, 2], f, protocol=2)
    with pytest.raises(DatasetError, match=re.escape(str(root / "train" / "class_info.pickle")) +
                       r" gives class 0 to '001.Bird_1/Bird_0002' \(entry 1\)"):
        build_dataset("attngan", "train", 64, None, root=root)
    (root / "train" / "class_info.pickle").unlink()
    (root / "CUB_200_2011" / "bounding_boxes.txt").write_text("1 10 5 20 16\n2 10 5 x 16\n")
    with pytest.raises(DatasetError, match=re.escape(str(root / "CUB_200_2011" / "bounding_boxes.txt")) +
                       r" line 2: expected numbers"):
        build_dataset("attngan", "train", 64, None, root=root)
    (root / "train" / "filenames.pickle").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=r"corrupt pickle " + re.escape(str(root / "train" / "filenames.pickle"))):
        build_dataset("attngan", "train", 64, None, root=root)
    with pytest.raises(DatasetError, match=r"dataset 'attngan' needs root=DATA_DIR"):
        build_dataset("attngan", "train", 64, None)


def test_precomputed_encoder_is_refused_by_name(tmp_path):
    root = write_attngan_birds(tmp_path / "birds")
    with pytest.raises(DatasetError, match=r"text encoder 'precomputed' reads \*-embeddings.pickle"):
        build_dataset("attngan", "train", 64, "precomputed", root=root)
