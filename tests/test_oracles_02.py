"""Chapter 02's reference solution against independent oracles: PyTorch built-ins, formulas written
as loops over plain Python numbers, brute-force enumeration, and finite differences."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from autograder.reference import load_reference


@pytest.fixture(scope="module")
def ref():
    return load_reference("02_word_embeddings")


# --------------------------------------------------------------------------- cosine_similarity


@pytest.mark.parametrize("n, m, d", [(1, 1, 1), (3, 5, 4), (10, 20, 64)])
def test_cosine_similarity_matches_torch(ref, n, m, d):
    g = torch.Generator().manual_seed(n * m * d)
    A = torch.randn(n, d, generator=g, dtype=torch.float64)
    B = torch.randn(m, d, generator=g, dtype=torch.float64)
    A[0] = 0  # a zero vector: 0 with everything, as in PyTorch
    got = ref["cosine_similarity"](A, B)
    assert got.shape == (n, m)
    torch.testing.assert_close(got, F.cosine_similarity(A[:, None, :], B[None, :, :], dim=-1))


def test_cosine_similarity_by_the_definition(ref):
    g = torch.Generator().manual_seed(0)
    A, B = torch.randn(4, 7, generator=g, dtype=torch.float64), torch.randn(3, 7, generator=g, dtype=torch.float64)
    got = ref["cosine_similarity"](A, B)
    for i in range(4):
        for j in range(3):
            a, b = A[i].tolist(), B[j].tolist()
            dot = sum(x * y for x, y in zip(a, b))
            cos = dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))
            assert got[i, j].item() == pytest.approx(cos, abs=1e-12)


# --------------------------------------------------------------------------- ppmi


def ppmi_by_loops(counts: list[list[float]], alpha: float) -> list[list[float]]:
    rows, cols = len(counts), len(counts[0])
    total = sum(map(sum, counts))
    row_sums = [sum(r) for r in counts]
    col_sums = [sum(counts[w][c] for w in range(rows)) for c in range(cols)]
    smoothed = [s ** alpha for s in col_sums]
    out = [[0.0] * cols for _ in range(rows)]
    for w in range(rows):
        for c in range(cols):
            if counts[w][c] > 0:
                p_wc = counts[w][c] / total
                p_w = row_sums[w] / total
                p_c = smoothed[c] / sum(smoothed)
                out[w][c] = max(0.0, math.log(p_wc / (p_w * p_c)))
    return out


@pytest.mark.parametrize("alpha", [1.0, 0.75, 0.5])
@pytest.mark.parametrize("shape", [(1, 1), (4, 6), (12, 9)])
def test_ppmi_matches_the_formula_written_as_loops(ref, alpha, shape):
    g = torch.Generator().manual_seed(sum(shape))
    counts = torch.randint(0, 5, shape, generator=g).double()
    counts[0, 0] = 3  # at least one count
    if shape[0] > 2:
        counts[1] = 0     # a word that never occurs
        counts[:, -1] = 0  # a context that never occurs
    got = ref["ppmi"](counts, alpha=alpha)
    torch.testing.assert_close(got, torch.tensor(ppmi_by_loops(counts.tolist(), alpha), dtype=torch.float64))


def test_ppmi_agrees_with_the_chapter(ref):
    """coursekit's ppmi_matrix (what the chapter's vectors come from) computes the same thing."""
    from coursekit.embeddings import ppmi_matrix
    g = torch.Generator().manual_seed(3)
    counts = torch.randint(0, 7, (15, 15), generator=g).double()
    counts = counts + counts.T
    torch.testing.assert_close(ref["ppmi"](counts, alpha=0.75), ppmi_matrix(counts, alpha=0.75))


# --------------------------------------------------------------------------- skipgram_pairs


@pytest.mark.parametrize("length", [0, 1, 2, 5, 13])
@pytest.mark.parametrize("window", [0, 1, 2, 4, 20])
def test_skipgram_pairs_match_brute_force(ref, length, window):
    g = torch.Generator().manual_seed(length * 31 + window)
    tokens = torch.randint(0, 4, (length,), generator=g).tolist()  # many repeats
    brute = [(tokens[i], tokens[j]) for i in range(length) for j in range(length) if 0 < abs(i - j) <= window]
    assert ref["skipgram_pairs"](tokens, window) == brute


def test_skipgram_pairs_agree_with_the_training_pairs_of_the_chapter(ref):
    """coursekit's vectorised pairs (each center draws its window from 1..window) are a sub-multiset
    of the exercise's pairs, and the same multiset when the window is 1 (the only draw)."""
    from collections import Counter

    from coursekit.embeddings import skipgram_training_pairs
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 5, (40,), generator=g)
    for window in (1, 3):
        exercise = Counter(ref["skipgram_pairs"](ids.tolist(), window))
        chapter = Counter(map(tuple, skipgram_training_pairs(ids, window, g).tolist()))
        assert not chapter - exercise
        if window == 1:
            assert chapter == exercise


