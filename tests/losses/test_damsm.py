"""DAMSM loss against a direct, loop-by-loop computation of AttnGAN's Eq. 7-13 (paper, Sec. 3.2) on small
tensors: plain Python floats, no matrix products, written from the paper, not from the implementation."""

from __future__ import annotations

import math

import pytest
import torch

from ganblocks.losses.damsm import DAMSMLoss, region_word_attention
from ganblocks.registry import build


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return dot / max(math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)), 1e-8)


def loop_attention(e: list[list[float]], v: list[list[float]], g1: float) -> list[list[float]]:
    """alpha[w][n] for words e[w] (L x D) and regions v[n] (N x D): Eq. 7-9."""
    s = [[sum(e[w][d] * v[n][d] for d in range(len(v[n]))) for n in range(len(v))] for w in range(len(e))]
    s_bar = [[math.exp(s[w][n]) / sum(math.exp(s[k][n]) for k in range(len(e))) for n in range(len(v))]
             for w in range(len(e))]
    return [[math.exp(g1 * s_bar[w][n]) / sum(math.exp(g1 * s_bar[w][m]) for m in range(len(v)))
             for n in range(len(v))] for w in range(len(e))]


def loop_relevance(e, v, g1, g2, paper):
    """R(Q, D) of Eq. 10 (with the 1 / g2 power when `paper`)."""
    alpha = loop_attention(e, v, g1)
    total = 0.0
    for w in range(len(e)):
        c = [sum(alpha[w][n] * v[n][d] for n in range(len(v))) for d in range(len(e[w]))]
        total += math.exp(g2 * _cos(c, e[w]))
    return math.log(total) / g2 if paper else math.log(total)


def loop_nll(r: list[list[float]], g3: float, classes: list[int] | None) -> tuple[float, float]:
    """Mean -log P(D_i|Q_i) and mean -log P(Q_i|D_i) (Eq. 11-13); r[i][j] = R(image i, caption j);
    pairs of the same class other than (i, i) are left out of the sums."""
    b = len(r)
    keep = [[i == j or classes is None or classes[i] != classes[j] for j in range(b)] for i in range(b)]
    l0 = -sum(g3 * r[i][i] - math.log(sum(math.exp(g3 * r[i][j]) for j in range(b) if keep[i][j])) for i in range(b))
    l1 = -sum(g3 * r[i][i] - math.log(sum(math.exp(g3 * r[j][i]) for j in range(b) if keep[j][i])) for i in range(b))
    return l0 / b, l1 / b


def loop_damsm(regions, image_code, words, sentence, lengths, classes, g1, g2, g3, paper):
    code = image_code
    b, d = code.shape
    v = [[[regions[i, k].flatten()[n].item() for k in range(d)] for n in range(regions[i, 0].numel())] for i in range(b)]
    e = [[[words[t, k, w].item() for k in range(d)] for w in range(int(lengths[t]))] for t in range(b)]
    r_w = [[loop_relevance(e[t], v[i], g1, g2, paper) for t in range(b)] for i in range(b)]
    r_s = [[_cos(code[i].tolist(), sentence[t].tolist()) for t in range(b)] for i in range(b)]
    return loop_nll(r_w, g3, classes), loop_nll(r_s, g3, classes)


@pytest.fixture()
def batch():
    gen = torch.Generator().manual_seed(3)
    b, d = 4, 5
    return dict(regions=torch.randn(b, d, 2, 3, generator=gen), image_code=torch.randn(b, d, generator=gen),
                words=torch.randn(b, d, 4, generator=gen), sentence=torch.randn(b, d, generator=gen),
                lengths=torch.tensor([4, 2, 3, 1]))


