"""`r_precision_damsm`, the papers' R-precision (issue 16, item 5): 1 true + 99 captions of other classes ranked
by DAMSM sentence cosine, n_images in splits; real images well above chance, shuffled captions at chance."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import torch

from ganblocks.metrics.base import EvalSamples, MetricRefused
from ganblocks.metrics.damsm_rprecision import DAMSMRPrecision, DAMSMScorer, draw_rivals, rank_hits
from ganblocks.registry import build


def test_rank_hits_known_answers():
    pool = torch.eye(4)
    codes = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [1.0, 1.0, 0, 0]])
    true = torch.tensor([[2.0, 0, 0, 0], [0, 0, 1.0, 0], [1.0, 0, 0, 0]])  # cosine, not dot: the scale is ignored
    rivals = torch.tensor([[1, 2], [1, 3], [1, 3]])
    # image 0: its caption is the best; image 1: rival 1 matches better; image 2: tie with rival 1 -> shares 1 / 2
    assert rank_hits(codes, true, pool, rivals).tolist() == [1.0, 0.0, 0.5]


def test_rivals_are_captions_of_other_classes_or_images():
    classes, images = torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 2, 3])
    pool_images = torch.arange(4).repeat_interleave(3)
    pool_classes = classes[pool_images]
    r = draw_rivals(classes, images, pool_classes, pool_images, 99, seed=0)
    assert r.shape == (4, 99)
    assert all((pool_classes[r[i]] != classes[i]).all() for i in range(4))
    assert set(pool_images[r[0]].tolist()) == {2, 3}  # class 0's images 0 and 1 are never rivals of image 0
    r2 = draw_rivals(classes, images, pool_classes, pool_images, 99, seed=0, rivals="other_images")
    assert all((pool_images[r2[i]] != images[i]).all() for i in range(4))
    assert set(pool_images[r2[0]].tolist()) == {1, 2, 3}
    assert torch.equal(r, draw_rivals(classes, images, pool_classes, pool_images, 99, seed=0))


class _IndexImage(torch.nn.Module):
    """Reads the index written into pixel (0, 0, 0) of each image and returns that row of `table`."""

    def __init__(self, table):
        super().__init__()
        self.register_buffer("table", table)

    def forward(self, x):
        idx = ((x[:, 0, 0, 0] + 1) * 127.5).round().long()
        return None, self.table[idx]


def _toy(n_images=200, seed=0):
    """A 20-class dataset of 5 images x 2 captions; generated images whose pixel (0,0,0) names their caption."""
    captions = [[f"caption {i} {j}" for j in range(2)] for i in range(100)]
    ds = SimpleNamespace(name="synthbirds", captions=captions, class_ids=torch.arange(100) // 5, meta={},
                         dataset_hash="toy", root=None)
    flat = [c for caps in captions for c in caps]
    table = torch.randn(len(flat), 16, generator=torch.Generator().manual_seed(seed))
    pick = torch.randint(len(flat), (n_images,), generator=torch.Generator().manual_seed(seed + 1))
    fake = torch.zeros(n_images, 3, 8, 8, dtype=torch.uint8)
    fake[:, 0, 0, 0] = pick.to(torch.uint8)  # 200 captions: the index fits in a byte
    image_ids = pick // 2
    samples = EvalSamples(fake=fake, fake_caption_ids=pick, fake_class_ids=ds.class_ids[image_ids],
                          fake_image_ids=image_ids, fake_texts=[flat[int(i)] for i in pick], dataset=ds, seed=seed)
    text = {c: table[i] for i, c in enumerate(flat)}
    return samples, table, text, flat


def _metric(monkeypatch, scorer, **kw):
    monkeypatch.setattr(DAMSMRPrecision, "scorer", lambda self, dataset: scorer)
    return build("metric", "r_precision_damsm", **kw)


def test_true_caption_is_ranked_among_100_and_the_counts_are_recorded(monkeypatch):
    samples, table, text, flat = _toy()
    # an image encoder that returns exactly its caption's sentence vector finds the true caption every time
    scorer = DAMSMScorer(lambda caps: torch.stack([text[c] for c in caps]), _IndexImage(table), "toy")
    rec = _metric(monkeypatch, scorer, n_images=200, splits=10)(samples)["r_precision_damsm"]
    assert rec["value"] == 1.0 and rec["std"] == 0.0
    assert (rec["candidates"], rec["mismatched"], rec["chance"]) == (100, 99, 0.01)
    assert (rec["n_samples"], rec["splits"], rec["images_per_split"], len(rec["split_values"])) == (200, 10, 20, 10)
    assert rec["std_over"] == "splits" and rec["evaluator"] == "toy" and rec["rivals"] == "other_classes"
    # an image encoder that returns another caption's vector: the true caption is one of 100 random directions
    # -> about chance, far below 1
    shifted = _IndexImage(torch.roll(table, 1, 0))
    low = _metric(monkeypatch, DAMSMScorer(scorer.encode_text, shifted, "toy"), n_images=200, splits=10)(samples)
    assert low["r_precision_damsm"]["value"] < 0.2


def test_splits_are_means_of_equal_parts_and_std_is_over_them(monkeypatch):
    samples, table, text, flat = _toy(n_images=60)
    scorer = DAMSMScorer(lambda caps: torch.stack([text[c] for c in caps]), _IndexImage(table), "toy")
    wrong = set(range(0, 60, 3))  # every third image gets a caption vector that cannot win: the opposite one
    for i in wrong:
        samples.fake_texts[i] = f"neg {samples.fake_texts[i]}"
        text[samples.fake_texts[i]] = -text[samples.fake_texts[i][4:]]
    rec = _metric(monkeypatch, scorer, n_images=60, splits=3)(samples)["r_precision_damsm"]
    pick = torch.randperm(60, generator=torch.Generator().manual_seed(0))
    hits = torch.tensor([0.0 if int(i) in wrong else 1.0 for i in pick]).view(3, 20).mean(1)
    assert rec["split_values"] == pytest.approx(hits.tolist())
    assert rec["value"] == pytest.approx(hits.mean().item()) and rec["std"] == pytest.approx(hits.std(unbiased=False).item())


def test_too_few_images_is_refused_naming_the_settings(monkeypatch):
    samples, *_ = _toy(n_images=50)
    with pytest.raises(MetricRefused, match=r"scores 30000 images \(metrics.options.r_precision_damsm.n_images\) but "
                                            r"50 were generated: raise metrics.n_samples to 30000"):
        build("metric", "r_precision_damsm")(samples)


def test_real_data_without_damsm_files_is_refused_naming_the_settings(tmp_path):
    cub = SimpleNamespace(name="attngan", meta={})
    with pytest.raises(ValueError, match=r"needs DAMSM encoders: set metrics.options.r_precision_damsm.text_encoder=PATH "
                                         r"and metrics.options.r_precision_damsm.image_encoder=PATH"):
        build("metric", "r_precision_damsm").check(cub)
    with pytest.raises(ValueError, match=r"give both text_encoder and image_encoder"):
        build("metric", "r_precision_damsm", text_encoder=str(tmp_path / "t.pth"))
    with pytest.raises(FileNotFoundError, match=r"r_precision_damsm.text_encoder='.*t.pth' is not a file"):
        build("metric", "r_precision_damsm", text_encoder=str(tmp_path / "t.pth"), image_encoder=str(tmp_path / "i.pth"))
    for name in ("t.pth", "i.pth"):
        (tmp_path / name).write_bytes(b"x")
    m = build("metric", "r_precision_damsm", text_encoder=str(tmp_path / "t.pth"), image_encoder=str(tmp_path / "i.pth"))
    with pytest.raises(ValueError, match=re.escape("set metrics.options.r_precision_damsm.captions_pickle=PATH")):
        m.check(SimpleNamespace(name="cub", meta={}))


def test_missing_pretrain_checkpoint_is_refused_when_built_naming_the_setting(tmp_path):
    """checkpoint=DIR without DIR/final.pt used to pass the pre-generation check and fail after every image was
    generated, naming text_encoder 'damsm' instead of the setting."""
    with pytest.raises(FileNotFoundError, match=re.escape(f"metrics.options.r_precision_damsm.checkpoint="
                                                          f"{str(tmp_path / 'damsm')!r}: no ") + ".*final.pt"):
        build("metric", "r_precision_damsm", checkpoint=str(tmp_path / "damsm"))
    (tmp_path / "damsm").mkdir()
    with pytest.raises(FileNotFoundError, match=r"r_precision_damsm.checkpoint=.*pretrain_damsm --out"):
        build("metric", "r_precision_damsm", checkpoint=str(tmp_path / "damsm"))  # a folder without final.pt
    (tmp_path / "damsm" / "final.pt").write_bytes(b"x")
    build("metric", "r_precision_damsm", checkpoint=str(tmp_path / "damsm"))  # read only when scoring


def test_evaluate_refuses_before_generating_on_real_data(tmp_path):
    from omegaconf import OmegaConf

    from ganblocks.evaluation.run import check_metrics, metrics_config

    m = metrics_config({"names": ["r_precision_damsm"]})
    with pytest.raises(ValueError, match=r"r_precision_damsm: the papers' R-precision on 'cub' needs DAMSM encoders"):
        check_metrics(m, SimpleNamespace(name="cub", meta={}))
    check_metrics(OmegaConf.merge(m, {"names": ["r_precision"]}), SimpleNamespace(name="cub", meta={}))  # others pass


def test_inception_weights_are_checked_before_generating_on_real_data(tmp_path):
    """IS/FID/KID on real data without metrics.inception_weights used to fail after every image was generated."""
    from omegaconf import OmegaConf

    from ganblocks.evaluation.run import check_inception_weights, metrics_config

    real, builtin = SimpleNamespace(name="attngan", attributes=None), SimpleNamespace(name="synthbirds", attributes=1)
    m = metrics_config({"names": ["fid", "r_precision_damsm"]})
    with pytest.raises(FileNotFoundError, match=r"set metrics.inception_weights=PATH"):
        check_inception_weights(m, real)
    with pytest.raises(FileNotFoundError, match=r"metrics.inception_weights='.*nope.pth': no such file"):
        check_inception_weights(OmegaConf.merge(m, {"inception_weights": str(tmp_path / "nope.pth")}), real)
    check_inception_weights(m, builtin)  # the built-in evaluator needs no Inception
    check_inception_weights(OmegaConf.merge(m, {"names": ["is"], "is_classifier": "cub.pt"}), real)  # IS by its classifier
    check_inception_weights(OmegaConf.merge(m, {"names": ["r_precision_damsm"]}), real)


@pytest.mark.slow
def test_released_encoders_score_as_a_direct_computation(tmp_path):
    """Official-format files (random weights) through the metric equal load_damsm_* + cosine by hand."""
    from ganblocks.compat_attngan import load_damsm_image_encoder, load_damsm_text_encoder
    from ganblocks.data import build_dataset
    from ganblocks.text.damsm import DAMSMTextEncoder, InceptionImageEncoder
    from tests.data.test_attngan_layout import WORDTOIX, write_attngan_birds

    torch.manual_seed(0)
    torch.save(DAMSMTextEncoder(vocab_size=len(WORDTOIX), word_dim=8, dim=16).state_dict(), tmp_path / "text.pth")
    torch.save(InceptionImageEncoder(dim=16, require_weights=False).state_dict(), tmp_path / "image.pth")
    ds = build_dataset("attngan", "train", 64, None, root=write_attngan_birds(tmp_path / "birds"))
    ids = torch.tensor([1, 2])
    fake = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    texts = [ds.captions[int(i)][1] for i in ids]
    samples = EvalSamples(fake=fake, fake_caption_ids=torch.arange(2), fake_class_ids=ds.class_ids[ids],
                          fake_image_ids=ids, fake_texts=texts, dataset=ds)
    metric = build("metric", "r_precision_damsm", n_images=2, splits=2, mismatched=3, text_encoder=str(tmp_path / "text.pth"),
                   image_encoder=str(tmp_path / "image.pth"))
    rec = metric(samples)["r_precision_damsm"]
    assert rec["evaluator"] == "damsm-official (text.pth, image.pth)" and rec["candidates"] == 4
    text, image = load_damsm_text_encoder(tmp_path / "text.pth"), load_damsm_image_encoder(tmp_path / "image.pth")
    with torch.no_grad():
        word_ids = [ds.meta["word_ids"][int(i)][1] for i in ids]  # captions.pickle's indices, as AttnGAN feeds them
        padded = torch.zeros(2, max(map(len, word_ids)), dtype=torch.long)
        for k, w in enumerate(word_ids):
            padded[k, : len(w)] = torch.tensor(w)
        sent = text(padded, torch.tensor([len(w) for w in word_ids]))[1]
        code = image(fake.float() / 127.5 - 1)[1]
        sent_scorer = metric.scorer(ds)
        torch.testing.assert_close(sent_scorer.sentences(texts), sent)
        torch.testing.assert_close(sent_scorer.codes(fake), code)


@pytest.fixture(scope="module")
def tiny_damsm_metric(tiny_synthbirds):
    """The metric with encoders pretrained on tiny SynthBirds through its own cached path (a quick schedule)."""
    pretrain = {"epochs": 25, "imsize": 32, "dim": 32, "width": 8, "batch_size": 8, "lr": 5e-3}
    return lambda n: build("metric", "r_precision_damsm", n_images=n, splits=10, pretrain=pretrain)


def _real(split, shuffle):
    from ganblocks.data import build_dataset
    from ganblocks.evaluation.evaluator import center_crop

    ds = build_dataset("synthbirds", split, 64, None, size="tiny")
    n, k = len(ds), ds.n_captions
    ids = torch.arange(n).repeat_interleave(k)  # every image with each of its captions
    cap = torch.randperm(n * k, generator=torch.Generator().manual_seed(3)) if shuffle else torch.arange(n * k)
    texts = [c for caps in ds.captions for c in caps]
    return EvalSamples(fake=center_crop(ds.images, 64)[ids], fake_caption_ids=cap, fake_class_ids=ds.class_ids[ids[cap]],
                       fake_image_ids=ids[cap], fake_texts=[texts[int(i)] for i in cap], dataset=ds)


@pytest.mark.slow
def test_real_images_well_above_chance_shuffled_captions_at_chance(tiny_damsm_metric):
    """Real tiny-SynthBirds images with their own captions against captions shuffled over the images.

    The quick schedule (25 short epochs on 120 images) learns the training pairs, not yet 5 unseen classes, so the
    images are the DAMSM's train split; the test split of `small` is measured in docs/evaluation.md."""
    own = _real("train", shuffle=False)
    rec = tiny_damsm_metric(len(own.fake))(own)["r_precision_damsm"]
    assert rec["value"] > 0.01 + 5 * rec["caption_se"] and rec["value"] > 0.05, rec
    blind = tiny_damsm_metric(len(own.fake))(_real("train", shuffle=True))["r_precision_damsm"]
    assert abs(blind["value"] - 0.01) < 4 * max(blind["caption_se"], 0.005), blind
    assert blind["n_samples"] == rec["n_samples"] == 1200 and blind["evaluator"].startswith("damsm-pretrained")
