"""Chapter 07's reference solution against independent oracles: PyTorch built-ins, the paper's
formula written as loops, and finite differences."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from autograder.reference import load_reference


@pytest.fixture(scope="module")
def ref():
    return load_reference("07_self_attention")


def random_mask(t_q, t_k, generator):
    mask = torch.rand(t_q, t_k, generator=generator) > 0.4
    mask[:, 0] = True  # every query keeps a key
    return mask


@pytest.mark.parametrize("shape", [((), 1, 1, 3, 3), ((2,), 5, 5, 8, 8), ((2, 3), 4, 9, 16, 5)])
@pytest.mark.parametrize("masked", [False, True])
def test_attention_matches_torch(ref, shape, masked):
    batch, t_q, t_k, d_k, d_v = shape
    g = torch.Generator().manual_seed(0)
    q = torch.randn(*batch, t_q, d_k, generator=g, dtype=torch.float64)
    k = torch.randn(*batch, t_k, d_k, generator=g, dtype=torch.float64)
    v = torch.randn(*batch, t_k, d_v, generator=g, dtype=torch.float64)
    mask = random_mask(t_q, t_k, g) if masked else None
    out, weights = ref["scaled_dot_product_attention"](q, k, v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    # With the identity as values, attention returns its own weights: an oracle for the weights.
    eye = torch.eye(t_k, dtype=torch.float64).expand(*batch, t_k, t_k)
    torch.testing.assert_close(weights, F.scaled_dot_product_attention(q, k, eye, attn_mask=mask))
    if masked:
        assert (weights[..., ~mask] == 0).all()


def test_attention_gradients_match_finite_differences(ref):
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 4, 3, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3))
    mask = random_mask(4, 4, g)
    assert torch.autograd.gradcheck(lambda q, k, v: ref["scaled_dot_product_attention"](q, k, v, mask)[0], (q, k, v))


def test_attention_is_stable_for_large_scores(ref):
    q = torch.full((1, 2, 4), 100.0)
    k = torch.full((1, 3, 4), 100.0)
    out, weights = ref["scaled_dot_product_attention"](q, k, torch.randn(1, 3, 2))
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()


@pytest.mark.parametrize("size", [1, 2, 7, 33])
def test_causal_mask_matches_torch(ref, size):
    assert torch.equal(ref["causal_mask"](size), nn.Transformer.generate_square_subsequent_mask(size) == 0)


def twin_of(mha):
    d_model = mha.W_q.in_features
    twin = nn.MultiheadAttention(d_model, mha.num_heads, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        twin.in_proj_weight.copy_(torch.cat([mha.W_q.weight, mha.W_k.weight, mha.W_v.weight]))
        twin.in_proj_bias.copy_(torch.cat([mha.W_q.bias, mha.W_k.bias, mha.W_v.bias]))
        twin.out_proj.weight.copy_(mha.W_o.weight)
        twin.out_proj.bias.copy_(mha.W_o.bias)
    return twin


@pytest.mark.parametrize("d_model, heads, t_q, t_k", [(8, 1, 3, 3), (16, 4, 5, 5), (24, 3, 4, 7), (32, 8, 6, 2)])
@pytest.mark.parametrize("masked", [False, True])
def test_multi_head_attention_matches_torch(ref, d_model, heads, t_q, t_k, masked):
    torch.manual_seed(0)
    mha = ref["MultiHeadAttention"](d_model, heads).double()
    twin = twin_of(mha)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, t_q, d_model, generator=g, dtype=torch.float64)
    memory = torch.randn(3, t_k, d_model, generator=g, dtype=torch.float64)
    mask = random_mask(t_q, t_k, g) if masked else None
    with torch.no_grad():
        out, weights = mha(x, memory, memory, mask)
        twin_out, twin_weights = twin(x, memory, memory, attn_mask=None if mask is None else ~mask,
                                      average_attn_weights=False)
    torch.testing.assert_close(out, twin_out)
    torch.testing.assert_close(weights, twin_weights)


@pytest.mark.parametrize("positions, d_model", [(1, 2), (20, 6), (100, 32)])
def test_positional_encoding_matches_the_paper(ref, positions, d_model):
    pe = ref["sinusoidal_positional_encoding"](positions, d_model).double()
    for pos in range(positions):
        for i in range(d_model // 2):
            angle = pos / 10000 ** (2 * i / d_model)
            assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-5)
            assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-5)
