"""DAMSM (AttnGAN, Xu et al., CVPR 2018, Sec. 3.2): the attention-driven image-text matching score and loss.

Words e (D x T per caption) attend over image regions v (D x N, N = H x W), for every (image, caption) pair:
    s_ij      = e_i^T v_j                                              (Eq. 7)
    s~_ij     = exp(s_ij) / sum_k exp(s_kj)       (over the words)     (Eq. 8)
    alpha_ij  = exp(g1 s~_ij) / sum_k exp(g1 s~_ik)  (over the regions) (Eq. 9)
    c_i       = sum_j alpha_ij v_j                (region context of word i)
    R(Q, D)   = log(sum_i exp(g2 cos(c_i, e_i)))^(1 / g2)               (Eq. 10)
    P(D_i|Q_i) = exp(g3 R(Q_i, D_i)) / sum_j exp(g3 R(Q_i, D_j))       (Eq. 11), P(Q_i|D_i) likewise
    L_w = -log P(D_i|Q_i) - log P(Q_i|D_i);  L_s the same with R = cos(image code, sentence)  (Eq. 12-13)

The official code (taoxugit/AttnGAN code/miscc/losses.py, `words_loss`) leaves out the power 1 / g2 in
Eq. 10, so its word logits are g3 * log(sum exp(g2 cos)); `word_score="official"` (default, for released
checkpoints) does the same, `"paper"` applies 1 / g2. Both average the cross-entropies over the batch (the
paper sums) and mask pairs of the same class except the matching one (they are not true negatives).
Padded words (position >= length) take no part. Defaults g1, g2, g3 = 4, 5, 10: code/cfg/DAMSM/bird.yml
and coco.yml (both the same); the generator weights the loss by LAMBDA (birds 5, COCO 50).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ganblocks.registry import register

WORD_SCORES = ("official", "paper")


def _check(name: str, x: Tensor, dims: int) -> None:
    if x.dim() != dims:
        raise ValueError(f"DAMSM: {name} of shape {tuple(x.shape)}; expected {dims} dimensions")


def word_mask(lengths: Tensor, length: int) -> Tensor:
    """(B,) caption lengths -> (B, T) bool, True at padded positions (t >= length)."""
    return torch.arange(length, device=lengths.device)[None, :] >= lengths.to(torch.long)[:, None]


def region_word_attention(words: Tensor, regions: Tensor, lengths: Tensor, gamma1: float = 4.0) -> tuple[Tensor, Tensor]:
    """Eq. 7-9 for every (image, caption) pair.

    Args:
        words: (B_t, D, T) word features of B_t captions; lengths (B_t,) their word counts (>= 1).
        regions: (B_i, D, H, W) region features of B_i images.
    Returns:
        context (B_i, B_t, D, T): c_i, the region context of each word for each image;
        attention (B_i, B_t, T, H, W): alpha, each word's map over the regions (rows of padded words are
        meaningless and left as computed).
    """
    _check("words", words, 3), _check("regions", regions, 4)
    if words.shape[1] != regions.shape[1]:
        raise ValueError(f"DAMSM: words have D={words.shape[1]} but regions D={regions.shape[1]}")
    b_i, d, h, w = regions.shape
    v = regions.reshape(b_i, d, h * w)
    s = torch.einsum("idn,tdw->itnw", v, words)  # (B_i, B_t, N, T)
    pad = word_mask(lengths, words.shape[2])  # (B_t, T)
    s = s.masked_fill(pad[None, :, None, :], float("-inf")).softmax(dim=3)  # Eq. 8: over the words
    alpha = (gamma1 * s).transpose(2, 3).softmax(dim=3)  # Eq. 9: over the regions -> (B_i, B_t, T, N)
    context = torch.einsum("itwn,idn->itdw", alpha, v)
    return context, alpha.reshape(b_i, words.shape[0], words.shape[2], h, w)


def word_scores(words: Tensor, regions: Tensor, lengths: Tensor, gamma1: float = 4.0, gamma2: float = 5.0,
                word_score: str = "official", eps: float = 1e-8) -> tuple[Tensor, Tensor]:
    """R(Q_i, D_t) of Eq. 10 for every image i and caption t: -> scores (B_i, B_t), attention (B_i, B_t, T, H, W).

    `word_score="official"` omits the 1 / g2 power (as the official code); "paper" applies it.
    """
    if word_score not in WORD_SCORES:
        raise ValueError(f"DAMSM: word_score={word_score!r}; expected one of {WORD_SCORES}")
    context, attention = region_word_attention(words, regions, lengths, gamma1)
    e = words[None]  # (1, B_t, D, T)
    cos = (context * e).sum(2) / (context.norm(dim=2) * e.norm(dim=2)).clamp_min(eps)  # (B_i, B_t, T)
    cos = cos.masked_fill(word_mask(lengths, words.shape[2])[None], float("-inf"))
    scores = torch.logsumexp(gamma2 * cos, dim=2)
    return (scores / gamma2 if word_score == "paper" else scores), attention


def sentence_scores(image_code: Tensor, sentence: Tensor, eps: float = 1e-8) -> Tensor:
    """cos(image code i, sentence t): (B_i, D), (B_t, D) -> (B_i, B_t)."""
    _check("image_code", image_code, 2), _check("sentence", sentence, 2)
    dots = image_code @ sentence.t()
    return dots / (image_code.norm(dim=1)[:, None] * sentence.norm(dim=1)[None, :]).clamp_min(eps)


def matching_losses(scores: Tensor, gamma3: float, class_ids: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Eq. 11-13 over a (B, B) image x caption score matrix whose diagonal holds the matching pairs.

    Returns (loss0, loss1): mean -log P(D_i|Q_i) (softmax over captions for each image) and mean
    -log P(Q_i|D_i) (over images for each caption). Off-diagonal pairs of the same class are masked out.
    """
    if scores.dim() != 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(f"DAMSM: scores of shape {tuple(scores.shape)}; expected a square (B, B) matrix")
    logits = gamma3 * scores
    if class_ids is not None:
        same = class_ids[:, None] == class_ids[None, :]
        logits = logits.masked_fill(same & ~torch.eye(len(logits), dtype=torch.bool, device=logits.device),
                                    float("-inf"))
    target = torch.arange(len(logits), device=logits.device)
    return F.cross_entropy(logits, target), F.cross_entropy(logits.t(), target)


