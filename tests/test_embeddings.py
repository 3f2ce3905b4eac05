"""coursekit.embeddings: vocabulary, counts, PPMI + SVD, skip-gram training, queries, projection,
and the shipped checkpoint."""
from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from coursekit import corpora
from coursekit import embeddings as E
from coursekit.vocab import Vocabulary


def test_corpus_words_are_the_corpus_tokens_without_punctuation():
    text = corpora.split("machado")["train"]
    tokens, words = corpora.words(text), E.corpus_words("machado", "train")
    punctuation = [t for t in tokens if not E.is_word(t)]
    assert len(words) + len(punctuation) == len(tokens)
    assert set(punctuation) >= {",", ".", ";", "—", "?", "!"} and all(len(t) == 1 for t in punctuation)
    assert "sentar-me" in words and "," not in words and "—" not in words
    assert not E.is_word(".") and E.is_word("1871") and E.is_word("chamam-me")


def test_cooccurrence_counts_match_brute_force():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 6, (50,), generator=g)
    for window in (1, 2, 4):
        counts = E.cooccurrence_counts(ids, 6, window)
        brute = torch.zeros(6, 6)
        for i in range(len(ids)):
            for j in range(len(ids)):
                if 0 < abs(i - j) <= window:
                    brute[ids[i], ids[j]] += 1
        assert torch.equal(counts, brute)
        assert torch.equal(counts, counts.T)


def test_ppmi_is_positive_and_zero_where_nothing_was_counted():
    counts = torch.tensor([[0.0, 3, 1], [3, 0, 0], [1, 0, 8]])
    M = E.ppmi_matrix(counts, alpha=1.0)
    assert (M >= 0).all() and (M[counts == 0] == 0).all() and not M.isnan().any()
    # by hand: N = 16, P(w=0) = 4/16, P(c=1) = 3/16, P(0, 1) = 3/16
    assert M[0, 1].item() == pytest.approx(math.log((3 / 16) / (4 / 16 * 3 / 16)), rel=1e-6)


def test_truncated_svd_vectors_reproduce_the_leading_singular_values():
    g = torch.Generator().manual_seed(1)
    counts = torch.randint(0, 5, (40, 40), generator=g).float()
    counts = counts + counts.T
    vectors = E.ppmi_svd_vectors(counts, dim=5, alpha=0.75)
    assert vectors.shape == (40, 5)
    exact = torch.linalg.svdvals(E.ppmi_matrix(counts, 0.75).double())[:5]
    # U S^(1/2): the squared column norms are the singular values
    torch.testing.assert_close(vectors.double().pow(2).sum(0), exact, rtol=1e-3, atol=1e-4)


def test_subsampling_and_noise_distributions():
    counts = [1000, 100, 10, 1]
    keep = E.keep_probabilities(counts, threshold=1e-2)
    assert keep[-1] == 1 and (keep[:-1] <= keep[1:]).all() and (keep > 0).all()
    noise = E.noise_distribution(counts)
    torch.testing.assert_close(noise.sum(), torch.tensor(1.0))
    assert noise[0] / noise[1] == pytest.approx(10 ** 0.75, rel=1e-5)


def test_training_pairs_stay_within_the_window():
    g = torch.Generator().manual_seed(2)
    ids = torch.arange(30)  # id = position, so a pair's distance is visible
    pairs = E.skipgram_training_pairs(ids, 4, g)
    distance = (pairs[:, 0] - pairs[:, 1]).abs()
    assert ((distance >= 1) & (distance <= 4)).all()
    assert (E.skipgram_training_pairs(ids, 1, g)[:, 0] - E.skipgram_training_pairs(ids, 1, g)[:, 1]).abs().max() == 1
    # every center draws one window 1..4 and uses it on both sides: left and right counts agree per center
    per_center = Counter(pairs[:, 0].tolist())
    assert all(per_center[c] <= 8 for c in per_center)


def test_untrained_model_loss_is_log_two_per_word():
    model = E.SkipGram(10, 4)
    center, context = torch.tensor([1, 2]), torch.tensor([3, 4])
    negatives = torch.tensor([[5, 6, 7], [8, 9, 0]])
    # zero context vectors: every score is 0 and every σ is 1/2
    assert model(center, context, negatives).item() == pytest.approx(4 * math.log(2), rel=1e-6)


@pytest.fixture(scope="module")
def toy_corpus():
    """Two 'topics' that never mix: skip-gram must put each topic's words together."""
    g = torch.Generator().manual_seed(0)
    a, b = "rei rainha coroa castelo trono".split(), "avião computador chinelo óculos motor".split()
    tokens = []
    for _ in range(400):
        topic = a if torch.rand(1, generator=g) < 0.5 else b
        tokens += [topic[int(i)] for i in torch.randint(0, 5, (8,), generator=g)]
    vocab = Vocabulary.from_counts(tokens)
    return tokens, vocab, torch.tensor(vocab.encode(tokens))


