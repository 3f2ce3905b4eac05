"""Count-based (n-gram) language models, fast enough for the course's million-character corpora.

Chapter 01 builds these models by hand on small examples; this module is the same mathematics,
vectorised with NumPy, so the chapter can train and evaluate every model of its table in seconds
and later chapters (the RNN in 03, the GPT in 10) can report against the same numbers::

    from coursekit import ngrams

    data = ngrams.load("shakespeare", "char")          # vocabulary, token ids of each split, texts
    model = ngrams.NGramModel(data.ids["train"], len(data.vocab), max_order=5)
    nll = model.nll(data.ids["val"], order=3, method="add_k", k=0.1)   # total nats
    ngrams.nats_per_char(nll, data.texts["val"])       # the course's common unit
    ngrams.baselines()                                  # the chapter's table, as shipped

Tokens are integer ids ``0 … V-1``. Every probability is of a token given the tokens before it;
a model of order ``n`` looks at the previous ``n - 1`` tokens, and the first tokens of a text,
which have fewer predecessors, use the shorter context they have.

The estimators (all normalised: for every context they sum to one over the ``V`` tokens):

* ``"add_k"``: ``(c(h w) + k) / (c(h) + k V)``; a context never seen in training gives ``1/V``
  (what add-k gives for any ``k > 0``, taken as the definition at ``k = 0`` too).
* ``"interp"``: linear interpolation ``sum_j lambdas[j] * p_j(w | h)``, ``j = 0 … n``, with
  ``p_0 = 1/V`` and ``p_j`` the maximum-likelihood estimate of order ``j``; where the context of
  order ``j`` was never seen (or would reach before the start of the text), ``p_j = p_{j-1}``.
* ``"mle"``: the maximum-likelihood estimate of order ``n``, with that same fall-back for unseen
  contexts: ``"interp"`` with all the weight on order ``n``. Unseen n-grams get probability 0.
* ``"kn"`` (extra, beyond the chapter's exercises): interpolated Kneser–Ney, with one absolute
  discount per order, ``D = n1 / (n1 + 2 n2)`` (Ney, Essen & Kneser 1994), raw counts at the top
  order and continuation counts below it (Chen & Goodman 1998, §3).

``python -m coursekit.ngrams --table`` recomputes the chapter's perplexity table and writes it to
``coursekit/data/ngram_baselines.csv`` (``baselines()`` reads it back).
"""
from __future__ import annotations

import argparse
import csv
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from coursekit import corpora
from coursekit.vocab import Vocabulary

UNK = "<unk>"
UNITS = ("char", "word")
METHODS = ("add_k", "interp", "kn")
METHOD_NAMES = {"add_k": "add-k", "interp": "interpolation", "kn": "Kneser–Ney", "mle": "maximum likelihood"}
K_GRID = tuple(float(k) for k in np.geomspace(1e-4, 2.0, 31))  # add-k constants tried on validation
TABLE_PATH = corpora.DATA / "ngram_baselines.csv"
TIE = 1e-4  # nats/char: validation losses closer than this count as a tie, won by the simpler method


# --------------------------------------------------------------------------- tokens


def detokenize(tokens: Sequence[str], unit: str) -> str:
    """Text from tokens: characters are joined; words get spaces, except before punctuation."""
    if unit == "char":
        return "".join(tokens)
    out = ""
    for t in tokens:
        glue = not out or out.endswith(("\n", "-")) or (len(t) == 1 and not t.isalnum() and t not in "\"(—")
        out += t if glue else " " + t
    return out


@dataclass(frozen=True)
class Tokenized:
    """One corpus cut into tokens of one unit: what every model of the chapter trains and reports on."""

    corpus: str
    unit: str                      # "char" or "word"
    vocab: Vocabulary
    ids: dict[str, np.ndarray]     # split -> token ids (int64)
    texts: dict[str, str]          # split -> the text those ids cover (for the per-character unit)

    def unk_rate(self, split: str) -> float:
        """Fraction of the split's tokens that are ``<unk>`` (0 for characters)."""
        if self.vocab.unk is None:
            return 0.0
        return float(np.mean(self.ids[split] == self.vocab[self.vocab.unk]))


