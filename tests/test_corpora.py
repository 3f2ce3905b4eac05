"""The corpora every language model in the course trains and reports on."""
import math

import pytest

from coursekit import corpora


@pytest.mark.parametrize("name", corpora.CORPORA)
def test_splits_partition_the_corpus_on_line_boundaries(name):
    parts = corpora.split(name)
    assert list(parts) == ["train", "val", "test"]
    whole = corpora.text(name)
    assert "".join(parts.values()) == whole
    for key, fraction in corpora.SPLIT_FRACTIONS.items():
        assert abs(len(parts[key]) / len(whole) - fraction) < 0.01, key
        assert parts[key].endswith("\n")


def test_machado_splits_hold_every_novel():
    # one chapter heading word that opens each novel's text appears once per novel in train
    train = corpora.split("machado")["train"]
    for title in ("Dom Casmurro", "Memórias Póstumas de Brás Cubas", "Quincas Borba"):
        assert train.count(title + "\n") >= 1, title
    # the test split ends each novel: it holds text from all three (three end-of-novel cuts)
    assert len(corpora.split("machado")["test"]) > 50_000


def test_shakespeare_matches_the_standard_file():
    whole = corpora.text("shakespeare")
    assert len(whole) == 1_115_394  # the char-rnn / nanoGPT file, unchanged by normalisation
    assert len(corpora.char_vocab("shakespeare")) == 65


def test_normalise_unifies_typography():
    assert corpora.normalise("“Sim”, disse – ‘não’\r\n") == '"Sim", disse — \'não\'\n'


def test_words_keep_clitics_and_split_punctuation():
    assert corpora.words('O gato <?> feliz. Chamam-me "Dom"; know\'t!') == [
        "o", "gato", "<", "?", ">", "feliz", ".", "chamam-me", '"', "dom", '"', ";", "know't", "!"]


@pytest.mark.parametrize("name", corpora.CORPORA)
def test_char_vocab_round_trips_every_split(name):
    vocab = corpora.char_vocab(name)
    test = corpora.split(name)["test"]
    assert "".join(vocab.decode(vocab.encode(test))) == test
    assert corpora.char_vocab(name) is vocab, "cached"


def test_per_character_units():
    assert corpora.nats_per_char(10.0, "abcde") == 2.0
    assert corpora.perplexity_per_char(len("abc") * math.log(4), "abc") == pytest.approx(4.0)