def test_training_lowers_the_loss_and_is_reproducible(toy_corpus):
    _, vocab, ids = toy_corpus
    config = E.TrainConfig(dim=8, window=2, negatives=3, epochs=3, batch_size=64, lr=0.05, subsample=1.0)
    model, history = E.train_skipgram(ids, vocab, config, device=torch.device("cpu"), log_every=5)
    assert history["loss"][-1] < history["loss"][0] < 4 * math.log(2) + 0.1
    assert history["steps"] == history["step"][-1] or history["steps"] > history["step"][-1]
    again, history2 = E.train_skipgram(ids, vocab, config, device=torch.device("cpu"), log_every=5)
    assert torch.equal(model.center.weight, again.center.weight), "seeded: two runs give the same vectors"
    short, history3 = E.train_skipgram(ids, vocab, config, device=torch.device("cpu"), max_steps=20, log_every=5)
    assert history3["steps"] == 20
    assert history3["loss"] == history["loss"][:4], "a short run retraces the start of the full run"
    vectors = model.center.weight.detach()
    top = [w for w, _ in E.nearest(vectors, vocab.tokens, "rei", k=4)]
    assert set(top) == {"rainha", "coroa", "castelo", "trono"}, top


def test_nearest_and_analogy_on_vectors_built_by_hand():
    words = ["homem", "mulher", "rei", "rainha", "maçã"]
    vectors = torch.tensor([[1.0, 0, 0], [1, 1, 0], [1, 0, 1], [1, 1, 1], [0, 0, -1]])
    answer = E.nearest(vectors, words, "rainha", k=2)
    assert [w for w, _ in answer] == ["mulher", "rei"] and "rainha" not in dict(answer)
    assert answer[0][1] == pytest.approx(2 / math.sqrt(6))
    assert E.nearest(vectors, words, torch.tensor([0.0, 0, -2]), k=1)[0][0] == "maçã"  # a vector query
    assert [w for w, _ in E.nearest(vectors, words, "homem", k=10, exclude=["rei"])] == ["mulher", "rainha", "maçã"]
    # homem : mulher :: rei : ?  (rainha - unit vectors differ from raw ones, but the answer is the same)
    assert E.analogy(vectors, words, "homem", "mulher", "rei", k=1)[0][0] == "rainha"


def test_pca_2d_matches_the_covariance_eigenvectors():
    g = torch.Generator().manual_seed(4)
    X = torch.randn(50, 6, generator=g) * torch.tensor([5.0, 3, 1, 0.5, 0.2, 0.1])
    coords = E.pca_2d(X).double()
    Xc = X.double() - X.double().mean(0)
    eigenvalues, eigenvectors = torch.linalg.eigh(Xc.T @ Xc)
    oracle = Xc @ eigenvectors[:, [-1, -2]]  # the two largest
    torch.testing.assert_close(coords.abs(), oracle.abs(), rtol=1e-4, atol=1e-4)
    assert coords[:, 0].var() >= coords[:, 1].var()
    assert (coords.gather(0, coords.abs().argmax(0, keepdim=True)) > 0).all(), "sign convention"


def test_the_shipped_checkpoint():
    assert E.CHECKPOINT.exists(), "run `python -m coursekit.embeddings --train`"
    assert E.CHECKPOINT.stat().st_size < 3 * 2**20, "a few MB at most"
    raw = torch.load(E.CHECKPOINT, weights_only=True)
    assert raw["vectors"].dtype == torch.float16
    ckpt = E.load_checkpoint()
    vocab, vectors, config = ckpt["vocab"], ckpt["vectors"], ckpt["config"]
    assert vectors.shape == (len(vocab), config.dim) and torch.isfinite(vectors).all()
    # the command rebuilds the same vocabulary from the same corpus
    rebuilt = Vocabulary.from_counts(E.corpus_words("machado", "train"), config.min_count)
    assert rebuilt.tokens == vocab.tokens and rebuilt.counts == vocab.counts
    assert vocab.tokens == raw["words"] and vocab.counts == raw["counts"] and vocab.unk is None  # the trained ids
    history = ckpt["history"]
    assert history["loss"][-1] < history["loss"][0] and history["seconds"] > 0
    # trained: the vectors are far from their tiny random initialisation, and numbers find numbers
    assert vectors.norm(dim=1).mean() > 1
    top = [w for w, _ in E.nearest(vectors, vocab.tokens, "três", k=10)]
    assert len({"dois", "quatro", "cinco", "seis", "sete", "oito", "dez", "vinte"} & set(top)) >= 2, top


def test_checkpoint_round_trips_the_vocabulary(tmp_path):
    vocab = Vocabulary.from_counts("b a c a b a".split())
    vectors = torch.arange(6.0).view(3, 2)
    E.save_checkpoint(tmp_path / "v.pt", vocab, vectors, E.TrainConfig(dim=2), {"loss": []}, torch.device("cpu"))
    back = E.load_checkpoint(tmp_path / "v.pt")
    assert back["vocab"].tokens == ["a", "b", "c"] and back["vocab"].counts == [3, 2, 1]
    assert torch.equal(back["vectors"], vectors) and back["config"].dim == 2