@lru_cache(maxsize=None)
def load(corpus: str, unit: str, min_count: int = 2) -> Tokenized:
    """``coursekit.corpora.split(corpus)`` as token ids.

    ``unit="char"``: the corpus's character vocabulary (built on the whole corpus, as nanoGPT does).
    ``unit="word"``: ``corpora.words`` (lower-cased words and punctuation; spaces and line breaks are
    not tokens), with the words seen fewer than ``min_count`` times in training mapped to ``<unk>``.
    """
    texts = corpora.split(corpus)
    if unit == "char":
        vocab = corpora.char_vocab(corpus)
        ids = {s: np.array(vocab.encode(t), dtype=np.int64) for s, t in texts.items()}
    elif unit == "word":
        words = {s: corpora.words(t) for s, t in texts.items()}
        vocab = Vocabulary.from_counts(words["train"], min_count, unk=UNK)  # <unk>, then most frequent
        ids = {s: np.array(vocab.encode(w), dtype=np.int64) for s, w in words.items()}
    else:
        raise ValueError(f"unit must be one of {UNITS}, not {unit!r}")
    return Tokenized(corpus, unit, vocab, ids, dict(texts))


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) in ``text`` of each token of ``corpora.words(text)``, in order."""
    lowered = text.lower()
    if len(lowered) != len(text):  # lower-casing changed the length: offsets would not match
        raise ValueError("lower-casing changes this text's length; spans are undefined")
    return [m.span() for m in corpora._WORD.finditer(lowered)]


def nats_per_char(total_nll: float, text: str) -> float:
    """The course's unit (``coursekit.corpora.nats_per_char``)."""
    return corpora.nats_per_char(total_nll, text)


# --------------------------------------------------------------------------- the model


def _discount(counts: np.ndarray) -> float:
    """Ney's absolute discount n1 / (n1 + 2 n2) from the counts of counts (0.5 when undefined)."""
    n1, n2 = int(np.sum(counts == 1)), int(np.sum(counts == 2))
    return n1 / (n1 + 2 * n2) if n1 + 2 * n2 > 0 else 0.5


