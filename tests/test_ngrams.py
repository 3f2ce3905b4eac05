"""coursekit.ngrams against brute force: counts by a sliding window, probabilities by the formulas
written per context, normalisation, sampling frequencies, and the shipped table recomputed."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from coursekit import corpora, ngrams
from coursekit.vocab import Vocabulary

V = 5


def random_ids(seed: int, length: int = 300, vocab: int = V) -> np.ndarray:
    # A skewed distribution, so that some n-grams are frequent and others unseen.
    rng = np.random.default_rng(seed)
    return rng.choice(vocab, size=length, p=np.arange(vocab, 0, -1) / (vocab * (vocab + 1) / 2))


def window_counts(ids, n) -> Counter:
    return Counter(tuple(int(t) for t in ids[i:i + n]) for i in range(len(ids) - n + 1))


@pytest.fixture(scope="module")
def toy():
    train = random_ids(0)
    return train, ngrams.NGramModel(train, V, max_order=4)


def brute_probability(train, context, token, order, method, k=1.0, lambdas=None):
    """The module docstring's definitions, one context at a time, from sliding-window counts."""
    context = tuple(context)[max(0, len(context) - (order - 1)):] if order > 1 else ()
    counts = {j: window_counts(train, j) for j in range(1, order + 1)}

    def total(h):  # c(h) = sum_w c(h w)
        j = len(h) + 1
        return sum(c for g, c in counts[j].items() if g[:-1] == h)

    if method == "add_k":
        h = context
        if total(h) == 0:
            return 1 / V
        return (counts[len(h) + 1][h + (token,)] + k) / (total(h) + k * V)
    # maximum likelihood of each order, with the fall-back to the order below
    p = [1 / V]
    for j in range(1, order + 1):
        if j - 1 > len(context):
            p.append(p[-1])
            continue
        h = context[len(context) - (j - 1):] if j > 1 else ()
        t = total(h)
        p.append(counts[j][h + (token,)] / t if t > 0 else p[-1])
    if method == "mle":
        return p[-1]
    return float(np.dot(lambdas, p))


def test_counts_match_a_sliding_window(toy):
    train, model = toy
    for n in range(1, 5):
        for gram, c in window_counts(train, n).items():
            assert model.count(gram) == c
        assert int(model.counts[n].sum()) == len(train) - n + 1
        assert model.num[n] == len(window_counts(train, n))
    assert model.count((4, 4, 4, 4)) == window_counts(train, 4).get((4, 4, 4, 4), 0)
    assert model.count(()) == len(train)


