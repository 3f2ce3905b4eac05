"""Hidden cases for 02_word_embeddings: seeded inputs the student never sees, edge cases included."""
import torch


# --------------------------------------------------------------------------- cosine_similarity


def cosine_similarity(g):
    for n, m, d in ((1, 1, 3), (5, 7, 8), (20, 100, 50), (1, 300, 16)):
        yield dict(id=f"A ({n}, {d}) against B ({m}, {d})",
                   args=[torch.randn(n, d, generator=g), torch.randn(m, d, generator=g)])
    A, B = torch.randn(4, 6, generator=g), torch.randn(5, 6, generator=g)
    A[1] = 0
    B[3] = 0
    yield dict(id="zero rows in A and in B (similarity 0, no NaN)", args=[A, B], group="edge cases")
    A, B = torch.randn(3, 10, generator=g), torch.randn(6, 10, generator=g)
    yield dict(id="rows of very different lengths (x1000 and x0.001)",
               args=[A * torch.tensor([[1e3], [1e-3], [1.0]]), B * 1e3], group="edge cases")
    A = torch.randn(6, 12, generator=g)
    yield dict(id="a matrix against itself (ones on the diagonal)", args=[A, A.clone()])
    yield dict(id="d = 1 (cosines are +1 or -1)",
               args=[torch.randn(4, 1, generator=g), torch.randn(3, 1, generator=g)], group="edge cases")


# --------------------------------------------------------------------------- ppmi


def _counts(g, v, c, high=6, zero_fraction=0.4):
    counts = torch.randint(1, high, (v, c), generator=g).float()
    return counts * (torch.rand(v, c, generator=g) > zero_fraction)


def ppmi(g):
    yield dict(id="3 x 3 counts, alpha = 1 (default)", args=[_counts(g, 3, 3)])
    yield dict(id="8 x 12 counts, alpha = 1 given explicitly", args=[_counts(g, 8, 12)], kwargs=dict(alpha=1.0))
    yield dict(id="10 x 10 counts, alpha = 0.75", args=[_counts(g, 10, 10)], kwargs=dict(alpha=0.75))
    yield dict(id="40 x 30 large counts, alpha = 0.5", args=[_counts(g, 40, 30, high=500)],
               kwargs=dict(alpha=0.5))
    symmetric = _counts(g, 15, 15)
    yield dict(id="a symmetric 15 x 15 co-occurrence matrix, alpha = 0.75", args=[symmetric + symmetric.T],
               kwargs=dict(alpha=0.75))
    counts = _counts(g, 7, 9)
    counts[3] = 0
    counts[:, 0] = 0
    yield dict(id="a word and a context that never occur (zero row and column)", args=[counts],
               kwargs=dict(alpha=0.75))
    yield dict(id="no zero counts", args=[torch.randint(1, 9, (5, 6), generator=g).float()])
    yield dict(id="non-integer (distance-weighted) counts",
               args=[_counts(g, 6, 6) * torch.rand(6, 6, generator=g)], kwargs=dict(alpha=0.75))


# --------------------------------------------------------------------------- skipgram_pairs


def skipgram_pairs(g):
    ids = torch.randint(0, 6, (25,), generator=g).tolist()
    yield dict(id="25 integer ids with repeats, window 4", args=[ids, 4])
    ids = torch.randint(0, 1000, (60,), generator=g).tolist()
    yield dict(id="60 integer ids, window 5", args=[ids, 5])
    sentence = "dom casmurro e a mulher de olhos de ressaca".split()
    for window in (1, 2, 3):
        yield dict(id=f"a 9-word sentence, window {window}", args=[sentence, window])
    yield dict(id="window 0 (no pairs)", args=[sentence, 0], group="edge cases")
    yield dict(id="window wider than the sentence", args=["o gato está feliz".split(), 7], group="edge cases")
    yield dict(id="a sentence of one word", args=[["capitu"], 2], group="edge cases")
    yield dict(id="an empty sentence", args=[[], 3], group="edge cases")
    yield dict(id="a repeated word ('de ... de', 'o ... o') is two positions",
               args=["o menino e o cão de rubião e o de sofia".split(), 3])


# --------------------------------------------------------------------------- negative_sampling_loss