# --------------------------------------------------------------------------- negative_sampling_loss


def loss_by_loops(v, u, u_neg) -> float:
    total = 0.0
    for b in range(len(v)):
        score = sum(x * y for x, y in zip(u[b], v[b]))
        total += -math.log(1 / (1 + math.exp(-score)))
        for k in range(len(u_neg[b])):
            score = sum(x * y for x, y in zip(u_neg[b][k], v[b]))
            total += -math.log(1 / (1 + math.exp(score)))
    return total / len(v)


@pytest.mark.parametrize("B, K, d", [(1, 1, 1), (3, 5, 4), (16, 10, 32), (4, 0, 8)])
def test_negative_sampling_loss_matches_loops_and_bce(ref, B, K, d):
    g = torch.Generator().manual_seed(B + K + d)
    v = torch.randn(B, d, generator=g, dtype=torch.float64)
    u = torch.randn(B, d, generator=g, dtype=torch.float64)
    u_neg = torch.randn(B, K, d, generator=g, dtype=torch.float64)
    got = ref["negative_sampling_loss"](v, u, u_neg)
    assert got.dim() == 0
    assert got.item() == pytest.approx(loss_by_loops(v.tolist(), u.tolist(), u_neg.tolist()), abs=1e-10)
    scores = torch.cat([(u * v).sum(-1, keepdim=True), torch.einsum("bkd,bd->bk", u_neg, v)], dim=1)
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1
    bce = F.binary_cross_entropy_with_logits(scores, labels, reduction="sum") / B
    torch.testing.assert_close(got, bce)


def test_negative_sampling_loss_gradients_match_finite_differences(ref):
    g = torch.Generator().manual_seed(5)
    inputs = (torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True),
              torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True),
              torch.randn(3, 2, 4, generator=g, dtype=torch.float64, requires_grad=True))
    assert torch.autograd.gradcheck(ref["negative_sampling_loss"], inputs)


def test_negative_sampling_loss_is_stable_in_float32(ref):
    v = torch.full((2, 8), 10.0)
    loss = ref["negative_sampling_loss"](v, -v, v[:, None, :].repeat(1, 4, 1))  # scores -800 and +800
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(5 * 800.0, rel=1e-6)


def test_negative_sampling_loss_is_the_chapter_model_loss(ref):
    """coursekit's SkipGram (what the chapter trains) returns the same loss on its own vectors."""
    from coursekit.embeddings import SkipGram
    torch.manual_seed(0)
    model = SkipGram(20, 6).double()
    torch.nn.init.normal_(model.context.weight)
    g = torch.Generator().manual_seed(1)
    center, context = torch.randint(0, 20, (7,), generator=g), torch.randint(0, 20, (7,), generator=g)
    negatives = torch.randint(0, 20, (7, 3), generator=g)
    with torch.no_grad():
        expected = ref["negative_sampling_loss"](model.center(center), model.context(context),
                                                 model.context(negatives))
        torch.testing.assert_close(model(center, context, negatives), expected)


# --------------------------------------------------------------------------- most_similar


def brute_force_top_k(embeddings, words, word, k):
    i = words.index(word)
    sims = F.cosine_similarity(embeddings[i:i + 1], embeddings, dim=-1).tolist()
    order = sorted((j for j in range(len(words)) if j != i), key=lambda j: (-sims[j], j))[:k]
    return [sims[j] for j in order], [words[j] for j in order]


@pytest.mark.parametrize("V, d, k", [(2, 3, 1), (8, 2, 3), (40, 16, 10), (6, 4, 50)])
def test_most_similar_matches_brute_force(ref, V, d, k):
    g = torch.Generator().manual_seed(V * d + k)
    words = [f"w{i}" for i in range(V)]
    embeddings = torch.randn(V, d, generator=g, dtype=torch.float64)
    for word in words[:3]:
        sims, neighbours = ref["most_similar"](word, embeddings, words, k)
        want_sims, want_words = brute_force_top_k(embeddings, words, word, k)
        assert neighbours == want_words
        torch.testing.assert_close(sims, torch.tensor(want_sims, dtype=torch.float64))


def test_most_similar_breaks_ties_by_position(ref):
    g = torch.Generator().manual_seed(9)
    base = torch.randn(3, 5, generator=g, dtype=torch.float64)
    # rows 3, 4, 5 are copies of rows 1, 0, 1 scaled by powers of two: exactly equal cosines
    embeddings = torch.cat([base, 4 * base[1:2], 0.5 * base[0:1], 2 * base[1:2], torch.zeros(1, 5)])
    words = list("abcdefg")
    for word in words:
        sims, neighbours = ref["most_similar"](word, embeddings, words, 6)
        assert neighbours == brute_force_top_k(embeddings, words, word, 6)[1], word
