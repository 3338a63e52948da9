"""SynthBirds-200: determinism, class-disjoint split, truthful captions, fine detail only at high resolution."""

import hashlib

import numpy as np
import pytest
import torch

from ganblocks.data import synthbirds as sb


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "manifest.json":
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path):
    kw = dict(num_classes=4, images_per_class=2, max_size=48)
    a = sb.build(tmp_path / "a", "tiny", seed=3, **kw)
    b = sb.build(tmp_path / "b", "tiny", seed=3, **kw)
    c = sb.build(tmp_path / "c", "tiny", seed=4, **kw)
    d = sb.build(tmp_path / "d", "tiny", seed=3, workers=2, **kw)
    assert _digest(a) == _digest(b) == _digest(d)
    assert _digest(a) != _digest(c)
    assert sb.read_manifest(a)["hash"] == sb.read_manifest(b)["hash"]


def test_build_writes_cub_layout_and_manifest_last(tiny_synthbirds):
    root = tiny_synthbirds
    m = sb.read_manifest(root)
    assert m["version"] == sb.GENERATOR_VERSION and m["n_images"] == 20 * 8
    for rel in ("CUB_200_2011/images.txt", "CUB_200_2011/bounding_boxes.txt", "train/filenames.pickle",
                "test/class_info.pickle", "text_c10/001.Synthbird_001/Synthbird_001_0001.txt", "attributes.json"):
        assert (root / rel).is_file(), rel
    assert (root / "CUB_200_2011/images/001.Synthbird_001/Synthbird_001_0001.png").is_file()
    assert not list(root.parent.glob(f".{root.name}.building-*"))


def test_interrupted_build_leaves_nothing_that_looks_finished(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = sb.render_one

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(sb.cub_layout, "render_one", dying)  # where build() looks it up
    with pytest.raises(KeyboardInterrupt):
        sb.build(tmp_path / "x", "tiny", num_classes=3, images_per_class=2, max_size=32)
    assert not (tmp_path / "x").exists()
    assert list(tmp_path.iterdir()) == []


def test_split_is_class_disjoint_and_proportional(tiny_synthbirds):
    from ganblocks.data.loaders import read_pickle

    train = read_pickle(tiny_synthbirds / "train" / "class_info.pickle")
    test = read_pickle(tiny_synthbirds / "test" / "class_info.pickle")
    assert set(train).isdisjoint(test)
    assert len(set(train)) == 15 and len(set(test)) == 5
    assert min(train + test) == 1 and max(train + test) == 20  # 1-based, as CUB


def test_captions_name_only_true_attributes():
    table = sb.class_attributes(30, seed=1)
    rng = np.random.default_rng(0)
    fine_named = 0
    for c in range(30):
        for _ in range(10):
            text, named = sb.make_caption(table[c], rng)
            assert named and all(table[c][i] == v for i, v in named.items())
            fine_named += any(sb.SPEC[i].fine for i in named)
            assert text == text.strip() and "  " not in text
    assert fine_named > 30  # fine attributes appear in a fair share of captions


def test_caption_mentions_the_named_values():
    attrs = {"body_color": "red", "beak_shape": "hooked", "wing_bars": "present"}
    text, named = sb.make_caption(attrs, 0, subset=[0, 5, 8])
    assert named == {0: sb.COLOR_NAMES.index("red"), 5: 2, 8: 1}
    assert any(w in text for w in ("red", "scarlet", "crimson"))
    assert any(w in text for w in ("hook", "curved"))
    assert "bar" in text
    with pytest.raises(ValueError, match="not in the given attributes"):
        sb.make_caption(attrs, 0, subset=[1])


def test_class_attributes_distinct_and_deterministic():
    a, b = sb.class_attributes(200, 0), sb.class_attributes(200, 0)
    assert np.array_equal(a, b) and a.shape == (200, sb.NUM_ATTRIBUTES)
    assert len({tuple(r[list(sb.COARSE)]) for r in a}) == 200
    assert len(sb.COARSE) >= 6 and len(sb.FINE) >= 3


def _energy(x, y):
    """Mean squared pixel difference."""
    return float(((x.astype(np.float64) - y.astype(np.float64)) ** 2).mean())


def _down(img, f):
    s = img.shape[0] // f
    return img.astype(np.float64).reshape(s, f, s, f, 3).mean((1, 3))


@pytest.mark.parametrize("fine", sb.FINE)
def test_fine_attribute_energy_small_at_64_large_at_256(fine):
    """Same pose with and without one fine attribute: difference energy at 256 vs box-downsampled to 64."""
    table = sb.class_attributes(6, 0)
    hi, lo = [], []
    for c in range(6):
        on, off = table[c].copy(), table[c].copy()
        on[fine], off[fine] = 1, 0
        a, _ = sb.render_one(on, (9, c), 256)
        b, _ = sb.render_one(off, (9, c), 256)
        hi.append(_energy(a, b))
        lo.append(_energy(_down(a, 4), _down(b, 4)))
    assert np.mean(hi) > 4 * np.mean(lo), (sb.SPEC[fine].name, hi, lo)  # measured 7x-17x


def test_coarse_attribute_visible_at_64():
    table = sb.class_attributes(6, 0)
    ratios = []
    for coarse in (0, 1, 5):  # body colour, wing colour, beak shape
        for c in range(3):
            other = table[c].copy()
            other[coarse] = (other[coarse] + 1) % len(sb.SPEC[coarse].values)
            a, _ = sb.render_one(table[c], (9, c), 256)
            b, _ = sb.render_one(other, (9, c), 256)
            ratios.append(_energy(_down(a, 4), _down(b, 4)) / max(_energy(a, b), 1e-9))
    assert min(ratios) > 0.5  # a coarse change keeps most of its energy at 64 (measured 0.7-0.9)


def test_render_fresh_images_and_bbox():
    images, attrs = sb.render([0, 3, 3], seed=1234, size=64, num_classes=10, dataset_seed=0)
    assert images.shape == (3, 3, 64, 64) and images.dtype == torch.uint8
    assert torch.equal(attrs, torch.from_numpy(sb.class_attributes(10, 0)[[0, 3, 3]]))
    assert not torch.equal(images[1], images[2])  # same class, new pose
    again, _ = sb.render([0, 3, 3], seed=1234, size=64, num_classes=10, dataset_seed=0)
    assert torch.equal(images, again)
    img, (x, y, w, h) = sb.render_one(attrs[0].tolist(), 5, 96)
    assert 0 <= x and 0 <= y and x + w <= 96 and y + h <= 96 and w > 20 and h > 10
    with pytest.raises(ValueError, match=r"class_ids must lie in \[0, 10\)"):
        sb.render([10], seed=0, size=32, num_classes=10)


def test_bad_config_errors():
    with pytest.raises(ValueError, match="unknown synthbirds size 'huge'"):
        sb.resolve_config("huge")
    with pytest.raises(ValueError, match="num_classes >= 2"):
        sb.resolve_config("tiny", num_classes=1)
