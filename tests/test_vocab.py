"""coursekit.vocab.Vocabulary: the one vocabulary of the course."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from coursekit.vocab import Vocabulary


def test_ids_are_positions_and_round_trip():
    vocab = Vocabulary(["le", "chat", "dort"])
    assert len(vocab) == 3 and vocab.tokens == ["le", "chat", "dort"] and vocab.unk is None
    assert [vocab[t] for t in vocab.tokens] == [0, 1, 2]
    assert "chat" in vocab and "chien" not in vocab
    sentence = "le chat dort le".split()
    ids = vocab.encode(sentence)
    assert ids == [0, 1, 2, 0] and all(type(i) is int for i in ids)
    assert vocab.decode(ids) == sentence


def test_decode_takes_arrays_and_tensors():
    vocab = Vocabulary(list("abc"))
    assert vocab.decode(np.array([2, 0], dtype=np.int64)) == ["c", "a"]
    assert vocab.decode(torch.tensor([1, 1])) == ["b", "b"]
    assert vocab.decode([]) == []


def test_unk_is_id_zero_and_stands_for_unknown_tokens():
    vocab = Vocabulary(["a", "b"], unk="<unk>")
    assert vocab.tokens == ["<unk>", "a", "b"] and vocab["<unk>"] == 0 and vocab["a"] == 1
    assert vocab.encode("a z b y".split()) == [1, 0, 2, 0]  # the default with an unk token
    assert vocab.encode("a z".split(), unknown="unk") == [1, 0]
    assert vocab.decode(vocab.encode("a z".split())) == ["a", "<unk>"]
    assert "z" not in vocab and "<unk>" in vocab
    with pytest.raises(KeyError, match="'z'"):
        vocab["z"]  # indexing is strict: only encode maps to <unk>
    # already in front: not added twice, so a vocabulary rebuilds from its own tokens
    assert Vocabulary(vocab.tokens, unk="<unk>").tokens == vocab.tokens


def test_drop_leaves_unknown_tokens_out():
    vocab = Vocabulary(["a", "b", "e"])
    assert vocab.encode("a d e x b".split(), unknown="drop") == [0, 2, 1]
    with_unk = Vocabulary(["a"], unk="<unk>")
    assert with_unk.encode("a q a".split(), unknown="drop") == [1, 1]
    assert vocab.encode([], unknown="drop") == []


def test_unknown_token_without_unk_is_an_error_naming_it():
    vocab = Vocabulary(list("ab"))
    assert vocab.encode("abba") == [0, 1, 1, 0]  # a str is its characters
    with pytest.raises(KeyError, match="'x' is not in the vocabulary"):
        vocab.encode("abxa")
    with pytest.raises(KeyError, match="'x'"):
        vocab.encode("abxa", unknown="error")
    with pytest.raises(KeyError, match="'zz'"):  # "error" is strict even where there is an unk token
        Vocabulary(["a"], unk="<unk>").encode(["a", "zz"], unknown="error")
    with pytest.raises(ValueError, match="unk token"):
        vocab.encode("ab", unknown="unk")
    with pytest.raises(ValueError, match="unknown must be"):
        vocab.encode("ab", unknown="skip")


def test_tokens_must_be_distinct():
    with pytest.raises(ValueError, match="'a' occurs more than once"):
        Vocabulary(["a", "b", "a"])
    with pytest.raises(ValueError, match="distinct"):
        Vocabulary(["a", "<unk>"], unk="<unk>")  # unk anywhere but first would get two ids


def test_counts_are_one_per_id():
    vocab = Vocabulary(["a", "b"], counts=[5, 3])
    assert vocab.counts == [5, 3]
    assert Vocabulary(["a"]).counts is None
    with pytest.raises(ValueError, match="2 counts for 3 tokens"):
        Vocabulary(["a", "b"], unk="<unk>", counts=[5, 3])


def test_from_counts_most_frequent_first_ties_alphabetical():
    tokens = "b a c a b a d e e".split()  # a: 3; b, e: 2; c, d: 1
    vocab = Vocabulary.from_counts(tokens, min_count=2)
    assert vocab.tokens == ["a", "b", "e"] and vocab.counts == [3, 2, 2] and vocab.unk is None
    assert vocab["e"] == 2 and "d" not in vocab
    everything = Vocabulary.from_counts(tokens)  # min_count=1: every token
    assert everything.tokens == ["a", "b", "e", "c", "d"] and everything.counts == [3, 2, 2, 1, 1]
    assert Vocabulary.from_counts(iter(tokens)).tokens == everything.tokens  # any iterable


def test_from_counts_with_unk_counts_what_was_left_out():
    vocab = Vocabulary.from_counts("a b a c a b d".split(), min_count=2, unk="<unk>")
    assert vocab.tokens == ["<unk>", "a", "b"] and vocab.counts == [2, 3, 2]  # c and d are <unk>
    assert vocab.encode("a c b z".split()) == [1, 0, 2, 0]
    assert sum(vocab.counts) == 7
    # the unk token in the data is counted as unk, not given a second id
    vocab = Vocabulary.from_counts("x <unk> x".split(), unk="<unk>")
    assert vocab.tokens == ["<unk>", "x"] and vocab.counts == [1, 2]


def test_of_characters_is_the_sorted_set():
    text = "hello, world\n"
    vocab = Vocabulary.of_characters(text)
    assert vocab.tokens == sorted(set(text)) and vocab.tokens[0] == "\n" and vocab.unk is None
    assert "".join(vocab.decode(vocab.encode(text))) == text
    assert vocab.encode("lo") == [vocab.tokens.index("l"), vocab.tokens.index("o")]
    with pytest.raises(KeyError, match="'z'"):
        vocab.encode("old z")
