"""Evaluation images do not depend on how they are batched: every random input is drawn up front."""

from __future__ import annotations

import pytest
import torch

from ganblocks.evaluation.sampling import generate
from ganblocks.models.presets import build_generator

VARIANTS = {
    "none": ("none", {}),
    "gaussian": ("gaussian", {}),
    "mixture": ("mixture", {}),
    "mixture_learned": ("mixture", {"selection": "learned"}),
}


def small_two_stage(conditioning: str, kwargs: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    common = dict(text_dim=12, noise_dim=8, condition_dim=6, gf_dim=4, conditioning=conditioning,
                  conditioning_kwargs=kwargs)
    stage1 = build_generator(1, **common, out_size=16)
    G = build_generator(2, **common, out_size=32, stage1=stage1)
    with torch.no_grad():  # BatchNorm running statistics away from (0, 1), so eval mode is not trivial
        for m in G.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return G.eval()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_images_are_the_same_for_any_evaluation_batch_size(variant):
    G = small_two_stage(*VARIANTS[variant])
    text = torch.randn(7, 12, generator=torch.Generator().manual_seed(1))
    big, ids, big_stage1 = generate(G, text, 2, seed=5, batch_size=64, keep_stage1=True)
    small, _, small_stage1 = generate(G, text, 2, seed=5, batch_size=3, keep_stage1=True)
    assert big.shape == (14, 3, 32, 32) and ids.tolist() == [k for k in range(7) for _ in range(2)]
    assert torch.equal(big, small) and torch.equal(big_stage1, small_stage1)
    other, _, _ = generate(G, text, 2, seed=6, batch_size=64)
    if variant != "none":  # the draws do matter: another seed, other images
        assert not torch.equal(big, other)


def test_mixture_component_choice_follows_the_draws_not_the_batch():
    G = small_two_stage("mixture", {"num_components": 4})
    from ganblocks.blocks.conditioning import conditioning_blocks, draw_all, fixed_draws

    draws = draw_all(G, 10, torch.Generator().manual_seed(0))
    assert [sorted(d) for d in draws] == [["component", "eps"], ["component", "eps"]]
    block = conditioning_blocks(G)[0]
    text = torch.randn(10, 12)
    with fixed_draws(G, draws, slice(0, 10), "cpu"):
        whole = block(text).code
    with fixed_draws(G, draws, slice(4, 7), "cpu"):
        part = block(text[4:7]).code
    assert torch.allclose(whole[4:7], part, atol=1e-6)
    assert block.draws is None  # cleared after the block
