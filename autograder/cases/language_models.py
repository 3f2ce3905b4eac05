"""Hidden cases for 01_language_models: seeded texts the student never sees, edge cases included.

Counts passed to the probability functions are made here by a sliding window (not by the student's
``count_ngrams``), so each graded function is checked on its own.
"""
from collections import Counter

import torch

from autograder.cases import uniform_clear_of

# Two short texts in the lecture's languages, as word lists and as strings of characters.
MACHADO = ("capitu deu-me as costas , voltando-se para o espelhinho . pegou-lhe na mão e disse-me que "
           "não , que não era nada ; e eu fiquei a olhar para ela , e ela para mim , e não disse nada").split()
SHAKESPEARE = ("first citizen : before we proceed any further , hear me speak . all : speak , speak . "
               "first citizen : you are all resolved rather to die than to famish ?").split()
CHARS = "o gato come o rato, o rato come o queijo; o queijo nao come nada.\n"


def _counts(tokens, n):
    return dict(Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)))


def _random_tokens(g, length, alphabet):
    """A seeded sequence over a small, skewed alphabet (frequent and rare n-grams)."""
    weights = torch.arange(len(alphabet), 0, -1, dtype=torch.float64)
    index = torch.multinomial(weights, length, replacement=True, generator=g)
    return [alphabet[i] for i in index.tolist()]


def _simplex(g, size, skew=1):
    """Seeded non-negative weights summing to one (skew > 1: a few large, many small)."""
    w = torch.rand(size, generator=g, dtype=torch.float64) ** skew
    return w / w.sum()


def _uniform(g):
    return float(torch.rand((), generator=g, dtype=torch.float64))


def count_ngrams(g):
    # First: the final bigram "ra" also occurs earlier, so a window that stops one short changes a count.
    yield dict(id="characters of 'abracadabra', n=2", args=["abracadabra", 2])
    for n in (1, 2, 3):
        yield dict(id=f"a Portuguese sentence as words, n={n}", args=[MACHADO, n])
    yield dict(id="an English sentence as words, n=4", args=[SHAKESPEARE, 4])
    yield dict(id="a string of characters, n=5", args=[CHARS, 5])
    yield dict(id="n equal to the length: one n-gram", args=[["o", "gato", "feliz"], 3], group="edge cases")
    yield dict(id="n longer than the sequence: no n-gram", args=[["o", "gato"], 3], group="edge cases")
    yield dict(id="a single token, n=1", args=[["gato"], 1], group="edge cases")
    for n in (2, 3):
        yield dict(id=f"a seeded random sequence of 150 tokens over 4 symbols, n={n}",
                   args=[_random_tokens(g, 150, "abcd"), n])


def ngram_probability(g):
    words_v = len(set(MACHADO)) + 5  # the vocabulary is larger than what the text shows
    c1, c2, c3 = (_counts(MACHADO, n) for n in (1, 2, 3))
    yield dict(id="bigram seen, maximum likelihood (k=0)", args=[c2, (",",), "e", words_v])
    yield dict(id="bigram unseen after a seen context, k=0", args=[c2, ("mão",), "nada", words_v])
    yield dict(id="bigram seen, add-one", args=[c2, ("não",), ",", words_v], kwargs=dict(k=1.0))
    yield dict(id="bigram unseen, k=0.05", args=[c2, ("e",), "capitu", words_v], kwargs=dict(k=0.05))
    yield dict(id="context never seen (the text's last word)", args=[c2, ("nada",), "e", words_v],
               kwargs=dict(k=0.5), group="edge cases")
    yield dict(id="context never seen, k=0", args=[c2, ("abacaxi",), "legal", words_v], group="edge cases")
    yield dict(id="unigram model, empty context", args=[c1, (), "não", words_v], kwargs=dict(k=0.3),
               group="edge cases")
    yield dict(id="trigram, a context of two words", args=[c3, (",", "e"), "ela", words_v], kwargs=dict(k=0.2))
    text = _random_tokens(g, 400, "abcde")
    c4 = _counts(text, 4)
    for _ in range(3):
        context, token = tuple(_random_tokens(g, 3, "abcde")), _random_tokens(g, 1, "abcde")[0]
        k = round(_uniform(g), 3)
        yield dict(id=f"4-gram on a seeded random text, k={k}", args=[c4, context, token, 5], kwargs=dict(k=k))
    chars = _counts(CHARS, 3)
    yield dict(id="character trigram, large k", args=[chars, ("o", " "), "q", 40], kwargs=dict(k=10.0))


