"""Chapter 01's reference solution against independent oracles: brute-force counting, exhaustive
sums over the vocabulary, coursekit.ngrams (vectorised, written separately), PyTorch's cross-entropy,
and the frequencies of many draws."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder.reference import load_reference
from coursekit import ngrams


@pytest.fixture(scope="module")
def ref():
    return load_reference("01_language_models")


def random_tokens(seed, length, alphabet="abcde"):
    rng = random.Random(seed)
    weights = list(range(len(alphabet), 0, -1))
    return rng.choices(list(alphabet), weights=weights, k=length)


def brute_counts(tokens, n):
    """Every window, compared with every other: no dictionary arithmetic at all."""
    windows = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return {w: sum(1 for v in windows if v == w) for w in set(windows)}


@pytest.mark.parametrize("n", [1, 2, 3, 5])
@pytest.mark.parametrize("seed", [0, 1])
def test_count_ngrams_matches_brute_force_and_coursekit(ref, n, seed):
    tokens = random_tokens(seed, 120)
    counts = ref["count_ngrams"](tokens, n)
    assert counts == brute_counts(tokens, n)
    ids = [ord(t) - ord("a") for t in tokens]
    model = ngrams.NGramModel(ids, 5, max_order=5)
    for gram, c in counts.items():
        assert model.count([ord(t) - ord("a") for t in gram]) == c
    assert model.num[n] == len(counts)


def test_count_ngrams_on_text(ref):
    text = "o gato come o rato e o rato come o queijo"
    assert ref["count_ngrams"](text, 2) == brute_counts(text, 2)
    assert ref["count_ngrams"](text, len(text) + 1) == {}


@pytest.mark.parametrize("k", [0.0, 0.01, 0.5, 1.0, 7.0])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_add_k_is_a_distribution_and_matches_coursekit(ref, k, order):
    train = random_tokens(2, 200)
    vocab = list("abcdefg")  # two tokens never seen in training
    counts = ref["count_ngrams"](train, order)
    model = ngrams.NGramModel([vocab.index(t) for t in train], len(vocab), max_order=order)
    contexts = {tuple(c) for c in (random_tokens(s, order - 1, "abcdefg") for s in range(12))}
    for context in contexts:
        probs = [ref["ngram_probability"](counts, context, w, len(vocab), k=k) for w in vocab]
        assert sum(probs) == pytest.approx(1.0, abs=1e-12), context
        expected = model.next_token_distribution([vocab.index(t) for t in context], order, method="add_k", k=k)
        np.testing.assert_allclose(probs, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_interpolation_is_a_distribution_and_matches_coursekit(ref, order):
    train, held_out = random_tokens(3, 300), random_tokens(4, 50, "abcdef")
    vocab = list("abcdef")
    counts = [ref["count_ngrams"](train, j) for j in range(1, order + 1)]
    lambdas = np.random.default_rng(order).dirichlet(np.ones(order + 1))
    model = ngrams.NGramModel([vocab.index(t) for t in train], len(vocab), max_order=order)
    scored = model.probabilities([vocab.index(t) for t in held_out], order, method="interp", lambdas=lambdas)
    for i, token in enumerate(held_out):
        context = tuple(held_out[:i])
        p = ref["interpolated_probability"](counts, context, token, list(lambdas), len(vocab))
        assert p == pytest.approx(scored[i], rel=1e-12)
        total = sum(ref["interpolated_probability"](counts, context, w, list(lambdas), len(vocab)) for w in vocab)
        assert total == pytest.approx(1.0, abs=1e-12)


def test_perplexity_of_a_uniform_model_is_v(ref):
    train = random_tokens(5, 100)
    counts = [ref["count_ngrams"](train, j) for j in (1, 2)]
    for v in (5, 17, 1000):
        assert ref["perplexity"](random_tokens(6, 30), counts, [1.0, 0.0, 0.0], v) == pytest.approx(v)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_perplexity_is_exp_of_torch_cross_entropy(ref, order):
    vocab = list("abcde")
    train, held_out = random_tokens(7, 250), random_tokens(8, 40)
    counts = [ref["count_ngrams"](train, j) for j in range(1, order + 1)]
    lambdas = list(np.random.default_rng(0).dirichlet(np.ones(order + 1)))
    model = ngrams.NGramModel([vocab.index(t) for t in train], len(vocab), max_order=order)
    ids = [vocab.index(t) for t in held_out]
    # logits: log P(w | context) for every w, from coursekit's distribution, one row per position
    logits = torch.tensor(np.log(np.stack([
        model.next_token_distribution(ids[:i], order, method="interp", lambdas=lambdas) for i in range(len(ids))])))
    want = math.exp(F.cross_entropy(logits, torch.tensor(ids)).item())
    assert ref["perplexity"](held_out, counts, lambdas, len(vocab)) == pytest.approx(want, rel=1e-10)
    assert want == pytest.approx(math.exp(model.nll(ids, order, method="interp", lambdas=lambdas) / len(ids)))


def test_perplexity_grows_on_text_the_model_did_not_see(ref):
    train = random_tokens(9, 300)
    counts = [ref["count_ngrams"](train, j) for j in (1, 2, 3)]
    lambdas = [0.01, 0.09, 0.3, 0.6]
    on_train = ref["perplexity"](train[:60], counts, lambdas, 5)
    shuffled = random_tokens(10, 60, "edcba")  # other statistics: the rare symbols frequent
    assert 1 < on_train < ref["perplexity"](shuffled, counts, lambdas, 5)


def test_sampling_matches_the_inverse_cdf_and_the_frequencies(ref):
    g = torch.Generator().manual_seed(0)
    probs = torch.tensor([0.1, 0.0, 0.25, 0.05, 0.4, 0.2], dtype=torch.float64)
    us = torch.rand(30_000, generator=g, dtype=torch.float64)
    draws = torch.tensor([ref["sample_next_token"](probs.tolist(), u) for u in us.tolist()])
    assert torch.equal(draws, torch.searchsorted(probs.cumsum(0), us, right=True))
    observed = torch.bincount(draws, minlength=6).double()
    expected = 30_000 * probs
    nonzero = probs > 0
    chi2 = ((observed - expected)[nonzero] ** 2 / expected[nonzero]).sum().item()
    assert observed[1] == 0
    assert chi2 < 18.5  # 99.9% quantile of chi-square with 4 degrees of freedom


def test_sampling_never_draws_a_zero_and_handles_rounding(ref):
    assert ref["sample_next_token"]([0.0, 0.0, 1.0], 0.0) == 2
    assert ref["sample_next_token"]([0.1] * 10 + [0.0], 0.9999999999999999) == 9
    for u in np.linspace(0, 1, 101, endpoint=False):
        assert ref["sample_next_token"]([0.5, 0.0, 0.5], float(u)) in (0, 2)


def test_sampling_agrees_with_coursekit_generation(ref):
    """coursekit's sampler uses the same procedure: with the same u's it draws the same tokens."""
    train = [ord(t) - 97 for t in random_tokens(11, 300)]
    model = ngrams.NGramModel(train, 5, max_order=3)
    drawn = model.sample(50, 3, seed=3, method="add_k", k=0.1)
    us = np.random.default_rng(3).random(50)
    history = []
    for u in us:
        dist = model.next_token_distribution(history, 3, method="add_k", k=0.1)
        history.append(ref["sample_next_token"](dist.tolist(), float(u)))
    assert history == drawn