class NGramModel:
    """Counts of every n-gram of order 1 … ``max_order`` in a sequence of token ids.

    Order ``j``'s distinct n-grams have dense ids ``0 … num[j]-1``; an n-gram's id is its rank in
    ``keys[j]``, where its key is ``id of its first j-1 tokens * V + its last token``, so the
    n-grams that share a context are contiguous. Per order ``j`` the model keeps:

    * ``counts[j][g]``: how often n-gram ``g`` occurs;
    * ``context_total[j][h]``: ``c(h) = sum_w c(h w)``, how often the (j-1)-gram ``h`` is followed by
      anything (``context_total[1][0]`` is the number of tokens);
    * ``context_types[j][h]``: how many distinct tokens follow ``h``;
    * for Kneser–Ney, the same three with continuation counts (how many distinct tokens precede the
      n-gram), and the discounts.
    """

    def __init__(self, ids: Sequence[int], vocab_size: int, max_order: int = 5):
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 1 or len(ids) == 0:
            raise ValueError("ids must be a non-empty 1-D sequence of token ids")
        if ids.min() < 0 or ids.max() >= vocab_size:
            raise ValueError(f"token ids must lie in 0 … {vocab_size - 1}")
        if max_order < 1:
            raise ValueError("max_order must be at least 1")
        self.V, self.max_order, self.num_tokens = int(vocab_size), int(max_order), len(ids)
        self.num = [1]                   # num[0]: the empty context, id 0
        self.keys, self.counts = [None], [None]
        self.context_total, self.context_types = [None], [None]
        grams = [np.zeros(len(ids), dtype=np.int64)]  # grams[j][i]: id of the j-gram ending at i, -1 if none
        for j in range(1, max_order + 1):
            context = self._shift(grams[j - 1]) if j > 1 else grams[0]
            valid = context >= 0
            keys, inverse, counts = np.unique(context[valid] * self.V + ids[valid],
                                              return_inverse=True, return_counts=True)
            g = np.full(len(ids), -1, dtype=np.int64)
            g[valid] = inverse
            grams.append(g)
            prefix = keys // self.V
            self.num.append(len(keys))
            self.keys.append(keys)
            self.counts.append(counts.astype(np.float64))
            self.context_total.append(np.bincount(prefix, weights=counts, minlength=self.num[j - 1]))
            self.context_types.append(np.bincount(prefix, minlength=self.num[j - 1]).astype(np.float64))
        # The training text's own look-ups, kept: scoring the training text (to show over-fitting) is then free.
        self._train_ids = ids
        self._train_grams = [g.astype(np.int32) for g in grams]
        # Kneser–Ney: continuation counts N1+(• g) of every j-gram g, for j < max_order.
        self.continuation, self.cont_total, self.cont_types = [None], [None], [None]
        self.discount_raw = [None] + [_discount(self.counts[j]) for j in range(1, max_order + 1)]
        self.discount_cont = [None]
        for j in range(1, max_order):
            _, first = np.unique(grams[j + 1], return_index=True)
            suffix = grams[j][first[grams[j + 1][first] >= 0]]  # the last j tokens of each (j+1)-gram
            cont = np.bincount(suffix, minlength=self.num[j]).astype(np.float64)
            prefix = self.keys[j] // self.V
            self.continuation.append(cont)
            self.cont_total.append(np.bincount(prefix, weights=cont, minlength=self.num[j - 1]))
            self.cont_types.append(np.bincount(prefix, weights=cont > 0, minlength=self.num[j - 1]))
            self.discount_cont.append(_discount(cont))

    # ------------------------------------------------------------------ looking n-grams up

    @staticmethod
    def _shift(a: np.ndarray) -> np.ndarray:
        """a[i-1] at position i; -1 at position 0 (nothing before the start)."""
        out = np.empty_like(a)
        out[0] = -1
        out[1:] = a[:-1]
        return out

    def _lookup(self, j: int, context: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Ids of the j-grams (context id, token), -1 where the context is -1 or the j-gram unseen."""
        out = np.full(len(tokens), -1, dtype=np.int64)
        valid = context >= 0
        keys = context[valid] * self.V + tokens[valid]
        index = np.searchsorted(self.keys[j], keys)
        index[index == len(self.keys[j])] = 0
        found = self.keys[j][index] == keys
        out[np.flatnonzero(valid)[found]] = index[found]
        return out

    def grams(self, ids: Sequence[int], order: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """``(grams, contexts)``: for j = 0 … order, ``grams[j][i]`` is the id of the j-gram ending at
        token i and ``contexts[j][i]`` that of the (j-1)-gram before token i (``contexts[0]`` unused);
        -1 where it was never seen in training or would reach before the start of the text."""
        if not 1 <= order <= self.max_order:
            raise ValueError(f"order must be in 1 … {self.max_order}")
        ids = np.asarray(ids, dtype=np.int64)
        if ids is self._train_ids or (len(ids) == len(self._train_ids) and np.array_equal(ids, self._train_ids)):
            grams = [g.astype(np.int64) for g in self._train_grams[:order + 1]]
            return grams, [None, grams[0]] + [self._shift(g) for g in grams[1:order]]
        grams, contexts = [np.zeros(len(ids), dtype=np.int64)], [None]
        for j in range(1, order + 1):
            contexts.append(self._shift(grams[j - 1]) if j > 1 else grams[0])
            grams.append(self._lookup(j, contexts[j], ids))
        return grams, contexts

    def context_id(self, context: Sequence[int]) -> int:
        """Id of the (len(context))-gram ``context``, -1 if it was never seen (() -> 0)."""
        h = 0
        for j, t in enumerate(context, start=1):
            if j > self.max_order:
                return -1
            h = int(self._lookup(j, np.array([h]), np.array([int(t)]))[0])
            if h < 0:
                return -1
        return h

    def count(self, ngram: Sequence[int]) -> int:
        """c(ngram) in the training text (0 if unseen)."""
        if len(ngram) == 0:
            return self.num_tokens
        g = self.context_id(ngram)
        return 0 if g < 0 else int(self.counts[len(ngram)][g])

    # ------------------------------------------------------------------ probabilities of a text

    @staticmethod
    def _gather(values: np.ndarray, index: np.ndarray) -> np.ndarray:
        """values[index], 0 where index is -1."""
        return np.where(index >= 0, values[np.maximum(index, 0)], 0.0)

    def components(self, ids: Sequence[int], order: int) -> np.ndarray:
        """(N, order + 1) array: column j holds p_j(token i | its j-1 predecessors), the
        maximum-likelihood estimate of order j (column 0: 1/V), with p_j = p_{j-1} where the
        context of order j was never seen. The input of interpolation."""
        grams, contexts = self.grams(ids, order)
        p = np.empty((len(grams[0]), order + 1))
        p[:, 0] = 1.0 / self.V
        for j in range(1, order + 1):
            total = self._gather(self.context_total[j], contexts[j])
            count = self._gather(self.counts[j], grams[j])
            p[:, j] = np.where(total > 0, count / np.maximum(total, 1.0), p[:, j - 1])
        return p

    @staticmethod
    def _at(grams, contexts, i: int):
        """The look-ups of token i alone (to predict the first tokens with shorter contexts)."""
        return [g[i:i + 1] for g in grams], [None] + [c[i:i + 1] for c in contexts[1:]]

    def _add_k(self, grams, contexts, j: int, k: float) -> np.ndarray:
        total = self._gather(self.context_total[j], contexts[j])
        count = self._gather(self.counts[j], grams[j])
        seen = total > 0
        return np.where(seen, (count + k) / np.where(seen, total + k * self.V, 1.0), 1.0 / self.V)

    def _kneser_ney(self, grams, contexts, order: int) -> np.ndarray:
        p = np.full(len(grams[0]), 1.0 / self.V)
        for j in range(1, order + 1):
            top = j == order
            count = self._gather(self.counts[j] if top else self.continuation[j], grams[j])
            total = self._gather(self.context_total[j] if top else self.cont_total[j], contexts[j])
            types = self._gather(self.context_types[j] if top else self.cont_types[j], contexts[j])
            d = self.discount_raw[j] if top else self.discount_cont[j]
            safe = np.maximum(total, 1e-300)
            p = np.where(total > 0, np.maximum(count - d, 0.0) / safe + d * types / safe * p, p)
        return p

    def probabilities(self, ids: Sequence[int], order: int, method: str = "add_k", k: float = 1.0,
                      lambdas: Sequence[float] | None = None) -> np.ndarray:
        """(N,) probability of each token of ``ids`` given its predecessors (see the module docstring)."""
        ids = np.asarray(ids, dtype=np.int64)
        if method == "add_k":
            grams, contexts = self.grams(ids, order)
            p = self._add_k(grams, contexts, order, k)
            for i in range(min(order - 1, len(ids))):  # the first tokens: the shorter context they have
                p[i] = self._add_k(*self._at(grams, contexts, i), i + 1, k)[0]
            return p
        if method == "kn":
            grams, contexts = self.grams(ids, order)
            p = self._kneser_ney(grams, contexts, order)
            for i in range(min(order - 1, len(ids))):
                p[i] = self._kneser_ney(*self._at(grams, contexts, i), i + 1)[0]
            return p
        if method == "mle":
            return self.components(ids, order)[:, -1]
        if method == "interp":
            lambdas = self._check_lambdas(lambdas, order)
            return self.components(ids, order) @ lambdas
        raise ValueError(f"unknown method {method!r}; choose from add_k, interp, mle, kn")

    @staticmethod
    def _check_lambdas(lambdas, order: int) -> np.ndarray:
        if lambdas is None:
            raise ValueError("interpolation needs lambdas: one weight per order 0 … n")
        lambdas = np.asarray(lambdas, dtype=np.float64)
        if lambdas.shape != (order + 1,) or (lambdas < 0).any() or not math.isclose(lambdas.sum(), 1.0, abs_tol=1e-9):
            raise ValueError(f"lambdas must be {order + 1} non-negative weights summing to 1, got {lambdas}")
        return lambdas

    def nll(self, ids: Sequence[int], order: int, **kwargs) -> float:
        """Total negative log-likelihood of ``ids``, in nats (inf if a token gets probability 0)."""
        with np.errstate(divide="ignore"):
            return float(-np.log(self.probabilities(ids, order, **kwargs)).sum())

    # ------------------------------------------------------------------ choosing the smoothing

    def add_k_nll(self, ids: Sequence[int], order: int, ks: Sequence[float]) -> np.ndarray:
        """Total NLL of ``ids`` under add-k of ``order`` for each k of ``ks`` (the n-grams looked up once)."""
        grams, contexts = self.grams(ids, order)
        out = []
        for k in ks:
            p = self._add_k(grams, contexts, order, k)
            for i in range(min(order - 1, len(p))):
                p[i] = self._add_k(*self._at(grams, contexts, i), i + 1, k)[0]
            with np.errstate(divide="ignore"):
                out.append(float(-np.log(p).sum()))
        return np.array(out)

    def tune_k(self, ids: Sequence[int], order: int, grid: Sequence[float] = K_GRID) -> tuple[float, float]:
        """The add-k constant of ``grid`` with the lowest NLL on ``ids`` (a validation split): (k, nll)."""
        nll = self.add_k_nll(ids, order, grid)
        best = int(np.argmin(nll))
        return float(grid[best]), float(nll[best])

    def tune_lambdas(self, ids: Sequence[int], order: int, iterations: int = 200,
                     tol: float = 1e-7) -> np.ndarray:
        """Interpolation weights that maximise the likelihood of ``ids`` (a validation split), by EM.

        E-step: each token's posterior over which order "produced" it, lambda_j p_j / sum_m lambda_m p_m;
        M-step: lambda_j = the mean of those posteriors (Jelinek & Mercer 1980)."""
        p = self.components(ids, order)
        lambdas = np.full(order + 1, 1.0 / (order + 1))
        previous = math.inf
        for _ in range(iterations):
            mix = p @ lambdas
            lambdas = lambdas * (p / mix[:, None]).mean(axis=0)
            lambdas /= lambdas.sum()
            nll = float(-np.log(mix).sum())
            if previous - nll < tol * len(p):
                break
            previous = nll
        return lambdas

    # ------------------------------------------------------------------ the next token

    def next_token_distribution(self, context: Sequence[int], order: int, method: str = "add_k",
                                k: float = 1.0, lambdas: Sequence[float] | None = None) -> np.ndarray:
        """(V,) P(w | context) for every token w, from the last ``order - 1`` tokens of ``context``
        (fewer if ``context`` is shorter). Same estimators as ``probabilities``."""
        context = [int(t) for t in context][max(0, len(context) - (order - 1)):] if order > 1 else []
        used = len(context) + 1  # the order the context allows
        comps, block = [np.full(self.V, 1.0 / self.V)], []
        for j in range(1, order + 1):
            h = self.context_id(context[len(context) - (j - 1):]) if j <= used else -1
            if h < 0:
                block.append(None)
                continue
            lo, hi = np.searchsorted(self.keys[j], [h * self.V, (h + 1) * self.V])
            block.append((h, lo, hi, self.keys[j][lo:hi] - h * self.V))
        if method in ("mle", "interp"):
            for j, b in enumerate(block, start=1):
                p = comps[-1].copy()
                if b is not None and self.context_total[j][b[0]] > 0:
                    p = np.zeros(self.V)
                    p[b[3]] = self.counts[j][b[1]:b[2]] / self.context_total[j][b[0]]
                comps.append(p)
            if method == "mle":
                return comps[-1]
            return np.stack(comps, axis=1) @ self._check_lambdas(lambdas, order)
        if method == "add_k":
            top = min(order, used)
            b = block[top - 1]
            if b is None or self.context_total[top][b[0]] == 0:
                return np.full(self.V, 1.0 / self.V)
            c = np.zeros(self.V)
            c[b[3]] = self.counts[top][b[1]:b[2]]
            return (c + k) / (self.context_total[top][b[0]] + k * self.V)
        if method == "kn":
            top = min(order, used)
            p = comps[0]
            for j in range(1, top + 1):
                b = block[j - 1]
                if b is None:
                    continue
                h, lo, hi, tokens = b
                last = j == top
                total = (self.context_total[j] if last else self.cont_total[j])[h]
                if total == 0:
                    continue
                types = (self.context_types[j] if last else self.cont_types[j])[h]
                d = self.discount_raw[j] if last else self.discount_cont[j]
                c = np.zeros(self.V)
                c[tokens] = (self.counts[j] if last else self.continuation[j])[lo:hi]
                p = np.maximum(c - d, 0.0) / total + d * types / total * p
            return p
        raise ValueError(f"unknown method {method!r}; choose from add_k, interp, mle, kn")

    def sample(self, length: int, order: int, seed: int = 0, prompt: Sequence[int] = (),
               **kwargs) -> list[int]:
        """``length`` token ids drawn one after the other, each from ``next_token_distribution`` of
        what came before (``prompt`` then the tokens drawn so far), by inverse-CDF sampling: with u
        uniform in [0, 1), the first token whose cumulative probability exceeds u (the procedure of
        the chapter's ``sample_next_token``). ``kwargs``: ``method``, ``k``, ``lambdas``."""
        rng = np.random.default_rng(seed)
        history, out = [int(t) for t in prompt], []
        for u in rng.random(length):
            cdf = np.cumsum(self.next_token_distribution(history, order, **kwargs))
            token = int(np.searchsorted(cdf, u, side="right"))
            if token >= self.V:  # rounding left the total just below u: the last possible token
                token = int(np.flatnonzero(np.diff(np.concatenate([[0.0], cdf])) > 0)[-1])
            history.append(token)
            out.append(token)
        return out


@lru_cache(maxsize=None)
def model_for(corpus: str, unit: str, max_order: int = 5) -> NGramModel:
    """The model trained on ``load(corpus, unit)``'s training split (cached)."""
    data = load(corpus, unit)
    return NGramModel(data.ids["train"], len(data.vocab), max_order)


# --------------------------------------------------------------------------- the chapter's table

TABLE_COLUMNS = (
    "corpus", "unit", "n", "vocab_size", "train_tokens", "test_tokens", "test_unk_rate",
    "k", "lambdas",
    "val_add_k", "val_interp", "val_kn", "test_add_k", "test_interp", "test_kn",
    "best", "val_nats_per_char", "test_nats_per_char", "test_ppl_per_char", "test_ppl_per_token",
)


def evaluate(corpus: str, unit: str, orders: Sequence[int] = (1, 2, 3, 4, 5)) -> list[dict]:
    """Held-out results of the models of each order on one corpus and unit.

    For each order n: add-k with k chosen on the validation split (``K_GRID``), interpolation with
    weights fitted on the validation split by EM, and Kneser–Ney (discounts from the training
    counts, nothing tuned). ``best`` is the method with the lowest validation loss; its test loss is
    the row's result (a method within ``TIE`` of the lowest counts as tied, and the first of
    add-k, interpolation, Kneser–Ney among the tied wins). Losses are in nats per character of the split's text (``val_*``, ``test_*``).
    """
    data, model = load(corpus, unit), model_for(corpus, unit, max(orders))
    val, test = data.ids["val"], data.ids["test"]
    rows = []
    for n in orders:
        k, _ = model.tune_k(val, n)
        lambdas = model.tune_lambdas(val, n)
        settings = {"add_k": dict(method="add_k", k=k), "interp": dict(method="interp", lambdas=lambdas),
                    "kn": dict(method="kn")}
        row = dict(corpus=corpus, unit=unit, n=n, vocab_size=len(data.vocab), train_tokens=len(data.ids["train"]),
                   test_tokens=len(test), test_unk_rate=data.unk_rate("test"), k=k,
                   lambdas=" ".join(f"{x:.6f}" for x in lambdas))
        for split, ids in (("val", val), ("test", test)):
            for method, kw in settings.items():
                row[f"{split}_{method}"] = nats_per_char(model.nll(ids, n, **kw), data.texts[split])
        lowest = min(row[f"val_{m}"] for m in METHODS)
        best = next(m for m in METHODS if row[f"val_{m}"] <= lowest + TIE)  # ties: the simpler method
        total_test_nll = row[f"test_{best}"] * len(data.texts["test"])
        row.update(best=best, val_nats_per_char=row[f"val_{best}"], test_nats_per_char=row[f"test_{best}"],
                   test_ppl_per_char=math.exp(row[f"test_{best}"]),
                   test_ppl_per_token=math.exp(total_test_nll / len(test)))
        rows.append(row)
    return rows


def perplexity_table(corpora_: Sequence[str] = corpora.CORPORA, units: Sequence[str] = UNITS,
                     orders: Sequence[int] = (1, 2, 3, 4, 5)) -> list[dict]:
    """``evaluate`` for every corpus and unit: the chapter's table, one row per (corpus, unit, n)."""
    return [row for c in corpora_ for u in units for row in evaluate(c, u, orders)]


def write_table(rows: list[dict], path: Path = TABLE_PATH) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TABLE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: (f"{row[key]:.6f}" if isinstance(row[key], float) else row[key])
                             for key in TABLE_COLUMNS})
    return path


