"""Word-context attention of AttnGAN's later stages (taoxugit/AttnGAN code/GlobalAttention.py,
GlobalAttentionGeneral; paper Eq. 2).

Each image sub-region j (query h_j, a column of the C x N feature map, N = H x W) attends over the words:
    e'_i    = U e_i                       (`conv_context`, a 1x1 conv without bias: D -> C)
    beta_ji = exp(h_j^T e'_i) / sum_k exp(h_j^T e'_k)   (softmax over the words; padded words masked out)
    c_j     = sum_i beta_ji e'_i          (the word-context vector of region j)
so the block maps features (B, C, H, W) and words (B, D, T) to the context (B, C, H, W) and the attention
maps beta (B, T, H, W) (each word's weight on every region, the maps AttnGAN draws under its images).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class WordAttention(nn.Module):
    """GlobalAttentionGeneral: features (B, C, H, W), words (B, D, T), mask (B, T) -> context (B, C, H, W), maps (B, T, H, W).

    `mask` is True at padded words (AttnGAN: `captions == 0`), which get no weight; None attends to all T.
    A mask longer than T is cut to T (as the official trainer does).

    Args:
        channels: C (idf), the image feature channels.
        word_dim: D (cdf), the word feature size.
    """

    def __init__(self, *, channels: int, word_dim: int) -> None:
        super().__init__()
        for name, value in (("channels", channels), ("word_dim", word_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"WordAttention: {name}={value!r}; expected a positive int")
        self.channels, self.word_dim = channels, word_dim
        self.conv_context = nn.Conv2d(word_dim, channels, kernel_size=1, bias=False)

    def forward(self, features: Tensor, words: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if features.dim() != 4 or features.shape[1] != self.channels:
            raise ValueError(f"WordAttention: features of shape {tuple(features.shape)}; "
                             f"expected (B, {self.channels}, H, W)")
        if words.dim() != 3 or words.shape[1] != self.word_dim or words.shape[0] != features.shape[0]:
            raise ValueError(f"WordAttention: words of shape {tuple(words.shape)}; "
                             f"expected ({features.shape[0]}, {self.word_dim}, T)")
        b, c, h, w = features.shape
        source = self.conv_context(words.unsqueeze(3)).squeeze(3)  # (B, C, T)
        scores = torch.bmm(features.reshape(b, c, h * w).transpose(1, 2), source)  # (B, N, T)
        if mask is not None:
            mask = mask[:, : words.shape[2]]
            if mask.shape != (b, words.shape[2]):
                raise ValueError(f"WordAttention: mask of shape {tuple(mask.shape)}; expected ({b}, >= {words.shape[2]})")
            scores = scores.masked_fill(mask.bool()[:, None, :], float("-inf"))
        beta = scores.softmax(dim=2).transpose(1, 2)  # (B, T, N)
        context = torch.bmm(source, beta)  # (B, C, N)
        return context.reshape(b, c, h, w), beta.reshape(b, -1, h, w)
