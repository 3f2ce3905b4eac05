"""The course's translation task: Spanish -> English Bible verses, one data set for chapters 04, 05, 06 and 08.

Every translation model in the course (the encoder-decoder RNN of 04, its attention version in 05, the
beam search of 06, the Transformer of 08) trains on ``split("train")``, chooses settings on
``split("val")`` and reports on ``split("test")``, with the same subword tokenizer (``tokenizer()``) and the
same scores (``evaluate``: sacreBLEU corpus BLEU and chrF on detokenized text, with 95% bootstrap intervals;
``bleu_by_length``: the same per source-length bucket)::

    from coursekit import translation as tr

    test = tr.split("test")                     # tuple of Pair(book, chapter, verse, src, tgt)
    src = tr.encode([p.src for p in test[:4]])  # LongTensor (4, T), <eos>-terminated, <pad>=0
    hyps = tr.decode(model_output_ids)          # list[str], detokenized, cut at <eos>
    tr.evaluate(hyps, [p.tgt for p in test])    # {"bleu": Score, "chrf": Score}, with signatures

The data (provenance in ``coursekit/data/SOURCES.md``): 30,651 verses aligned by book/chapter/verse,
English from the World English Bible, Spanish from the Reina-Valera 1909, both public domain, shipped as
``coursekit/data/translation/bible_en_es.tsv.gz`` and read offline.

Direction: Spanish -> English. Three reasons.
(1) The side that BLEU scores should be text whose spelling means something. The target is what a
model must reproduce character for character; the Reina-Valera 1909 writes the preposition "á", "fué",
"vió", "dió", enclitics such as "díjole", and drop capitals at chapter openings ("EN el principio").
As a target, BLEU would reward reproducing 1909 orthography and punish modern Spanish ("a", "fue") that
a Spanish- or Portuguese-speaking student would rightly call correct. As a source, those quirks only
make the input a little noisier. The World English Bible is modern, consistently edited English.
(2) The book's prose is in English, so every reader can judge the outputs, the decoder's candidates
and the beam-search errors that chapters 04-06 show; students whose first language is Portuguese read
the Spanish source easily.
(3) The lecture's examples translate a Romance language into English ("Jane s'est rendue en Afrique en
septembre dernier...", "Jane visite l'Afrique en septembre." -> "Jane visits Africa in September."),
so the chapters' own verses go the same way.

Cleaning (``normalise``, ``_fix_drop_capitals``). Every text: Unicode NFC, one spelling for quotes and
dashes (the mapping of ``coursekit.corpora.normalise``: curly quotes become ASCII ``"`` and ``'``, the
en dash the em dash), every run of whitespace one space, none at either end. Spanish only: the drop
capitals that open 1,160 of the 1,166 chapters ("Y FUÉ á mí palabra", "Salmo de David. JEHOVÁ es mi
pastor") are recased: each word of that first all-capitals run takes the casing it has most often
elsewhere in the Spanish text ("Jehová", "sus") and is capitalised at a sentence start. All-capitals
text inside verses ("YO SOY EL QUE SOY", "REY DE REYES") is left as it is. Nothing else changes: the
archaic spelling stays.

Splits, by chapter, never by verse. The 1,166 chapters in canonical order (Genesis 1 = 0; the file has
no Hosea) go by their index k: ``k % 20 == 9`` to validation, ``k % 20`` in {4, 14} to test, the rest
to training (85 / 5 / 10% of the chapters, spread evenly over the whole Bible, so every genre is in
every split, and no test verse has its neighbours in training). Then, in this order:

- length filter: keep pairs whose source has 1 to ``MAX_SOURCE_WORDS`` = 50 words (whitespace-separated,
  after cleaning, punctuation attached: ``source_words``); 98.8% of the verses, and wide enough for
  BLEU by source length up to 50 words;
- alignment filter: drop pairs whose longer side has more than ``RATIO_MIN_WORDS`` = 8 words and more
  than ``MAX_LENGTH_RATIO`` = 2 times the words of the shorter one (the two translations number some
  verses differently: a Spanish verse of 44 words against an English one of 12 is not a translation);
- exact duplicates: a validation or test pair whose source or target also occurs in training (or, for
  test, in validation; or earlier in its own split) is dropped ("Y habló Jehová á Moisés, diciendo:"
  occurs 19 times). Training keeps its repeats. Near-copies in parallel passages (Kings and
  Chronicles, the synoptic gospels) remain, as they would in any split of this text.

=====  =======  ============  ============  =========================================
split  pairs    source words  target words  dropped: length / alignment / duplicate
=====  =======  ============  ============  =========================================
train  25,722   573,222       612,297       308 / 51 / 0
val     1,425    31,776        34,152        21 /  7 / 27
test    2,991    66,754        71,304        35 /  6 / 58
=====  =======  ============  ============  =========================================

(22.3 source and 23.8 target words per verse in every split.) Test pairs per source-length bucket
(``bucket_sizes("test")``, the buckets of ``LENGTH_BUCKETS``): 1-10 words: 211, 11-20: 1,232,
21-30: 968, 31-40: 450, 41-50: 130.

Tokenizer: one byte-pair-encoding vocabulary of ``VOCAB_SIZE`` = 4,000 subwords for both languages,
trained with Hugging Face ``tokenizers`` on the sources and targets of the training split only,
shipped as ``coursekit/data/translation/tokenizer.json`` (read with ``Tokenizer.from_file``) and
regenerated, byte for byte (BPE training is deterministic), in 5-10 s by::

    python -m coursekit.translation --tokenizer

Joint rather than separate: the two languages share an alphabet and thousands of names (Moisés/Moses,
Faraón/Pharaoh, Jerusalén/Jerusalem), which one vocabulary cuts into the same pieces on both sides;
one file and one id space are simpler for students; chapter 08 can tie the source, target and output
embeddings. Small, because on a CPU the output softmax dominates a small model's cost and its
checkpoint's size: 8,000 subwords would make the test verses only 10% shorter (31.4 tokens instead of
34.5, measured) for twice the output layer. The pipeline: the normaliser does what ``normalise`` does
(NFC, the same quote and dash mapping, whitespace); the pre-tokenizer writes word starts as "▁" (as
SentencePiece does) and cuts the text into letter runs, digit runs and single punctuation marks, each
with the "▁" before it ("▁¿", "Quién", "▁dijo", ":"); the decoder turns "▁" back into spaces. So
``decode(encode(s)) == normalise(s)`` for every string whose characters are in the tokenizer's
alphabet (printable ASCII, the accented letters of Spanish, Portuguese and French, ¿ ¡ — « »: every
character of the data); any other character becomes ``<unk>``, which decoding drops. Special tokens,
fixed ids: ``<pad>`` = 0, ``<bos>`` = 1, ``<eos>`` = 2, ``<unk>`` = 3. Tokens per verse, without
specials (source / target): training 34.2 / 34.0, validation 34.3 / 34.4, test 34.7 / 34.4, about
1.5 subwords per word.

Scores (helpers for the chapters, not exercises): ``bleu`` and ``chrf`` are sacreBLEU's corpus BLEU
(13a tokenization, mixed case, exponential smoothing) and chrF (character 6-grams, beta 2) on
detokenized text. ``evaluate`` adds 95% intervals by bootstrap resampling of sentences and the
signatures (``nrefs:1|bs:1000|seed:12345|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0``): 1,000
resamples, seeded, the same draws and the same percentile interval as sacreBLEU's own
``--confidence`` (whose default seed, 12345, is the default here). ``paired_bootstrap`` compares two
systems on the same resamples (Koehn 2004); ``bleu_by_length`` scores each source-length bucket with
its own interval.

Time, measured on the course's 2-core machine while it was shared (load average 5): importing this
module takes what importing torch takes (1.5 s of CPU); reading, cleaning and splitting the verses
and loading the tokenizer take 0.8 s of CPU (1-2.5 s wall); encoding every split (``encoded``,
cached, done only when asked) 3-4 s of CPU.
"""
from __future__ import annotations

