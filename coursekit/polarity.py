"""Chapter 09's classification task: Pang & Lee's sentence polarity data (movie-review snippets, positive or
negative), with one fixed, stratified split that every model of the chapter is trained and scored on.

The data (``data/sentiment/``, CC BY 4.0, see its README.txt) is 5,331 positive and 5,331 negative snippets,
lower-cased and tokenised (``it's a charming and often affecting journey .``). The split draws, per class, a random
order with ``numpy.random.default_rng(SPLIT_SEED)`` and cuts it 80 / 10 / 10 into train, validation and test, so
each split holds as many positive as negative sentences. The published results on this data are 10-fold
cross-validation accuracies; ours come from one split, with a 95% interval from the test set's size.
"""
from __future__ import annotations

import math
import time
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from coursekit.schedules import warmup_cosine

DATA = Path(__file__).resolve().parent / "data" / "sentiment"
LABELS = ("negative", "positive")  # label 0, label 1
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
SPLIT_SEED = 0


@lru_cache(maxsize=None)
def sentences() -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Every snippet, negative ones first, in file order, and its label (0 negative, 1 positive)."""
    texts, labels = [], []
    for label, name in enumerate(LABELS):
        with open(DATA / f"rt-polarity.{name[:3]}", encoding="utf-8") as f:
            lines = [" ".join(line.split()) for line in f]
        texts += lines
        labels += [label] * len(lines)
    return tuple(texts), tuple(labels)


@lru_cache(maxsize=None)
def _indices() -> dict[str, tuple[int, ...]]:
    _, labels = sentences()
    labels = np.array(labels)
    rng = np.random.default_rng(SPLIT_SEED)
    parts: dict[str, list[int]] = {name: [] for name in SPLITS}
    for label in range(len(LABELS)):
        members = rng.permutation(np.flatnonzero(labels == label))
        cuts = np.cumsum([round(f * len(members)) for f in SPLIT_FRACTIONS[:-1]])
        for name, part in zip(SPLITS, np.split(members, cuts)):
            parts[name] += part.tolist()
    return {name: tuple(sorted(part)) for name, part in parts.items()}


def split(name: str) -> tuple[list[str], list[int]]:
    """(texts, labels) of split ``name`` ("train", "val" or "test"), in the data's order."""
    if name not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {name!r}")
    texts, labels = sentences()
    picked = _indices()[name]
    return [texts[i] for i in picked], [labels[i] for i in picked]


def accuracy_interval(predictions: Sequence[int], labels: Sequence[int], z: float = 1.96) -> tuple[float, float, float]:
    """Accuracy (%) and its 95% Wilson score interval (%): how far the test set's size lets us trust it."""
    n = len(labels)
    if n == 0 or len(predictions) != n:
        raise ValueError(f"{len(predictions)} predictions for {n} labels")
    p = sum(int(a) == int(b) for a, b in zip(predictions, labels)) / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100 * p, 100 * (centre - half), 100 * (centre + half)


# ------------------------------------------------------------------------- the bag-of-words baseline