def negative_sampling_loss(g):
    for batch, k, d in ((1, 1, 4), (8, 5, 16), (32, 10, 50), (3, 2, 1)):
        yield dict(id=f"B={batch}, K={k}, d={d}",
                   args=[torch.randn(batch, d, generator=g), torch.randn(batch, d, generator=g),
                         torch.randn(batch, k, d, generator=g)])
    yield dict(id="K = 0 negatives (only the real pair)",
               args=[torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g), torch.zeros(4, 0, 8)],
               group="edge cases")
    v = torch.randn(6, 64, generator=g) * 4
    yield dict(id="large dot products (|u·v| in the hundreds): a stable log-sigmoid",
               args=[v, v.flip(0) * 3, torch.randn(6, 5, 64, generator=g) * 4], group="numerical stability")
    v = torch.randn(5, 10, generator=g)
    yield dict(id="a context identical to its center, negatives opposite to it",
               args=[v, v.clone(), -v[:, None, :].repeat(1, 3, 1)])


# --------------------------------------------------------------------------- most_similar


def _well_separated(embeddings, query, k, gap=1e-3):
    """True when the k + 1 largest cosines with the query differ by more than ``gap`` (or are
    exactly equal): float32 and float64 then agree on the order."""
    unit = embeddings.double() / embeddings.double().norm(dim=1, keepdim=True).clamp_min(1e-8)
    sims = (unit @ unit[query]).sort(descending=True).values[: k + 2]
    steps = sims[:-1] - sims[1:]
    return bool(((steps == 0) | (steps > gap)).all())


def _random_vocabulary(g, vocab_size, d, k):
    words = [f"palavra{i}" for i in range(vocab_size)]
    while True:
        embeddings = torch.randn(vocab_size, d, generator=g)
        query = int(torch.randint(0, vocab_size, (1,), generator=g))
        if _well_separated(embeddings, query, min(k, vocab_size)):
            return words[query], embeddings, words


def most_similar(g):
    for vocab_size, d, k in ((10, 4, 3), (50, 16, 5), (200, 32, 10)):
        word, embeddings, words = _random_vocabulary(g, vocab_size, d, k)
        yield dict(id=f"{vocab_size} random words, d={d}, k={k}", args=[word, embeddings, words, k])
    word, embeddings, words = _random_vocabulary(g, 6, 3, 10)
    yield dict(id="k larger than the vocabulary (every other word)", args=[word, embeddings, words, 10],
               group="edge cases")
    word, embeddings, words = _random_vocabulary(g, 8, 3, 1)
    yield dict(id="k = 1", args=[word, embeddings, words, 1])
    yield dict(id="k = 0 (an empty list)", args=[word, embeddings, words, 0], group="edge cases")
    word, embeddings, words = _random_vocabulary(g, 12, 5, 5)
    yield dict(id="k not given (default 5)", args=[word, embeddings, words])
    # Exact ties: a vector scaled by a power of two has exactly the same cosine as the original.
    base = torch.randn(4, 6, generator=g)
    embeddings = torch.cat([base, 2 * base[2:3], 0.5 * base[1:2], 4 * base[2:3], torch.zeros(1, 6)])
    words = ["casa", "rua", "janela", "porta", "janela2", "rua2", "janela4", "nada"]
    for query in ("casa", "porta"):
        yield dict(id=f"exact ties (scaled copies of a vector), query '{query}', order by position",
                   args=[query, embeddings, words, 7], group="ties")
    yield dict(id="the query has a scaled copy of itself (similarity 1, not excluded)",
               args=["janela", embeddings, words, 3], group="ties")
    # Many ties in a long list: an unstable sort keeps small tied runs in order but not long ones
    # (PyTorch's sort switches algorithm at 17 elements), so the order of `words` must be asked for.
    base = torch.randn(3, 8, generator=g)
    echoes = torch.stack([base[i % 3] * 2.0 ** (i % 5 - 2) for i in range(40)])
    yield dict(id="40 words, 13 or 14 of them tied with each other: ties in the order of `words`",
               args=["eco1", echoes, [f"eco{i}" for i in range(40)], 39], group="ties")
    yield dict(id="keyword argument k", args=["rua", embeddings, words], kwargs=dict(k=4))


CASES = {
    "cosine_similarity": cosine_similarity,
    "ppmi": ppmi,
    "skipgram_pairs": skipgram_pairs,
    "negative_sampling_loss": negative_sampling_loss,
    "most_similar": most_similar,
}