import argparse
import gzip
import re
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from coursekit import corpora

DATA = Path(__file__).resolve().parent / "data" / "translation"
PAIRS_FILE = DATA / "bible_en_es.tsv.gz"
TOKENIZER_FILE = DATA / "tokenizer.json"

SOURCE_LANGUAGE, TARGET_LANGUAGE = "es", "en"
SPLITS = ("train", "val", "test")
MAX_SOURCE_WORDS = 50
MAX_LENGTH_RATIO = 2.0
RATIO_MIN_WORDS = 8  # the alignment filter applies only when the longer side has more words than this
LENGTH_BUCKETS = ((1, 10), (11, 20), (21, 30), (31, 40), (41, 50))  # source words, inclusive

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = 0, 1, 2, 3
VOCAB_SIZE = 4000
# Characters the tokenizer knows even if training never saw them (so no test verse meets <unk>).
ALPHABET = sorted(set(
    [chr(c) for c in range(0x21, 0x7F)]
    + list("áéíóúàèìòùâêîôûãõäëïöüçñÁÉÍÓÚÀÈÌÒÙÂÊÎÔÛÃÕÄËÏÖÜÇÑ¿¡—«»")))

BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 12345  # sacreBLEU's own default (SACREBLEU_SEED), so the intervals match its CLI's