def ngrams(text: str, n: int = 2) -> set[str]:
    """The distinct words and word n-grams (up to ``n`` words) of a tokenised sentence."""
    words = text.split()
    return {" ".join(words[i:i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1)}


def bag_of_ngrams(texts: Sequence[str], vocabulary: dict[str, int], n: int = 2):
    """(N, len(vocabulary)) float32 torch tensor: 1 where a sentence contains the word or word n-gram (up to
    ``n`` words), else 0; n-grams outside the vocabulary are dropped."""
    import torch

    out = torch.zeros(len(texts), len(vocabulary))
    for row, text in enumerate(texts):
        out[row, [vocabulary[g] for g in ngrams(text, n) if g in vocabulary]] = 1.0
    return out


def ngram_vocabulary(texts: Sequence[str], n: int = 2, min_count: int = 2) -> dict[str, int]:
    """Every word and word n-gram (up to ``n``) seen in at least ``min_count`` of ``texts``, in first-seen order."""
    from collections import Counter

    counts = Counter()
    for text in texts:
        counts.update(ngrams(text, n))
    return {g: i for i, g in enumerate(g for g, c in counts.items() if c >= min_count)}


def logistic_regression(X, y, l2: float, steps: int = 200):
    """Weights (D,) and bias of an L2-regularised logistic regression (mean log-loss + l2/2 |w|²), fitted by
    L-BFGS to convergence: a convex problem, so the answer does not depend on a seed."""
    import torch

    y = torch.as_tensor(y, dtype=X.dtype)
    w = torch.zeros(X.size(1), dtype=X.dtype, requires_grad=True)
    b = torch.zeros((), dtype=X.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, tolerance_grad=1e-7, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(X @ w + b, y) + 0.5 * l2 * (w @ w)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


# ------------------------------------------------------------------------------------- the results

RESULTS = Path(__file__).resolve().parent / "data" / "bert"
TEST_SIZE = 1066


def fine_tune_by_epochs(model: torch.nn.Module, opt: torch.optim.Optimizer, logits_of: Callable[[list[int]], torch.Tensor],
                        epochs: int, batch_size: int, warmup_fraction: float, val_accuracy: Callable[[], float],
                        g: torch.Generator, log=print) -> dict:
    """The training loop both of chapter 09's fine-tuned classifiers share: ``epochs`` passes over the training
    split in a random order drawn from ``g``, ``batch_size`` sentences a step (the last partial batch dropped), each
    parameter group's learning rate warmed up over ``warmup_fraction`` of the steps from the rate it was given,
    then decayed along a cosine to a tenth of it. ``logits_of(indices)`` -> (B, 2) logits of those training
    sentences; ``val_accuracy()`` -> the validation accuracy in %, checked after every epoch. The weights of the
    best epoch are loaded back into ``model``. Returns the history: ``epoch``, ``seconds`` (since the loop began),
    ``train`` (mean loss of the epoch) and ``val_accuracy``."""
    labels = torch.tensor(split("train")[1])
    steps_per_epoch = len(labels) // batch_size
    total = epochs * steps_per_epoch
    peaks = [group["lr"] for group in opt.param_groups]
    history = {k: [] for k in ("epoch", "seconds", "train", "val_accuracy")}
    best, best_state, start, step = -1.0, None, time.perf_counter(), 0
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(labels), generator=g).tolist()
        running = 0.0
        for i in range(steps_per_epoch):
            picked = order[i * batch_size:(i + 1) * batch_size]
            for group, peak in zip(opt.param_groups, peaks):
                group["lr"] = warmup_cosine(step, peak, int(warmup_fraction * total), total, final=0.1 * peak)
            logits = logits_of(picked)
            loss = F.cross_entropy(logits, labels[picked].to(logits.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += loss.item()
            step += 1
        accuracy = val_accuracy()
        for key, value in zip(history, (epoch, time.perf_counter() - start, running / steps_per_epoch, accuracy)):
            history[key].append(value)
        log(f"epoch {epoch}  {history['seconds'][-1]:5.0f} s  train {running / steps_per_epoch:.3f}  val {accuracy:.1f}%")
        if accuracy > best:
            best, best_state = accuracy, {k: t.detach().clone() for k, t in model.state_dict().items()}
    model.load_state_dict(best_state)
    return history


def write_result(model: str, description: str, val_predictions: Sequence[int], test_predictions: Sequence[int],
                 train_seconds: float, trained_parameters: int, command: str) -> Path:
    """One model's row, ``data/bert/polarity_<model>.csv``: its validation and test accuracy, the test interval,
    what training cost, and every test prediction (a string of 0s and 1s, for paired comparisons)."""
    from coursekit.tables import write_table

    test_labels = split("test")[1]
    accuracy, low, high = accuracy_interval(test_predictions, test_labels)
    row = dict(model=model, description=description,
               val_accuracy=accuracy_interval(val_predictions, split("val")[1])[0],
               test_accuracy=accuracy, test_low=low, test_high=high, train_seconds=float(train_seconds),
               trained_parameters=int(trained_parameters),
               test_predictions="".join(str(int(p)) for p in test_predictions))
    path = RESULTS / f"polarity_{model}.csv"
    write_table(path, [row], command)
    return path


def read_results() -> dict[str, dict]:
    """Every shipped model's row, by model name, the test predictions as a list of ints."""
    from coursekit.tables import read_table

    rows = {}
    for path in sorted(RESULTS.glob("polarity_*.csv")):
        (row,) = read_table(path, text_columns=("test_predictions", "description"))
        row["test_predictions"] = [int(c) for c in row["test_predictions"]]
        rows[row["model"]] = row
    return rows


def paired_difference(a: Sequence[int], b: Sequence[int], labels: Sequence[int], resamples: int = 2000,
                      seed: int = 0) -> tuple[float, float, float]:
    """Accuracy of ``a`` minus that of ``b`` (percentage points) on the same sentences, with a 95% paired
    bootstrap interval: resampling sentences keeps each one's pair of answers together."""
    right_a = np.array([int(p) == int(y) for p, y in zip(a, labels)], dtype=float)
    right_b = np.array([int(p) == int(y) for p, y in zip(b, labels)], dtype=float)
    diff = right_a - right_b
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (resamples, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return 100 * diff.mean(), 100 * low, 100 * high


def bag_of_words(l2_grid: Sequence[float] = (1e-3, 3e-4, 1e-4, 3e-5, 1e-5), n: int = 2):
    """The classic baseline: logistic regression on which words and word pairs a sentence holds, its L2 weight
    picked on the validation split. Returns (l2, weights, bias, vocabulary, val predictions, test predictions)."""
    texts, labels = split("train")
    vocabulary = ngram_vocabulary(texts, n)
    X = bag_of_ngrams(texts, vocabulary, n)
    X_val, X_test = (bag_of_ngrams(split(name)[0], vocabulary, n) for name in ("val", "test"))
    best = None
    for l2 in l2_grid:
        w, b = logistic_regression(X, labels, l2)
        val = ((X_val @ w + b) > 0).long().tolist()
        accuracy = accuracy_interval(val, split("val")[1])[0]
        if best is None or accuracy > best[0]:
            best = (accuracy, l2, w, b, val)
    _, l2, w, b, val = best
    return l2, w, b, vocabulary, val, ((X_test @ w + b) > 0).long().tolist()


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import shlex
    import sys
    import time

    import torch

    parser = argparse.ArgumentParser(prog="python -m coursekit.polarity",
                                     description="Fit the bag-of-words baseline; write data/bert/polarity_bow.csv.")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    l2, w, _, vocabulary, val, test = bag_of_words()
    write_result("bow", f"logistic regression on words and word pairs ({len(vocabulary):,} features, L2 {l2:g})",
                 val, test, time.perf_counter() - start, w.numel() + 1,
                 "python -m coursekit.polarity " + shlex.join(sys.argv[1:] if argv is None else argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