def test_command_without_train_only_prints_help(capsys):
    E.main([])
    assert "--train" in capsys.readouterr().out


@pytest.fixture(scope="module")
def machado():
    """What the chapter computes: the vocabulary, the checkpoint's vectors, PPMI and PPMI + SVD."""
    ckpt = E.load_checkpoint()
    vocab = ckpt["vocab"]
    tokens = E.corpus_words("machado", "train")
    ids = torch.tensor(vocab.encode(tokens, unknown="drop"))  # the words outside the vocabulary dropped
    counts = E.cooccurrence_counts(ids, len(vocab), ckpt["config"].window)
    return dict(vocab=vocab, tokens=tokens, sgns=ckpt["vectors"], counts=counts,
                ppmi=E.ppmi_matrix(counts, 0.75), svd=E.ppmi_svd_vectors(counts, 100, 0.75))


def neighbours(vectors, vocab, query, k, exclude=()):
    return [w for w, _ in E.nearest(vectors, vocab.tokens, query, k, exclude)]


def test_what_the_chapter_says_about_the_shipped_vectors(machado):
    """The chapter's prose names words it found in these vectors; if the checkpoint is regenerated
    differently, this test says which sentences of book/02_word_embeddings.md to revisit."""
    vocab, sgns, svd, counts, ppmi = (machado[k] for k in ("vocab", "sgns", "svd", "counts", "ppmi"))
    # "Similar words": numbers next to numbers, noite next to manhã, disse next to perguntou
    assert "três" in neighbours(sgns, vocab, "dois", 6) and "três" in neighbours(svd, vocab, "dois", 6)
    assert "manhã" in neighbours(sgns, vocab, "noite", 6) and "manhã" in neighbours(svd, vocab, "noite", 6)
    assert "perguntou" in neighbours(sgns, vocab, "disse", 6) and "perguntou" in neighbours(svd, vocab, "disse", 6)
    # PPMI contexts of olhos: úmidos, pretos, ressaca
    row = torch.where(counts[vocab["olhos"]] >= 3, ppmi[vocab["olhos"]], torch.zeros(len(vocab)))
    top = {vocab.tokens[i] for i in row.topk(7).indices.tolist()}
    assert {"úmidos", "pretos", "ressaca"} <= top, top
    # "One vector per word": banco's contexts mix the senses; its two vectors lean different ways
    top = {vocab.tokens[i] for i in ppmi[vocab["banco"]].topk(10).indices.tolist()}
    assert {"brasil", "diretor", "sócio", "ações", "sente-se", "tapete", "caiu", "muro"} <= top, top
    assert {"correio", "ouvidor", "pharoux"} <= set(neighbours(sgns, vocab, "banco", 8))
    assert {"canapé", "jardim", "pau"} <= set(neighbours(svd, vocab, "banco", 8))
    assert {"pegando-lhe", "enxugou", "lágrima"} <= set(neighbours(sgns, vocab, "manga", 8))
    assert machado["tokens"].count("manga") == 4 and machado["tokens"].count("rainha") == 3


def test_what_the_chapter_says_about_analogies(machado):
    vocab, sgns, svd = machado["vocab"], machado["sgns"], machado["svd"]

    def best(vectors, a, b, c):
        return E.analogy(vectors, vocab.tokens, a, b, c, k=1)[0][0]
    assert best(sgns, "senhor", "senhora", "menino") == "menina"
    assert best(sgns, "ano", "anos", "mês") == "meses"
    assert best(svd, "o", "a", "um") == "uma"
    assert best(svd, "é", "era", "tem") == "tinha"
    assert best(svd, "ele", "ela", "dele") == "dela"
    assert [vocab.counts[vocab[w]] for w in ("tia", "primo", "olho")] == [15, 13, 15]


def test_what_the_chapter_says_about_the_contextual_demo(machado):
    """The re-weighting demo: Y = sum_j W_j V_j over unit vectors, 0.05 on each small word."""
    vocab, unit = machado["vocab"], E.unit_rows(machado["sgns"])

    def y_neighbours(words, target, context, weight):
        others = [w for w in words if w != target and w not in context]
        row = {w: 0.05 for w in others} | {w: weight / len(context) for w in context}
        row[target] = 1 - weight - 0.05 * len(others)
        y = sum(row[w] * unit[vocab[w]] for w in words)
        return set(neighbours(machado["sgns"], vocab, y, 8, exclude=words))
    assert {"sentada", "poltrona", "portão"} <= y_neighbours(
        ["sentou-se", "num", "banco", "do", "jardim"], "banco", ["sentou-se", "jardim"], 0.8)
    assert {"mil-réis", "réis"} <= y_neighbours(["cem", "contos", "no", "banco"], "banco", ["cem", "contos"], 0.8)
    assert {"sobrecasaca", "rendas", "reputação"} <= (
        y_neighbours(["manga", "da", "minha", "camisa"], "manga", ["camisa"], 0.4)
        | y_neighbours(["manga", "da", "minha", "camisa"], "manga", ["camisa"], 0.8))