# --------------------------------------------------------------------------------------------- data

@dataclass(frozen=True)
class Pair:
    """One verse: where it is (``book`` as in the file, e.g. "Gen"; ``chapter``, ``verse``: int), its
    Spanish source ``src`` and English target ``tgt`` (str, cleaned)."""
    book: str
    chapter: int
    verse: int
    src: str
    tgt: str

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.book, self.chapter, self.verse)

    @property
    def src_words(self) -> int:
        return source_words(self.src)


# ``coursekit.corpora``'s typography mapping, applied with str.replace (the same result as its
# ``str.translate``, ten times faster on the 5.6 M characters of the verses).
_TYPOGRAPHY = tuple((chr(k), v) for k, v in sorted(corpora._TYPOGRAPHY.items()))


def normalise(text: str) -> str:
    """Unicode NFC, one spelling for quotes and dashes (those of ``coursekit.corpora.normalise``),
    every run of whitespace one space, none at either end: 'Dijo:  “Sea la luz” ' -> 'Dijo: "Sea la luz"'."""
    return " ".join(_typography(text).split())


def _typography(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    for old, new in _TYPOGRAPHY:
        text = text.replace(old, new)
    return text


def source_words(text: str) -> int:
    """The number of words of a (cleaned) text: whitespace-separated pieces, punctuation attached
    ("¿Y dijo Dios:" is 3). The unit of the length filter and of the length buckets."""
    return len(text.split())


_LETTERS = re.compile(r"[^\W\d_]+")


def _letters(word: str) -> str:
    return "".join(_LETTERS.findall(word))


def _is_capitals(word: str) -> bool:
    letters = _letters(word)
    return bool(letters) and letters.isupper()


def _capitalise(word: str) -> str:
    """Upper-case the first letter of ``word`` ('¿hasta' -> '¿Hasta')."""
    for i, ch in enumerate(word):
        if ch.isalpha():
            return word[:i] + ch.upper() + word[i + 1:]
    return word


def _fix_drop_capitals(text: str, counts: Counter) -> str:
    """Recase the all-capitals run that opens a chapter in the Reina-Valera ('Y FUÉ á mí' -> 'Y fué á
    mí'). The run is the first word with two or more capital letters and no lower-case ones, with the
    one-letter capitals before it ('A TI', 'Y Á SUS'), and the capitals words after it; it must start
    the verse or follow a word ending in '.' or ':' (after a psalm's heading). Each of its words takes
    the casing it has most often elsewhere (``counts``: letters-only word -> occurrences), and is
    capitalised at the start of a sentence."""
    words = text.split(" ")
    first = next((i for i, w in enumerate(words) if len(_letters(w)) >= 2 and _is_capitals(w)), None)
    if first is None:
        return text
    start = first
    while start > 0 and _is_capitals(words[start - 1]):
        start -= 1
    if start > 0 and not words[start - 1].endswith((".", ":")):
        return text
    end = first + 1
    while end < len(words) and _is_capitals(words[end]):
        end += 1
    for j in range(start, end):
        lower = words[j].lower()
        core = _letters(lower)
        sentence_start = j == start or words[j - 1].endswith((".", ":", "?", "!"))
        if sentence_start or counts[core.capitalize()] > counts[core]:
            lower = _capitalise(lower)
        words[j] = lower
    return " ".join(words)


def _split_of_chapter(index: int) -> str:
    """Chapter ``index`` (0 = Genesis 1, in canonical order) -> "train", "val" or "test"."""
    return {9: "val", 4: "test", 14: "test"}.get(index % 20, "train")


@lru_cache(maxsize=None)
def verses() -> tuple[Pair, ...]:
    """All 30,651 verses, cleaned (``normalise``, drop capitals recased), in canonical order; no filter."""
    with gzip.open(PAIRS_FILE, "rb") as f:
        lines = _typography(f.read().decode("utf-8")).splitlines()
    assert lines[0].split("\t") == ["book", "chapter", "verse", "en", "es"], lines[0]
    rows = [line.split("\t") for line in lines[1:]]
    es = [" ".join(r[4].split()) for r in rows]
    counts: Counter = Counter()
    for word, n in Counter(" ".join(es).split()).items():
        counts[_letters(word)] += n
    return tuple(Pair(r[0], int(r[1]), int(r[2]), _fix_drop_capitals(src, counts) if r[2] == "1" else src,
                      " ".join(r[3].split())) for r, src in zip(rows, es))


def _aligned(pair: Pair) -> bool:
    a, b = source_words(pair.src), source_words(pair.tgt)
    longer, shorter = max(a, b), max(1, min(a, b))
    return longer <= RATIO_MIN_WORDS or longer <= MAX_LENGTH_RATIO * shorter


@lru_cache(maxsize=None)
def _splits() -> tuple[dict[str, tuple[Pair, ...]], dict[str, Counter]]:
    chapters: dict[tuple[str, int], int] = {}
    parts: dict[str, list[Pair]] = {name: [] for name in SPLITS}
    for pair in verses():
        index = chapters.setdefault((pair.book, pair.chapter), len(chapters))
        parts[_split_of_chapter(index)].append(pair)
    dropped = {name: Counter() for name in SPLITS}
    seen_src: set[str] = set()
    seen_tgt: set[str] = set()
    kept: dict[str, tuple[Pair, ...]] = {}
    for name in SPLITS:  # train first: val and test drop what an earlier split (or themselves) holds
        out = []
        for pair in parts[name]:
            if not 1 <= pair.src_words <= MAX_SOURCE_WORDS:
                dropped[name]["length"] += 1
            elif not _aligned(pair):
                dropped[name]["alignment"] += 1
            elif name != "train" and (pair.src in seen_src or pair.tgt in seen_tgt):
                dropped[name]["duplicate"] += 1
            else:
                out.append(pair)
                if name != "train":
                    seen_src.add(pair.src)
                    seen_tgt.add(pair.tgt)
        if name == "train":
            seen_src.update(p.src for p in out)
            seen_tgt.update(p.tgt for p in out)
        kept[name] = tuple(out)
    return kept, dropped


def split(name: str) -> tuple[Pair, ...]:
    """The pairs of split ``name`` ("train", "val" or "test"), filtered, in canonical order (cached)."""
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; choose from {SPLITS}")
    return _splits()[0][name]


def dropped(name: str) -> dict[str, int]:
    """How many verses of split ``name`` each filter removed: {"length", "alignment", "duplicate"}."""
    counts = _splits()[1][name]
    return {reason: counts[reason] for reason in ("length", "alignment", "duplicate")}


def split_summary() -> dict[str, dict[str, int]]:
    """Per split: pairs, source words, target words, and the verses each filter dropped."""
    out = {}
    for name in SPLITS:
        pairs = split(name)
        out[name] = {"pairs": len(pairs), "src_words": sum(p.src_words for p in pairs),
                     "tgt_words": sum(source_words(p.tgt) for p in pairs), **dropped(name)}
    return out


def bucket_label(bucket: tuple[int, int]) -> str:
    return f"{bucket[0]}-{bucket[1]}"


def length_bucket(n_words: int, buckets: Sequence[tuple[int, int]] = LENGTH_BUCKETS) -> str | None:
    """The label ("11-20") of the bucket that holds a source of ``n_words`` words; None if none does."""
    for bucket in buckets:
        if bucket[0] <= n_words <= bucket[1]:
            return bucket_label(bucket)
    return None


def bucket_sizes(name: str = "test", buckets: Sequence[tuple[int, int]] = LENGTH_BUCKETS) -> dict[str, int]:
    """{bucket label: number of pairs of split ``name`` whose source length falls in it}, in bucket order."""
    sizes = {bucket_label(b): 0 for b in buckets}
    for pair in split(name):
        label = length_bucket(pair.src_words, buckets)
        if label is not None:
            sizes[label] += 1
    return sizes


# ---------------------------------------------------------------------------------------- tokenizer

def _untrained_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    typography = [normalizers.Replace(old, new) for old, new in _TYPOGRAPHY]
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), *typography, normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()])
    # Spaces become "▁" (SentencePiece's mark of a word start), then the text is cut into letter runs,
    # digit runs and single punctuation marks, each with the "▁" before it: "▁¿", "Quién", "▁dijo", ":".
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(split=False),
        pre_tokenizers.Split(Regex(r"▁?\p{L}+|▁?\p{N}+|▁?[^▁\p{L}\p{N}]"), behavior="isolated")])
    tok.decoder = decoders.Metaspace()
    return tok


