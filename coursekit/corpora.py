"""The course's two text corpora, loaded, normalised, tokenised and split the same way everywhere.

Every language model in the course (n-grams in chapter 01, the RNN in 03, the GPT in 10) trains on
``split(name)["train"]`` and reports on ``split(name)["val"]``/``["test"]``, in the same unit:
nats per character of the split's text (and its exponential, the per-character perplexity).
A word model's total negative log-likelihood is divided by the number of *characters* it covers,
so word and character models compare on one scale.

Corpora (provenance and licenses in ``coursekit/data/SOURCES.md``):

- ``"shakespeare"``: tiny Shakespeare (English, 1.1 M characters);
- ``"machado"``: three novels by Machado de Assis (Brazilian Portuguese, 1.2 M characters).
"""
from __future__ import annotations

import math
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from coursekit.vocab import Vocabulary

DATA = Path(__file__).resolve().parent / "data"
CORPORA = ("shakespeare", "machado")
MACHADO_NOVELS = ("dom_casmurro", "memorias_postumas_de_bras_cubas", "quincas_borba")
SPLIT_FRACTIONS = {"train": 0.90, "val": 0.05, "test": 0.05}

# Typographic characters the transcriptions use inconsistently, mapped to one spelling each.
_TYPOGRAPHY = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "–": "—", "\u00a0": " "})

# A word is a run of letters/digits, possibly joined by hyphens or apostrophes ("chamam-me",
# "know't"); every other non-space character (punctuation, dashes) is a token of its own.
_WORD = re.compile(r"\w+(?:[-']\w+)*|[^\w\s]")


def normalise(text: str) -> str:
    """Unicode NFC, one spelling for quotes and dashes, Unix newlines. Nothing else changes, so
    tiny Shakespeare stays byte for byte the file other courses report on."""
    text = unicodedata.normalize("NFC", text).translate(_TYPOGRAPHY)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _read(path: Path) -> str:
    return normalise(path.read_text(encoding="utf-8")).strip("\n") + "\n"


def _cut(text: str, fraction: float) -> int:
    """The index of the first line break at or after ``fraction`` of ``text``: splits end on lines."""
    index = text.find("\n", int(len(text) * fraction))
    return len(text) if index < 0 else index + 1


def _split_contiguous(text: str) -> dict[str, str]:
    """First 90% train, next 5% validation, last 5% test: contiguous, so no line leaks across."""
    a = _cut(text, SPLIT_FRACTIONS["train"])
    b = _cut(text, SPLIT_FRACTIONS["train"] + SPLIT_FRACTIONS["val"])
    return {"train": text[:a], "val": text[a:b], "test": text[b:]}


@lru_cache(maxsize=None)
def split(name: str) -> dict[str, str]:
    """``{"train": str, "val": str, "test": str}`` for a corpus.

    Shakespeare is split as one text. Each Machado novel is split on its own and the parts are
    joined, so all three novels appear in every split.
    """
    if name == "shakespeare":
        return _split_contiguous(_read(DATA / "shakespeare.txt"))
    if name == "machado":
        parts = [_split_contiguous(_read(DATA / "machado" / f"{novel}.txt")) for novel in MACHADO_NOVELS]
        return {key: "".join(p[key] for p in parts) for key in SPLIT_FRACTIONS}
    raise ValueError(f"unknown corpus {name!r}; choose from {CORPORA}")


def text(name: str) -> str:
    """The whole normalised corpus (train + val + test)."""
    return "".join(split(name).values())


def words(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens: 'O gato, feliz.' -> ['o', 'gato', ',', 'feliz', '.']."""
    return _WORD.findall(text.lower())


@lru_cache(maxsize=None)
def char_vocab(name: str) -> Vocabulary:
    """The characters of the whole corpus (train + val + test, as nanoGPT does), so every split encodes."""
    return Vocabulary.of_characters(text(name))


def nats_per_char(total_nll_nats: float, text: str) -> float:
    """A model's total negative log-likelihood of ``text`` (in nats), per character of ``text``."""
    return total_nll_nats / len(text)


def perplexity_per_char(total_nll_nats: float, text: str) -> float:
    """exp(nats per character): the per-character perplexity, comparable across tokenisations."""
    return math.exp(nats_per_char(total_nll_nats, text))