def baselines(path: Path = TABLE_PATH) -> list[dict]:
    """The chapter's table as shipped (``python -m coursekit.ngrams --table`` writes it): one dict per
    (corpus, unit, n), numbers as floats. Chapters 03 and 10 compare their models with these rows."""
    numeric = {"n", "vocab_size", "train_tokens", "test_tokens"}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key, value in row.items():
            if key in numeric:
                row[key] = int(value)
            elif key not in ("corpus", "unit", "best", "lambdas"):
                row[key] = float(value)
    return rows


def settings_of(row: dict) -> dict:
    """The keyword arguments of ``NGramModel.probabilities``/``nll`` that reproduce a table row's
    kept method: ``model.nll(ids, row["n"], **settings_of(row))``."""
    if row["best"] == "add_k":
        return {"method": "add_k", "k": float(row["k"])}
    if row["best"] == "interp":
        lambdas = np.array([float(x) for x in str(row["lambdas"]).split()])
        return {"method": "interp", "lambdas": lambdas / lambdas.sum()}
    return {"method": row["best"]}


def best_baseline(corpus: str, unit: str = "char", path: Path = TABLE_PATH) -> dict:
    """The row of the shipped table with the lowest *validation* loss for a corpus and unit: the
    n-gram number a neural model of chapters 03 and 10 has to beat (compare its test nats/char)."""
    rows = [r for r in baselines(path) if r["corpus"] == corpus and r["unit"] == unit]
    return min(rows, key=lambda r: r["val_nats_per_char"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.ngrams", description=__doc__.split("\n")[0])
    parser.add_argument("--table", action="store_true", help=f"recompute the table and write {TABLE_PATH.name}")
    parser.add_argument("--out", type=Path, default=TABLE_PATH, help="where to write it")
    args = parser.parse_args(argv)
    if not args.table:
        parser.print_help()
        return 0
    rows = perplexity_table()
    write_table(rows, args.out)
    for r in rows:
        print(f"{r['corpus']:>12} {r['unit']:>4} n={r['n']}  best {r['best']:<7} "
              f"test {r['test_nats_per_char']:.4f} nats/char (ppl/char {r['test_ppl_per_char']:.3f})")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