@pytest.mark.parametrize("word_score", ["official", "paper"])
@pytest.mark.parametrize("classes", [None, [0, 1, 0, 2]])
def test_damsm_loss_equals_the_paper_formulas(batch, word_score, classes):
    loss_fn = DAMSMLoss(gamma1=4.0, gamma2=5.0, gamma3=10.0, word_score=word_score)
    class_ids = None if classes is None else torch.tensor(classes)
    loss, stats = loss_fn(**batch, class_ids=class_ids)
    (w0, w1), (s0, s1) = loop_damsm(**batch, classes=classes, g1=4.0, g2=5.0, g3=10.0,
                                    paper=word_score == "paper")
    for key, expected in (("w_loss0", w0), ("w_loss1", w1), ("s_loss0", s0), ("s_loss1", s1)):
        assert stats[key].item() == pytest.approx(expected, rel=1e-5, abs=1e-6), key
    assert loss.item() == pytest.approx(w0 + w1 + s0 + s1, rel=1e-5)
    assert len({round(x, 4) for x in (w0, w1, s0, s1)}) == 4  # the four terms differ: none is a copy


def test_gammas_change_the_loss_and_official_differs_from_paper(batch):
    base = DAMSMLoss()(**batch)[0].item()
    assert DAMSMLoss(gamma1=1.0)(**batch)[0].item() != pytest.approx(base)
    assert DAMSMLoss(gamma2=2.0)(**batch)[0].item() != pytest.approx(base)
    assert DAMSMLoss(gamma3=3.0)(**batch)[0].item() != pytest.approx(base)
    assert DAMSMLoss(word_score="paper")(**batch)[0].item() != pytest.approx(base)


def test_attention_maps_match_the_loops_and_padded_words_are_ignored(batch):
    context, alpha = region_word_attention(batch["words"], batch["regions"], batch["lengths"], gamma1=4.0)
    d = batch["words"].shape[1]
    for i, t in ((0, 0), (2, 1), (3, 2)):
        v = [[batch["regions"][i, k].flatten()[n].item() for k in range(d)] for n in range(6)]
        e = [[batch["words"][t, k, w].item() for k in range(d)] for w in range(int(batch["lengths"][t]))]
        expected = torch.tensor(loop_attention(e, v, 4.0)).view(len(e), 2, 3)
        torch.testing.assert_close(alpha[i, t, : len(e)], expected.float(), rtol=1e-5, atol=1e-6)
    # Changing a padded word changes nothing; changing a real one does.
    words = batch["words"].clone()
    words[3, :, 1:] = 100.0  # caption 3 has one word
    loss_fn = DAMSMLoss()
    assert loss_fn(**{**batch, "words": words})[0].item() == pytest.approx(loss_fn(**batch)[0].item(), rel=1e-6)
    words[3, :, 0] += 1.0
    assert loss_fn(**{**batch, "words": words})[0].item() != pytest.approx(loss_fn(**batch)[0].item(), rel=1e-6)


def test_gradients_reach_every_input_and_the_stats_hold_own_caption_maps(batch):
    inputs = {k: (v.clone().requires_grad_(True) if v.is_floating_point() else v) for k, v in batch.items()}
    loss, stats = build("damsm", "loss")(**inputs)
    loss.backward()
    for key in ("regions", "image_code", "words", "sentence"):
        assert inputs[key].grad is not None and inputs[key].grad.abs().sum() > 0, key
    assert stats["attention"].shape == (4, 4, 2, 3)
    sums = stats["attention"].sum(dim=(2, 3))  # each word's map sums to 1 over the regions
    torch.testing.assert_close(sums, torch.ones_like(sums))


def test_bad_settings_and_shapes_are_named(batch):
    with pytest.raises(ValueError, match=r"gamma1=0"):
        DAMSMLoss(gamma1=0)
    with pytest.raises(ValueError, match="word_score='exact'"):
        DAMSMLoss(word_score="exact")
    with pytest.raises(ValueError, match="share the batch size"):
        DAMSMLoss()(**{**batch, "sentence": batch["sentence"][:3]})
    with pytest.raises(ValueError, match="words have D=5 but regions D=3"):
        DAMSMLoss()(**{**batch, "regions": batch["regions"][:, :3]})