@pytest.mark.parametrize("method", ["add_k", "mle", "interp"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_probabilities_match_the_formulas(toy, method, order):
    train, model = toy
    text = random_ids(1, 40)
    lambdas = np.arange(1, order + 2) / np.arange(1, order + 2).sum()
    p = model.probabilities(text, order, method=method, k=0.3, lambdas=lambdas)
    for i, token in enumerate(text):
        want = brute_probability(train, text[:i], int(token), order, method, k=0.3, lambdas=lambdas)
        assert p[i] == pytest.approx(want, rel=1e-12), (i, method, order)


@pytest.mark.parametrize("method", ["add_k", "mle", "interp", "kn"])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_distributions_sum_to_one_and_agree_with_probabilities(toy, method, order):
    """Every context (seen, unseen, shorter than the order) gives a distribution; scoring a text
    token by token gives the same numbers as the vectorised scorer."""
    train, model = toy
    lambdas = np.full(order + 1, 1 / (order + 1))
    text = np.concatenate([random_ids(2, 30), [4, 4, 4, 4, 4, 3, 4, 4]])  # rare n-grams too
    p = model.probabilities(text, order, method=method, k=0.05, lambdas=lambdas)
    for i, token in enumerate(text):
        dist = model.next_token_distribution(text[:i], order, method=method, k=0.05, lambdas=lambdas)
        assert dist.shape == (V,) and (dist >= 0).all()
        assert dist.sum() == pytest.approx(1.0, abs=1e-12)
        assert dist[token] == pytest.approx(p[i], rel=1e-12)


def test_kneser_ney_on_a_worked_example():
    # "a b a b a c", V = 3, order 2. Top level: c(a) as a context = 3 (ab, ab, ac); D2 from the
    # bigram counts of counts: ab twice, ba twice, ac once -> n1 = 1, n2 = 2, D2 = 1/5.
    # Continuation counts: b is preceded by {a} -> 1, a by {b} -> 1, c by {a} -> 1; total 3, 3 types;
    # D1 from those counts (n1 = 3, n2 = 0) = 1. So P1(w) = (1 - 1)/3 + 1 * 3/3 * 1/3 = 1/3.
    ids = [0, 1, 0, 1, 0, 2]
    model = ngrams.NGramModel(ids, 3, max_order=2)
    assert model.discount_raw[2] == pytest.approx(1 / 5)
    p1 = 1 / 3
    d = 1 / 5
    want_b = (2 - d) / 3 + d * 2 / 3 * p1    # P(b | a): two continuation types after "a"
    want_a = (0 - 0) / 3 + d * 2 / 3 * p1    # P(a | a): unseen bigram, lower order only
    dist = model.next_token_distribution([0], 2, method="kn")
    assert dist[1] == pytest.approx(want_b)
    assert dist[0] == pytest.approx(want_a)
    assert dist.sum() == pytest.approx(1.0)


def test_uniform_model_has_perplexity_v(toy):
    _, model = toy
    text = random_ids(3, 200)
    nll = model.nll(text, 3, method="interp", lambdas=[1, 0, 0, 0])
    assert math.exp(nll / len(text)) == pytest.approx(V)
    # and add-k with a huge k tends to the uniform model
    assert math.exp(model.nll(text, 2, method="add_k", k=1e9) / len(text)) == pytest.approx(V, rel=1e-6)


def test_unseen_ngram_under_maximum_likelihood_costs_infinity():
    model = ngrams.NGramModel([0, 1, 0, 1], 3, max_order=2)
    assert model.nll([0, 2], 2, method="mle") == math.inf          # c(0 2) = 0, c(0) > 0
    assert math.isfinite(model.nll([0, 2], 2, method="add_k", k=0.5))


def test_tuning_picks_the_best_on_held_out(toy):
    _, model = toy
    val = random_ids(4, 400)
    grid = [0.001, 0.01, 0.1, 1.0, 10.0]
    k, nll = model.tune_k(val, 3, grid)
    assert nll == pytest.approx(min(model.nll(val, 3, method="add_k", k=g) for g in grid))
    assert nll == pytest.approx(model.nll(val, 3, method="add_k", k=k))
    lambdas = model.tune_lambdas(val, 3)
    assert lambdas.sum() == pytest.approx(1.0) and (lambdas >= 0).all()
    tuned = model.nll(val, 3, method="interp", lambdas=lambdas)
    rng = np.random.default_rng(0)
    for _ in range(20):  # EM's fixed point beats random weights on the data it was fitted on
        other = rng.dirichlet(np.ones(4))
        assert tuned <= model.nll(val, 3, method="interp", lambdas=other) + 1e-9


def test_sampling_frequencies_match_the_distribution(toy):
    _, model = toy
    dist = model.next_token_distribution([1, 0], 3, method="add_k", k=0.5)
    draws = 20_000
    # Sampling one token at a time from the same history is next_token_distribution + inverse CDF.
    rng = np.random.default_rng(0)
    cdf = np.cumsum(dist)
    seen = np.bincount(np.searchsorted(cdf, rng.random(draws), side="right"), minlength=V)
    chi2 = (((seen - draws * dist) ** 2) / (draws * dist)).sum()
    assert chi2 < 20.5  # the 99.9% quantile of chi-square with V - 1 = 4 degrees of freedom is 18.5
    # and the generator itself follows the model's first-token distribution
    first = Counter(model.sample(1, 3, seed=s, method="add_k", k=0.5, prompt=[1, 0])[0] for s in range(3000))
    observed = np.array([first[t] for t in range(V)])
    chi2 = (((observed - 3000 * dist) ** 2) / (3000 * dist)).sum()
    assert chi2 < 20.5


def test_sampling_is_seeded_and_mle_samples_only_seen_ngrams(toy):
    train, model = toy
    a = model.sample(200, 3, seed=7, method="mle")
    assert a == model.sample(200, 3, seed=7, method="mle")
    assert a != model.sample(200, 3, seed=8, method="mle")
    seen = window_counts(train, 3)
    assert all(tuple(a[i:i + 3]) in seen for i in range(len(a) - 2))


def test_word_vocabulary_maps_rare_words_to_unk():
    vocab = Vocabulary.from_counts("a b a c a b d".split(), min_count=2, unk=ngrams.UNK)
    assert vocab.tokens == [ngrams.UNK, "a", "b"]
    assert vocab.encode("a c b z".split()) == [1, 0, 2, 0]
    assert ngrams.detokenize(["o", "gato", ",", "feliz", "."], "word") == "o gato, feliz."


@pytest.mark.parametrize("corpus", corpora.CORPORA)
def test_tokenised_corpora(corpus):
    chars = ngrams.load(corpus, "char")
    assert len(chars.vocab) == len(corpora.char_vocab(corpus))
    assert "".join(chars.vocab.decode(chars.ids["val"][:500])) == chars.texts["val"][:500]
    assert chars.unk_rate("test") == 0
    assert chars.ids["val"].dtype == np.int64
    words = ngrams.load(corpus, "word")
    assert words.vocab.tokens[0] == ngrams.UNK and words.ids["test"].dtype == np.int64
    train_counts = Counter(corpora.words(words.texts["train"]))
    assert all(train_counts[w] >= 2 for w in words.vocab.tokens[1:])
    assert 0.02 < words.unk_rate("test") < 0.2


def test_shipped_table_is_what_the_code_computes():
    """coursekit/data/ngram_baselines.csv is regenerated by `python -m coursekit.ngrams --table`."""
    shipped = ngrams.baselines()
    assert len(shipped) == len(corpora.CORPORA) * len(ngrams.UNITS) * 5
    fresh = ngrams.perplexity_table()
    for old, new in zip(shipped, fresh):
        for key in ngrams.TABLE_COLUMNS:
            if isinstance(old[key], float):
                assert old[key] == pytest.approx(new[key], abs=2e-6), (old["corpus"], old["unit"], old["n"], key)
            elif key == "lambdas":
                assert np.allclose([float(x) for x in old[key].split()],
                                   [float(x) for x in new[key].split()], atol=2e-6)
            else:
                assert old[key] == new[key], key


def test_baseline_table_is_sensible():
    rows = {(r["corpus"], r["unit"], r["n"]): r for r in ngrams.baselines()}
    for corpus in corpora.CORPORA:
        chars = [rows[corpus, "char", n]["test_nats_per_char"] for n in range(1, 6)]
        assert all(a > b for a, b in zip(chars, chars[1:])), "more context helps characters up to n = 5"
        assert 1.0 < chars[-1] < 2.0
        unigram = rows[corpus, "char", 1]
        assert unigram["test_ppl_per_char"] < unigram["vocab_size"]
        best = ngrams.best_baseline(corpus)
        assert best["val_nats_per_char"] == min(rows[corpus, "char", n]["val_nats_per_char"] for n in range(1, 6))
        for n in range(1, 6):
            r = rows[corpus, "word", n]
            assert r["test_ppl_per_token"] == pytest.approx(
                math.exp(r["test_nats_per_char"] * len(corpora.split(corpus)["test"]) / r["test_tokens"]), rel=1e-5)


def test_training_text_lookups_match_the_general_path(toy):
    """Scoring the training text reuses the look-ups made while counting; they equal fresh ones."""
    train, model = toy
    extended = np.concatenate([train, [0]])  # not the training text: looked up from scratch
    cached, cached_ctx = model.grams(train, 4)
    fresh, fresh_ctx = model.grams(extended, 4)
    for j in range(5):
        assert np.array_equal(cached[j], fresh[j][:-1])
    for j in range(1, 5):
        assert np.array_equal(cached_ctx[j], fresh_ctx[j][:-1])


@pytest.mark.parametrize("corpus", corpora.CORPORA)
@pytest.mark.parametrize("unit", ngrams.UNITS)
def test_a_rows_settings_reproduce_its_test_loss(corpus, unit):
    """What chapters 03 and 10 do to score the n-gram baseline on their own terms."""
    data, model = ngrams.load(corpus, unit), ngrams.model_for(corpus, unit)
    rows = [r for r in ngrams.baselines() if r["corpus"] == corpus and r["unit"] == unit]
    for row in rows:
        nll = model.nll(data.ids["test"], row["n"], **ngrams.settings_of(row))
        assert ngrams.nats_per_char(nll, data.texts["test"]) == pytest.approx(row["test_nats_per_char"], abs=1e-5)
    row = rows[-1]  # n = 5: every method's setting is in the row
    add_k = dict(row, best="add_k")
    interp = dict(row, best="interp")
    for fake in (add_k, interp):
        nll = model.nll(data.ids["test"], fake["n"], **ngrams.settings_of(fake))
        assert ngrams.nats_per_char(nll, data.texts["test"]) == pytest.approx(row[f"test_{fake['best']}"], abs=1e-5)