def interpolated_probability(g):
    v = len(set(MACHADO)) + 3
    counts = [_counts(MACHADO, n) for n in (1, 2, 3, 4)]
    yield dict(id="trigram model, every context seen",
               args=[counts[:3], (",", "e"), "ela", [0.1, 0.2, 0.3, 0.4], v])
    yield dict(id="trigram model, context of order 3 unseen (falls back to order 2)",
               args=[counts[:3], ("mim", "não"), ",", [0.05, 0.15, 0.3, 0.5], v])
    yield dict(id="4-gram model, context longer than needed",
               args=[counts, ("eu", "fiquei", "a", "olhar", "para"), "ela", [0.1, 0.1, 0.2, 0.3, 0.3], v])
    yield dict(id="4-gram model, one-token context (orders 3 and 4 fall back)",
               args=[counts, ("para",), "o", [0.1, 0.1, 0.2, 0.3, 0.3], v])
    yield dict(id="4-gram model, empty context (start of a text)",
               args=[counts, (), "e", [0.1, 0.1, 0.2, 0.3, 0.3], v], group="edge cases")
    yield dict(id="a token never seen in training",
               args=[counts[:2], ("e",), "abacaxi", [0.3, 0.3, 0.4], v], group="edge cases")
    yield dict(id="all the weight on order 0 (uniform)", args=[counts[:2], ("e",), "ela", [1.0, 0.0, 0.0], v],
               group="edge cases")
    yield dict(id="unigram model (n=1)", args=[counts[:1], ("e",), "não", [0.2, 0.8], v], group="edge cases")
    text = _random_tokens(g, 300, "abcdef")
    seeded = [_counts(text, n) for n in (1, 2, 3)]
    for _ in range(3):
        weights = _simplex(g, 4)
        weights = [float(w) for w in weights]
        context, token = tuple(_random_tokens(g, 2, "abcdefg")), _random_tokens(g, 1, "abcdefg")[0]
        yield dict(id=f"trigram model on a seeded random text, context {''.join(context)!r}",
                   args=[seeded, context, token, weights, 7])


def perplexity(g):
    train = _random_tokens(g, 400, "abcde")
    counts = [_counts(train, n) for n in (1, 2, 3)]
    held_out = _random_tokens(g, 40, "abcde")
    # First: n = 3, so an answer that skips the first tokens (short contexts) differs.
    yield dict(id="trigram model on a seeded held-out text of 40 tokens",
               args=[held_out, counts, [0.1, 0.2, 0.3, 0.4], 5])
    yield dict(id="bigram model, mostly maximum likelihood", args=[held_out[:25], counts[:2], [0.01, 0.09, 0.9], 5])
    yield dict(id="unigram model", args=[held_out, counts[:1], [0.3, 0.7], 5])
    yield dict(id="uniform model over V = 7", args=[held_out, counts[:2], [1.0, 0.0, 0.0], 7])
    yield dict(id="a single token", args=[["c"], counts, [0.1, 0.2, 0.3, 0.4], 5], group="edge cases")
    yield dict(id="held-out tokens never seen in training", args=[list("abxyab"), counts[:2], [0.2, 0.3, 0.5], 8],
               group="edge cases")
    words = [_counts(MACHADO, n) for n in (1, 2)]
    yield dict(id="bigram model of a Portuguese sentence, scored on its own words",
               args=[MACHADO[:20], words, [0.05, 0.25, 0.7], len(set(MACHADO))])


def sample_next_token(g):
    dyadic = [0.125, 0.375, 0.0, 0.25, 0.25]  # cumulative sums exactly 0.125, 0.5, 0.5, 0.75, 1
    for u in (0.125, 0.5, 0.0, 0.75, 0.3, 0.9999):
        yield dict(id=f"u={u} with cumulative sums 0.125, 0.5, 0.5, 0.75, 1 (boundaries exact)", args=[dyadic, u],
                   group="exact boundaries")
    yield dict(id="leading zero probabilities, u=0", args=[[0.0, 0.0, 1.0], 0.0], group="edge cases")
    yield dict(id="a single token", args=[[1.0], 0.7], group="edge cases")
    yield dict(id="rounding: the sum falls short of u", args=[[0.1] * 10 + [0.0, 0.0], 0.9999999999999999],
               group="edge cases")
    for size in (5, 40):
        p = _simplex(g, size, skew=4)
        for _ in range(3):  # u clear of the cumulative sums: float32 and float64 sums pick the same token
            yield dict(id=f"a seeded distribution over {size} tokens, as a list",
                       args=[p.tolist(), uniform_clear_of(g, p.cumsum(0))])
        yield dict(id=f"a seeded distribution over {size} tokens, as a tensor",
                   args=[p.clone(), uniform_clear_of(g, p.cumsum(0))])


CASES = {
    "count_ngrams": count_ngrams,
    "ngram_probability": ngram_probability,
    "interpolated_probability": interpolated_probability,
    "perplexity": perplexity,
    "sample_next_token": sample_next_token,
}
