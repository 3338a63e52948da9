"""Bad data is an error naming the file and the line or record, never a silent wrong dataset (issue 14,
items 4 and 10). Each case starts from a valid tiny dataset and breaks one thing."""

from __future__ import annotations

import json
import pickle
import re

import numpy as np
import pytest

from ganblocks.data import DatasetError, build_dataset
from tests.data.test_loaders import _image, write_stackgan_birds


def write_folder(root, records):
    """ROOT/captions.jsonl with `records` (dicts; 'image' files are created 40x30)."""
    for rec in records:
        if isinstance(rec.get("image"), str):
            _image(root / rec["image"], 40, 30, (200, 40, 10))
    (root / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


GOOD = {"image": "a.png", "captions": ["a red bird"], "class_id": 1, "split": "train", "bbox": [5, 5, 20, 15]}


@pytest.mark.parametrize("change, message", [
    ({"split": "trian"}, r"line 2 \(a.png\): split 'trian'; expected one of \['train', 'test'\]"),
    ({"class_id": -5}, r"line 2 \(a.png\): class_id -5; expected an integer >= 0"),
    ({"class_id": "sparrow"}, r"line 2 \(a.png\): class_id 'sparrow'; expected an integer >= 0"),
    ({"class_id": 2.5}, r"line 2 \(a.png\): class_id 2.5; expected an integer >= 0"),
    ({"bbox": [1, 2]}, r"line 2 \(a.png\): bbox \[1, 2\]; expected \[x, y, w, h\]"),
    ({"bbox": [1, 2, "w", 4]}, r"line 2 \(a.png\): bbox \[1, 2, 'w', 4\]; expected four finite numbers"),
    ({"bbox": [5, 5, 0, 0]}, r"line 2 \(a.png\): zero-size bounding box \[5, 5, 0, 0\]"),
    ({"captions": ["fine", ""]}, r"line 2 \(a.png\): empty caption"),
    ({"captions": [1]}, r"line 2 \(a.png\): captions \[1\]; expected a non-empty list of strings"),  # was "empty caption"
    ({"captions": []}, r"line 2 \(a.png\): captions \[\]; expected a non-empty list of strings"),
    ({"spilt": "test"}, r"line 2 \(a.png\): unknown keys \['spilt'\]; accepted: image, captions"),
    ({"image": 7}, r"line 2: image 7; expected a path relative to"),
])
def test_folder_record_errors_name_the_file_and_line(tmp_path, change, message):
    """Before: split 'trian' silently dropped the image from both splits, class_id -5 and 'sparrow' were
    accepted (or a raw int() error), bbox [1, 2] an IndexError, a zero box an all-black crop."""
    root = write_folder(tmp_path / "f", [dict(GOOD, image="b.png"), {**GOOD, **change}])
    with pytest.raises(DatasetError, match=re.escape(str(root / "captions.jsonl")) + " " + message):
        build_dataset("folder", "train", 64, "bow", root=root)


def test_folder_box_outside_its_image_names_image_record_and_size(tmp_path):
    root = write_folder(tmp_path / "f", [dict(GOOD, bbox=[30, 20, 20, 15])])  # the image is 40x30
    with pytest.raises(DatasetError, match=r"bounding box \[30.0, 20.0, 20.0, 15.0\] \(.*captions.jsonl line 1\) "
                                           r"reaches outside image .*a.png, which is 40x30"):
        build_dataset("folder", "train", 64, "bow", root=root)


def test_non_utf8_captions_name_the_file_and_line(tmp_path):
    root = write_folder(tmp_path / "f", [GOOD])
    (root / "captions.jsonl").write_bytes(b'\n{"image": "a.png", "captions": ["a caf\xe9 bird"]}\n')
    with pytest.raises(DatasetError, match=r"captions.jsonl line 2 is not UTF-8 text \(byte 0xe9 at offset 39\)"):
        build_dataset("folder", "train", 64, "bow", root=root)
    birds = write_stackgan_birds(tmp_path / "b")
    victim = next((birds / "text_c10").rglob("*_0002.txt"))
    victim.write_bytes(b"a fine caption\na caf\xe9 caption\n")  # was silently turned into U+FFFD
    with pytest.raises(DatasetError, match=re.escape(victim.name) + r" line 2 is not UTF-8 text"):
        build_dataset("stackgan", "train", 64, "bow", root=birds)


def test_fewer_caption_lines_than_precomputed_embeddings_is_an_error(tmp_path):
    """9 lines for 10 embeddings were cycled: caption 9 (the first line again) was paired with embedding 9."""
    root = write_stackgan_birds(tmp_path / "b")
    victim = next((root / "text_c10").rglob("*_0003.txt"))
    victim.write_text("".join(f"caption {c} of image 3\n" for c in range(9)))
    with pytest.raises(DatasetError, match=re.escape(victim.name) + r" has 9 captions but .*char-CNN-RNN-"
                                           r"embeddings.pickle holds 10 embeddings for '001.Bird_1/Bird_é_0003'"):
        build_dataset("stackgan", "train", 64, "precomputed", root=root)
    victim.write_text("".join(f"caption {c} of image 3\n" for c in range(11)))  # extra lines: cut, in order
    ds = build_dataset("stackgan", "train", 64, "precomputed", root=root)
    assert ds.captions[2] == [f"caption {c} of image 3" for c in range(10)]


def test_fewer_caption_lines_with_a_project_encoder_is_a_warned_repair(tmp_path):
    root = write_stackgan_birds(tmp_path / "b")
    victim = next((root / "text_c10").rglob("*_0003.txt"))
    victim.write_text("".join(f"caption {c} of image 3\n" for c in range(9)))
    with pytest.warns(UserWarning, match=r"1 caption files hold fewer than 10 captions \(first: .*_0003.txt\)"):
        ds = build_dataset("stackgan", "train", 64, "bow", root=root)
    assert ds.captions[2][9] == "caption 0 of image 3"  # the embedding of slot 9 is that caption's own
    assert np.array_equal(ds.embeddings[2, 9].numpy(), ds.text_encoder.encode(["caption 0 of image 3"])[0].numpy())


def _write_embeddings(root, emb):
    with open(root / "train" / "char-CNN-RNN-embeddings.pickle", "wb") as f:
        pickle.dump(emb, f, protocol=2)


def test_a_nan_embedding_names_the_file_image_and_caption(tmp_path):
    """A NaN row used to train until the losses were NaN, and the run was recorded as diverged."""
    root = write_stackgan_birds(tmp_path / "b")
    emb = np.ones((4, 10, 6), np.float32)
    emb[2, 7, 3] = np.nan
    emb[3, 0, :] = np.inf
    _write_embeddings(root, emb)
    with pytest.raises(DatasetError, match=r"char-CNN-RNN-embeddings.pickle: embedding 7 of image 2 "
                                           r"\(001.Bird_1/Bird_é_0003\) holds non-finite values \(1 of 6 are nan or "
                                           r"inf\); 2 caption embeddings in all are affected"):
        build_dataset("stackgan", "train", 64, "precomputed", root=root)


def test_a_zero_dimension_embedding_names_the_file(tmp_path):
    root = write_stackgan_birds(tmp_path / "b")
    _write_embeddings(root, np.ones((4, 10, 0), np.float32))
    with pytest.raises(DatasetError, match=r"char-CNN-RNN-embeddings.pickle gives embeddings of shape \(4, 10, 0\): "
                                           r"each caption needs a vector of at least one value"):
        build_dataset("stackgan", "train", 64, "precomputed", root=root)


def test_embeddings_with_no_caption_per_image_name_the_file(tmp_path):
    """Shape (N, 0, D) was accepted: a dataset with no caption to draw, failing only when training sampled one."""
    root = write_stackgan_birds(tmp_path / "b")
    _write_embeddings(root, np.ones((4, 0, 6), np.float32))
    with pytest.raises(DatasetError, match=r"char-CNN-RNN-embeddings.pickle gives embeddings of shape \(4, 0, 6\): "
                                           r"no caption embedding per image"):
        build_dataset("stackgan", "train", 64, "precomputed", root=root)


def test_an_encoder_giving_nan_is_named(tmp_path):
    class Broken:
        def cache_key(self):
            return f"broken-{tmp_path}"

        def encode(self, captions):
            out = np.zeros((len(captions), 3), np.float32)
            out[4] = np.nan
            return out

    root = write_folder(tmp_path / "f", [dict(GOOD, image="b.png", captions=["x"] * 3), GOOD])
    with pytest.raises(DatasetError, match=r"text encoder Broken: embedding 4 of image 0 \(b.png\) holds non-finite"):
        build_dataset("folder", "train", 64, Broken(), root=root)


@pytest.mark.parametrize("line, message", [
    ("10.0 5.0 0.0 16.0", r"bounding_boxes.txt line 2: zero-size bounding box \[10.0, 5.0, 0.0, 16.0\]"),
    ("10.0 5.0 wide 16.0", r"bounding_boxes.txt line 2: expected numbers, got '10.0 5.0 wide 16.0'"),
    ("10.0 5.0 60.0 16.0", r"bounding box \[10.0, 5.0, 60.0, 16.0\] \(.*bounding_boxes.txt line 2\) reaches "
                           r"outside image .*_0002.jpg, which is 60x40"),
])
def test_cub_bounding_box_errors_name_the_file_and_line(tmp_path, line, message):
    """A zero box gave an all-black crop; a box outside the image a raw PIL ValueError without the file."""
    root = write_stackgan_birds(tmp_path / "b")
    boxes = root / "CUB_200_2011" / "bounding_boxes.txt"
    rows = boxes.read_text().splitlines()
    rows[1] = f"2 {line}"
    boxes.write_text("\n".join(rows) + "\n")
    with pytest.raises(DatasetError, match=message):
        build_dataset("stackgan", "train", 64, "precomputed", root=root)


def test_class_numbers_below_one_name_the_file(tmp_path):
    root = write_stackgan_birds(tmp_path / "b")
    with open(root / "train" / "class_info.pickle", "wb") as f:
        pickle.dump([1, 0, 1, 2], f, protocol=2)
    with pytest.raises(DatasetError, match=r"class_info.pickle gives class 0 to '002.Bird_2/Bird_é_0002' \(entry 1\); "
                                           r"class_info.pickle numbers classes from 1"):
        build_dataset("stackgan", "train", 64, "precomputed", root=root)
