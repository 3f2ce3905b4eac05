"""The one vocabulary of the course: tokens <-> integer ids.

Every model in the course turns text into ids with a ``Vocabulary`` and ids back into tokens with
it: the characters and words of chapter 01's n-grams, the words of chapter 02's vectors, and the
tokenizers of the later chapters::

    from coursekit.vocab import Vocabulary

    chars = Vocabulary.of_characters("hello")           # ['e', 'h', 'l', 'o']
    chars.encode("hole")                                # [1, 3, 2, 0]
    "".join(chars.decode([1, 0, 2, 2, 3]))              # 'hello'

    words = Vocabulary.from_counts("a b a c".split(), min_count=2, unk="<unk>")
    words.tokens, words.counts                          # ['<unk>', 'a'], [2, 2]
    words.encode(["a", "z"])                            # [1, 0]: 'z' is <unk>

``encode`` returns a list of ints; a caller that needs an array or a tensor converts it
(``np.array(ids, dtype=np.int64)``, ``torch.tensor(ids)``).
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence


class Vocabulary:
    """Tokens <-> integer ids in a fixed order: ``tokens[i]`` has id ``i``.

    ``tokens``: list[str], distinct. ``unk``: str or None; with it, that token is id 0 (put in front
    of ``tokens`` unless it is already their first) and stands for every token outside the list.
    ``counts``: list[int] or None, how often each token was seen, one per id (same order as
    ``tokens``, ``unk`` included).
    """

    def __init__(self, tokens: Sequence[str], unk: str | None = None, counts: Sequence[int] | None = None):
        self.tokens = list(tokens)
        if unk is not None and self.tokens[:1] != [unk]:
            self.tokens.insert(0, unk)
        self.unk = unk
        self.counts = None if counts is None else [int(c) for c in counts]
        self._ids = {t: i for i, t in enumerate(self.tokens)}
        if len(self._ids) != len(self.tokens):
            repeated = next(t for t, n in Counter(self.tokens).items() if n > 1)
            raise ValueError(f"tokens must be distinct; {repeated!r} occurs more than once")
        if self.counts is not None and len(self.counts) != len(self.tokens):
            raise ValueError(f"{len(self.counts)} counts for {len(self.tokens)} tokens")

    @classmethod
    def from_counts(cls, tokens: Iterable[str], min_count: int = 1, unk: str | None = None) -> Vocabulary:
        """The tokens seen at least ``min_count`` times, most frequent first, ties in alphabetical
        order, with their counts. With ``unk`` (id 0), its count is that of the tokens left out."""
        seen = Counter(tokens)
        kept = sorted((t for t, c in seen.items() if c >= min_count and t != unk), key=lambda t: (-seen[t], t))
        counts = [seen[t] for t in kept]
        if unk is not None:
            counts.insert(0, sum(seen.values()) - sum(counts))
        return cls(kept, unk=unk, counts=counts)

    @classmethod
    def of_characters(cls, text: str) -> Vocabulary:
        """The distinct characters of ``text`` (str), in sorted order (as nanoGPT does)."""
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        """True if ``token`` has an id of its own (a token that ``unk`` stands for is not in)."""
        return token in self._ids

    def __getitem__(self, token: str) -> int:
        """The id of ``token``; KeyError if it has none (``encode`` is where ``unk`` applies)."""
        try:
            return self._ids[token]
        except KeyError:
            raise KeyError(f"{token!r} is not in the vocabulary") from None

    def encode(self, tokens: Iterable[str], unknown: str | None = None) -> list[int]:
        """The ids of ``tokens`` (an iterable of str; a str is its characters), as a list[int].

        ``unknown`` says what happens to a token outside the vocabulary: ``"unk"``, the id of
        ``unk``; ``"drop"``, left out; ``"error"``, KeyError naming it. Default: ``"unk"`` if the
        vocabulary has an ``unk`` token, ``"error"`` otherwise.
        """
        if unknown is None:
            unknown = "error" if self.unk is None else "unk"
        if unknown == "error":
            try:
                return [self._ids[t] for t in tokens]
            except KeyError as e:
                raise KeyError(f"{e.args[0]!r} is not in the vocabulary") from None
        if unknown == "drop":
            return [self._ids[t] for t in tokens if t in self._ids]
        if unknown == "unk":
            if self.unk is None:
                raise ValueError('unknown="unk" needs a vocabulary with an unk token')
            return [self._ids.get(t, 0) for t in tokens]
        raise ValueError(f'unknown must be "error", "unk" or "drop", not {unknown!r}')

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The tokens of ``ids`` (ints, or a NumPy array or tensor of them), as a list[str]."""
        return [self.tokens[int(i)] for i in ids]