@register("damsm", "loss")
class DAMSMLoss:
    """DAMSM loss: word terms (attention-driven, both directions) + sentence terms (both directions) -> scalar.

    `__call__(regions (B, D, H, W), image_code (B, D), words (B, D, T), sentence (B, D), lengths (B,),
    class_ids (B,) | None) -> (loss, stats)`: loss = w_loss0 + w_loss1 + s_loss0 + s_loss1 (as
    code/pretrain_DAMSM.py sums them); the AttnGAN generator adds it times its lambda. stats holds the four
    terms (detached) and `attention`: (B, T, H, W) each image's maps for its own caption's words.

    Args:
        gamma1: attention sharpness over regions (Eq. 9), 4.0 (bird.yml).
        gamma2: weight of the most relevant word (Eq. 10), 5.0.
        gamma3: smoothing of the posteriors (Eq. 11), 10.0.
        word_score: "official" (no 1 / gamma2 power, the released encoders) or "paper".
    """

    def __init__(self, gamma1: float = 4.0, gamma2: float = 5.0, gamma3: float = 10.0,
                 word_score: str = "official") -> None:
        for name, value in (("gamma1", gamma1), ("gamma2", gamma2), ("gamma3", gamma3)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"DAMSM: {name}={value!r}; expected a positive number (bird.yml: 4, 5, 10)")
        if word_score not in WORD_SCORES:
            raise ValueError(f"DAMSM: word_score={word_score!r}; expected one of {WORD_SCORES}")
        self.gamma1, self.gamma2, self.gamma3, self.word_score = float(gamma1), float(gamma2), float(gamma3), word_score

    def __call__(self, regions: Tensor, image_code: Tensor, words: Tensor, sentence: Tensor, lengths: Tensor,
                 class_ids: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        if not (len(regions) == len(image_code) == len(words) == len(sentence) == len(lengths)):
            raise ValueError("DAMSM: regions, image_code, words, sentence and lengths must share the batch size; got "
                             f"{[len(x) for x in (regions, image_code, words, sentence, lengths)]}")
        w_scores, attention = word_scores(words, regions, lengths, self.gamma1, self.gamma2, self.word_score)
        w0, w1 = matching_losses(w_scores, self.gamma3, class_ids)
        s0, s1 = matching_losses(sentence_scores(image_code, sentence), self.gamma3, class_ids)
        idx = torch.arange(len(regions), device=regions.device)
        stats = {"w_loss0": w0.detach(), "w_loss1": w1.detach(), "s_loss0": s0.detach(), "s_loss1": s1.detach(),
                 "attention": attention[idx, idx].detach()}
        return w0 + w1 + s0 + s1, stats