def training_texts() -> list[str]:
    """What the tokenizer learns from: the source and the target of every training pair, in order."""
    return [text for pair in split("train") for text in (pair.src, pair.tgt)]


def train_tokenizer(texts: Iterable[str] | None = None, vocab_size: int = VOCAB_SIZE):
    """A BPE tokenizer (``tokenizers.Tokenizer``) trained on ``texts`` (default ``training_texts()``),
    ``vocab_size`` tokens including the four special ones at ids 0-3. Deterministic."""
    from tokenizers import trainers

    tok = _untrained_tokenizer()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=ALPHABET, show_progress=False)
    tok.train_from_iterator(training_texts() if texts is None else list(texts), trainer)
    return tok


@lru_cache(maxsize=None)
def tokenizer():
    """The shipped tokenizer (``tokenizers.Tokenizer`` from ``TOKENIZER_FILE``), cached."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(TOKENIZER_FILE))


def pad(sequences: Sequence[Sequence[int]], bos: bool = False, eos: bool = True,
        max_len: int | None = None) -> torch.Tensor:
    """Token-id lists -> LongTensor (B, T), batch first, right-padded with ``PAD`` (0).

    Each row is ``[<bos>] ids [<eos>]``; with ``max_len``, the ids are cut so that a row, specials
    included, has at most ``max_len`` tokens (the <eos> is kept). T is the longest row.
    """
    extra = int(bos) + int(eos)
    if max_len is not None and max_len < extra:
        raise ValueError(f"max_len={max_len} leaves no room for the special tokens")
    rows = []
    for ids in sequences:
        ids = list(ids)
        if max_len is not None:
            ids = ids[:max_len - extra]
        rows.append(([BOS] if bos else []) + ids + ([EOS] if eos else []))
    out = torch.full((len(rows), max((len(r) for r in rows), default=0)), PAD, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, :len(row)] = torch.tensor(row, dtype=torch.long)
    return out


@lru_cache(maxsize=None)
def _tokenizer_without_normaliser():
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer().to_str())
    tok.normalizer = None
    return tok


def token_ids(texts: Sequence[str] | str) -> list[list[int]]:
    """The subword ids of each text (no special tokens), as lists of ints: the same ids as
    ``tokenizer().encode(text, add_special_tokens=False).ids``, a third faster (``normalise`` in Python
    does what the tokenizer's normaliser does, in a sixth of its time)."""
    if isinstance(texts, str):
        texts = [texts]
    encodings = _tokenizer_without_normaliser().encode_batch([normalise(t) for t in texts], add_special_tokens=False)
    return [e.ids for e in encodings]


def encode(texts: Sequence[str] | str, bos: bool = False, eos: bool = True,
           max_len: int | None = None) -> torch.Tensor:
    """Texts (a str is one text) -> LongTensor (B, T) of token ids, padded with ``PAD`` = 0.

    Sources are usually ``encode(srcs)`` (ids then <eos>); targets ``encode(tgts, bos=True)``
    (<bos> ids <eos>): the decoder reads ``tgt[:, :-1]`` and predicts ``tgt[:, 1:]``.
    ``lengths(ids)`` gives each row's length without padding.
    """
    return pad(token_ids(texts), bos=bos, eos=eos, max_len=max_len)


def lengths(ids: torch.Tensor) -> torch.Tensor:
    """LongTensor (B,): the number of non-pad tokens of each row of ``ids`` (B, T)."""
    return (ids != PAD).sum(dim=1)


def _cut(row: Sequence[int]) -> list[int]:
    """Ids up to the first <eos>, without <pad>, <bos> or <unk>."""
    out = []
    for i in row:
        i = int(i)
        if i == EOS:
            break
        if i > UNK:
            out.append(i)
    return out


def decode(ids) -> list[str] | str:
    """Token ids -> detokenized text: a LongTensor or nested lists (B, T) -> list of B str; one row
    (T,) -> one str. Each row stops at its first <eos>; <pad>, <bos> and <unk> are dropped (and
    the spaces an <unk> leaves behind collapse to one)."""
    if isinstance(ids, (torch.Tensor, np.ndarray)):
        ids = ids.tolist()
    ids = list(ids)
    if not ids or not isinstance(ids[0], (list, tuple)):
        return " ".join(tokenizer().decode(_cut(ids)).split())
    return [" ".join(text.split()) for text in tokenizer().decode_batch([_cut(row) for row in ids])]


@lru_cache(maxsize=None)
def encoded(name: str) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """(source ids, target ids) of every pair of split ``name``, without special tokens (cached)."""
    pairs = split(name)
    src = token_ids([p.src for p in pairs])
    tgt = token_ids([p.tgt for p in pairs])
    return tuple(map(tuple, src)), tuple(map(tuple, tgt))


def batches(name: str = "train", batch_size: int = 64, shuffle: bool = True, seed: int = 0,
            max_len: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches of split ``name``: ``(src, tgt)`` LongTensors (B, S) and (B, T), as ``encode``
    makes them (``src``: ids <eos>; ``tgt``: <bos> ids <eos>; padded with 0).

    Pairs of similar source length go together (less padding, faster on a CPU): the pairs are put in
    a random order (``numpy.random.default_rng(seed)``; the canonical order if ``shuffle`` is False),
    sorted by source length within pools of 50 batches, cut into batches, and the batches shuffled.
    Every pair appears exactly once per call.
    """
    src, tgt = encoded(name)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(src)) if shuffle else np.arange(len(src))
    pool = 50 * batch_size
    chunks = []
    for start in range(0, len(order), pool):
        part = sorted(order[start:start + pool].tolist(), key=lambda i: len(src[i]))
        chunks += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    if shuffle:
        chunks = [chunks[i] for i in rng.permutation(len(chunks))]
    for chunk in chunks:
        yield (pad([src[i] for i in chunk], eos=True, max_len=max_len),
               pad([tgt[i] for i in chunk], bos=True, eos=True, max_len=max_len))


# ------------------------------------------------------------------------------------------- scores

@dataclass(frozen=True)
class Score:
    """A corpus score (0-100) with its 95% bootstrap interval [``low``, ``high``], the number of
    sentences, and sacreBLEU's signature (which says how it was computed)."""
    name: str
    score: float
    low: float
    high: float
    n: int
    signature: str

    def __str__(self) -> str:
        return f"{self.name} {self.score:.1f} [{self.low:.1f}, {self.high:.1f}] (n={self.n})"


_NAMES = {"bleu": "BLEU", "chrf": "chrF2"}


def _metric(name: str):
    from sacrebleu.metrics import BLEU, CHRF

    if name == "bleu":
        return BLEU()
    if name == "chrf":
        return CHRF()
    raise ValueError(f"unknown metric {name!r}; choose 'bleu' or 'chrf'")


def _check(hyps: Sequence[str], refs: Sequence[str]) -> tuple[list[str], list[str]]:
    hyps, refs = list(hyps), list(refs)
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    if not hyps:
        raise ValueError("no sentences to score")
    return hyps, refs


def bleu(hyps: Sequence[str], refs: Sequence[str]):
    """sacreBLEU corpus BLEU (``sacrebleu.BLEUScore``; ``.score`` is 0-100) of detokenized hypotheses
    against one reference each, with sacreBLEU's defaults (13a, mixed case, exp smoothing)."""
    hyps, refs = _check(hyps, refs)
    return _metric("bleu").corpus_score(hyps, [refs])


def chrf(hyps: Sequence[str], refs: Sequence[str]):
    """sacreBLEU corpus chrF (``sacrebleu.CHRFScore``; character 6-grams, beta = 2)."""
    hyps, refs = _check(hyps, refs)
    return _metric("chrf").corpus_score(hyps, [refs])


def _resample_counts(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) int: how often each sentence is drawn in each resample. The draws are sacreBLEU's
    (``default_rng(seed).choice(n, (n_boot, n))``), so the resampled scores are the ones it computes."""
    idx = np.random.default_rng(seed).choice(n, size=(n_boot, n), replace=True)
    flat = (idx + n * np.arange(n_boot)[:, None]).ravel()
    return np.bincount(flat, minlength=n * n_boot).reshape(n_boot, n)


def _interval(samples: np.ndarray) -> tuple[float, float]:
    """sacreBLEU's 95% percentile interval: the (n//40)-th smallest and largest resampled scores."""
    s = np.sort(samples)
    k = len(s) // 40
    return float(s[k]), float(s[len(s) - k - 1])


def _stats(metric, hyps: list[str], refs: list[str]) -> np.ndarray:
    return np.asarray(metric._extract_corpus_statistics(hyps, [refs]), dtype=np.float64)


def _resampled_scores(metric, stats: np.ndarray, counts: np.ndarray) -> np.ndarray:
    sums = counts @ stats  # (n_boot, n_stats): each resample's summed sufficient statistics
    return np.array([metric._compute_score_from_stats(row).score for row in sums])


def _signature(metric, n_boot: int, seed: int) -> str:
    sig = metric.get_signature()
    sig.update("bs", n_boot)
    sig.update("seed", seed)
    return sig.format()


def bootstrap(hyps: Sequence[str], refs: Sequence[str], metric: str = "bleu",
              n_boot: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[Score, np.ndarray]:
    """The corpus score of ``metric`` ("bleu" or "chrf") with a 95% bootstrap interval, and the
    ``n_boot`` resampled scores (float array). Sentences are resampled with replacement, seeded."""
    hyps, refs = _check(hyps, refs)
    m = _metric(metric)
    stats = _stats(m, hyps, refs)
    point = m._compute_score_from_stats(stats.sum(axis=0)).score
    samples = _resampled_scores(m, stats, _resample_counts(len(hyps), n_boot, seed))
    low, high = _interval(samples)
    return Score(_NAMES[metric], float(point), low, high,
                 len(hyps), _signature(m, n_boot, seed)), samples


def evaluate(hyps: Sequence[str], refs: Sequence[str], n_boot: int = BOOTSTRAP_SAMPLES,
             seed: int = BOOTSTRAP_SEED) -> dict[str, Score]:
    """{"bleu": Score, "chrf": Score}: corpus BLEU and chrF of detokenized ``hyps`` against ``refs``,
    each with a seeded 95% bootstrap interval and its sacreBLEU signature."""
    return {name: bootstrap(hyps, refs, name, n_boot, seed)[0] for name in ("bleu", "chrf")}


def paired_bootstrap(hyps_a: Sequence[str], hyps_b: Sequence[str], refs: Sequence[str], metric: str = "bleu",
                     n_boot: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED) -> dict:
    """Two systems on the same sentences, resampled together (paired bootstrap, Koehn 2004).

    Returns {"a": Score, "b": Score, "delta": b - a, "delta_low", "delta_high": its 95% interval,
    "p_value": the fraction of resamples in which b does not beat a}.
    """
    hyps_a, refs_a = _check(hyps_a, refs)
    hyps_b, _ = _check(hyps_b, refs)
    m = _metric(metric)
    counts = _resample_counts(len(refs_a), n_boot, seed)
    scores, samples = {}, {}
    for key, hyps in (("a", hyps_a), ("b", hyps_b)):
        stats = _stats(m, hyps, refs_a)
        samples[key] = _resampled_scores(m, stats, counts)
        low, high = _interval(samples[key])
        scores[key] = Score(_NAMES[metric], float(m._compute_score_from_stats(stats.sum(axis=0)).score), low, high,
                            len(refs_a), _signature(m, n_boot, seed))
    diff = samples["b"] - samples["a"]
    low, high = _interval(diff)
    return {"a": scores["a"], "b": scores["b"], "delta": scores["b"].score - scores["a"].score,
            "delta_low": low, "delta_high": high, "p_value": float(np.mean(diff <= 0))}


def bleu_by_length(hyps: Sequence[str], refs: Sequence[str], sources: Sequence[str],
                   buckets: Sequence[tuple[int, int]] = LENGTH_BUCKETS, n_boot: int = BOOTSTRAP_SAMPLES,
                   seed: int = BOOTSTRAP_SEED) -> list[dict]:
    """Corpus BLEU and chrF per source-length bucket (source words, ``source_words``), each with its
    own seeded 95% bootstrap interval. One dict per non-empty bucket, in bucket order: {"bucket":
    "11-20", "n", "bleu", "bleu_low", "bleu_high", "chrf", "chrf_low", "chrf_high"}."""
    hyps, refs = _check(hyps, refs)
    if len(sources) != len(hyps):
        raise ValueError(f"{len(sources)} sources for {len(hyps)} hypotheses")
    labels = [length_bucket(source_words(s), buckets) for s in sources]
    rows = []
    for bucket in buckets:
        label = bucket_label(bucket)
        members = [i for i, lab in enumerate(labels) if lab == label]
        if not members:
            continue
        row = {"bucket": label, "n": len(members)}
        for name in ("bleu", "chrf"):
            score, _ = bootstrap([hyps[i] for i in members], [refs[i] for i in members], name, n_boot, seed)
            row.update({name: score.score, f"{name}_low": score.low, f"{name}_high": score.high})
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------- CLI

def report() -> str:
    """The numbers the module docstring quotes, measured now."""
    start = time.perf_counter()
    for cached in (verses, _splits, tokenizer, _tokenizer_without_normaliser, encoded):
        cached.cache_clear()
    summary = split_summary()
    tok = tokenizer()
    loaded = time.perf_counter() - start
    for name in SPLITS:
        encoded(name)
    encoding = time.perf_counter() - start - loaded
    lines = [f"{'split':6} {'pairs':>7} {'src words':>10} {'tgt words':>10}  dropped length/alignment/duplicate"]
    for name, s in summary.items():
        lines.append(f"{name:6} {s['pairs']:7,} {s['src_words']:10,} {s['tgt_words']:10,}  "
                     f"{s['length']} / {s['alignment']} / {s['duplicate']}")
    lines.append("test pairs per source-length bucket: " + ", ".join(
        f"{k}: {v:,}" for k, v in bucket_sizes("test").items()))
    lines.append(f"tokenizer: {tok.get_vocab_size():,} tokens; ids " + ", ".join(
        f"{t}={tok.token_to_id(t)}" for t in SPECIAL_TOKENS))
    for name in SPLITS:
        src, tgt = encoded(name)
        lines.append(f"{name}: tokens per verse, source {np.mean([len(s) for s in src]):.1f}, "
                     f"target {np.mean([len(t) for t in tgt]):.1f} (no specials)")
    lines.append(f"drop capitals recased: {sum(1 for a, b in zip(_raw_spanish(), verses()) if normalise(a) != b.src)}")
    lines.append(f"load (verses, splits, tokenizer): {loaded:.2f} s; encoding every split: {encoding:.2f} s")
    return "\n".join(lines)


def _raw_spanish() -> list[str]:
    with gzip.open(PAIRS_FILE, "rt", encoding="utf-8") as f:
        f.readline()
        return [line.rstrip("\n").split("\t")[4] for line in f]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", action="store_true",
                        help=f"train the tokenizer on the training split and write {TOKENIZER_FILE.name}")
    parser.add_argument("--report", action="store_true", help="print split sizes, buckets and token counts")
    parser.add_argument("--out", type=Path, default=TOKENIZER_FILE)
    args = parser.parse_args(argv)
    if not (args.tokenizer or args.report):
        parser.print_help()
        return
    if args.tokenizer:
        start = time.perf_counter()
        tok = train_tokenizer()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tok.save(str(args.out), pretty=True)
        tokenizer.cache_clear(), _tokenizer_without_normaliser.cache_clear()
        print(f"trained {tok.get_vocab_size():,} tokens on {len(split('train')):,} training pairs "
              f"in {time.perf_counter() - start:.1f} s -> {args.out}")
    if args.report:
        print(report())


if __name__ == "__main__":
    main()
