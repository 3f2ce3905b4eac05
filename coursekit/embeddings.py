"""Static word vectors for chapter 02: from counts and from prediction.

Everything chapter 02 needs that is not an exercise:

- the words of a corpus (``corpus_words``): words from ``coursekit.corpora.words``, punctuation
  dropped; its vocabulary is ``coursekit.vocab.Vocabulary.from_counts(words, min_count)``;
- count-based vectors: the co-occurrence matrix (``cooccurrence_counts``), positive pointwise
  mutual information and a truncated SVD (``ppmi_svd_vectors``);
- predictive vectors: skip-gram with negative sampling (``SkipGram``, ``train_skipgram``), seeded,
  on CUDA when present;
- queries: nearest neighbours and analogies (``nearest``, ``analogy``), and a 2-D projection
  (``pca_2d``, principal components through ``torch.linalg.svd``).

The chapter loads skip-gram vectors trained once on the Machado corpus (``TrainConfig``'s
defaults, seed 0), a checkpoint of under a megabyte (4,337 words x 100 float16 numbers) that this
command regenerates::

    python -m coursekit.embeddings --train

It takes about 10 s on an idle 2-core CPU, and several times longer on a busy one (which is why
the book does not retrain at every build). It writes ``coursekit/data/checkpoints/sgns_machado.pt``
with the vocabulary, the vectors, the training settings, the loss curve and the training time
(``load_checkpoint`` reads it back). On the CPU with the pinned PyTorch, retraining reproduces the
same vectors; tests/test_embeddings.py checks the words the chapter's prose quotes from them.
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from coursekit import corpora
from coursekit.device import get_device, seed_everything
from coursekit.vocab import Vocabulary

CHECKPOINTS = Path(__file__).resolve().parent / "data" / "checkpoints"
CHECKPOINT = CHECKPOINTS / "sgns_machado.pt"


# --------------------------------------------------------------------------- words


def is_word(token: str) -> bool:
    """True for word tokens ('casa', 'sentar-me', '1871'), False for punctuation ('.', '—')."""
    return token[:1].isalnum() or token[:1] == "_"


def corpus_words(name: str = "machado", part: str = "train") -> list[str]:
    """The word tokens of a corpus split, lower-cased, in order, punctuation dropped.

    Tokenisation is ``coursekit.corpora.words``; dropping punctuation lets a window of five
    words span five words, not three words and two commas.
    """
    return [t for t in corpora.words(corpora.split(name)[part]) if is_word(t)]


# --------------------------------------------------------------------------- counting


def cooccurrence_counts(ids: torch.Tensor, vocab_size: int, window: int) -> torch.Tensor:
    """(V, V) float32 matrix: entry (w, c) counts the times c occurs within ``window`` words of w.

    Symmetric: every pair at distance 1..window is counted in both directions. ``ids`` is the
    corpus as one long int64 sequence (N,).
    """
    counts = torch.zeros(vocab_size * vocab_size, dtype=torch.float32)
    for distance in range(1, window + 1):
        left, right = ids[:-distance], ids[distance:]
        ones = torch.ones(len(left))
        counts.index_add_(0, left * vocab_size + right, ones)   # right is a context of left
        counts.index_add_(0, right * vocab_size + left, ones)   # and left of right
    return counts.view(vocab_size, vocab_size)


def ppmi_matrix(counts: torch.Tensor, alpha: float = 0.75) -> torch.Tensor:
    """max(0, log P(w, c) / (P(w) P_alpha(c))), 0 where the count is 0; (V, C) like ``counts``.

    ``alpha`` < 1 smooths the context distribution (P_alpha(c) is proportional to count(c)^alpha),
    which keeps rare contexts from getting huge PMI values (Levy, Goldberg and Dagan, 2015).
    """
    total = counts.sum()
    p_wc = counts / total
    p_w = counts.sum(1, keepdim=True) / total                   # (V, 1)
    c_alpha = counts.sum(0, keepdim=True) ** alpha              # (1, C)
    p_c = c_alpha / c_alpha.sum()
    pmi = torch.log(p_wc / (p_w * p_c))
    return torch.where(counts > 0, pmi.clamp_min(0), torch.zeros_like(pmi))


def ppmi_svd_vectors(counts: torch.Tensor, dim: int = 100, alpha: float = 0.75, seed: int = 0) -> torch.Tensor:
    """Count-based word vectors: the rank-``dim`` truncated SVD of the PPMI matrix, U_d S_d^(1/2).

    The randomised ``torch.svd_lowrank`` (seeded) finds the top ``dim`` singular vectors of a
    V x V matrix in a fraction of the time a full SVD takes. Returns (V, dim).
    """
    M = ppmi_matrix(counts, alpha)
    torch.manual_seed(seed)
    U, S, _ = torch.svd_lowrank(M, q=dim + 20, niter=4)
    return U[:, :dim] * S[:dim].sqrt()


# --------------------------------------------------------------------------- skip-gram


def keep_probabilities(counts: Sequence[int], threshold: float = 1e-3) -> torch.Tensor:
    """word2vec's subsampling of frequent words: keep a token of frequency f with probability
    min(1, sqrt(t / f) + t / f). 'que' and 'de' lose most of their tokens, rare words none."""
    c = torch.tensor(counts, dtype=torch.float64)
    ratio = threshold / (c / c.sum())
    return (ratio.sqrt() + ratio).clamp(max=1.0).float()


def noise_distribution(counts: Sequence[int], power: float = 0.75) -> torch.Tensor:
    """The distribution negatives are drawn from: count^0.75, normalised (Mikolov et al., 2013)."""
    p = torch.tensor(counts, dtype=torch.float64) ** power
    return (p / p.sum()).float()


def skipgram_training_pairs(ids: torch.Tensor, window: int, generator: torch.Generator) -> torch.Tensor:
    """(P, 2) int64 (center, context) pairs of one epoch, over the whole corpus at once.

    As in word2vec, each center draws its own window size b uniformly from 1..window and takes
    the words at distance 1..b on both sides, so near words are seen more often than far ones.
    """
    b = torch.randint(1, window + 1, (len(ids),), generator=generator)  # (N,) one window per center
    pairs = []
    for distance in range(1, window + 1):
        centers = torch.arange(len(ids) - distance)        # center i, context i + distance
        keep = b[centers] >= distance
        pairs.append(torch.stack([ids[centers[keep]], ids[centers[keep] + distance]], 1))
        centers = torch.arange(distance, len(ids))          # center i, context i - distance
        keep = b[centers] >= distance
        pairs.append(torch.stack([ids[centers[keep]], ids[centers[keep] - distance]], 1))
    return torch.cat(pairs)


class SkipGram(nn.Module):
    """Two tables of vectors: ``center`` (v, the vectors we keep) and
    ``context`` (u). The score of a (center, context) pair is u·v; training
    pushes it up for pairs seen in the text, down for K random words."""

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.center = nn.Embedding(vocab_size, dim)
        self.context = nn.Embedding(vocab_size, dim)
        # word2vec's start: small random centers, zero contexts
        nn.init.uniform_(self.center.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.context.weight)

    def forward(self, center, context, negatives):
        """center, context: (B,) ids; negatives: (B, K) ids.
        Returns the mean loss over the batch, a 0-dim tensor."""
        v = self.center(center)                             # (B, d)
        u = self.context(context)                           # (B, d)
        u_neg = self.context(negatives)                     # (B, K, d)
        positive = F.logsigmoid((u * v).sum(-1))            # (B,)
        scores = (u_neg @ v[:, :, None]).squeeze(-1)        # (B, K)
        negative = F.logsigmoid(-scores).sum(-1)            # (B,)
        return -(positive + negative).mean()


@dataclass
class TrainConfig:
    dim: int = 100            # size of a word vector
    window: int = 2           # largest distance between center and context
    negatives: int = 5        # K: negative context words per positive pair
    epochs: int = 5           # passes over the corpus
    batch_size: int = 1024    # pairs per step
    lr: float = 0.01          # Adam's learning rate, decayed linearly to 0
    subsample: float = 1e-3   # word2vec's threshold t for frequent words
    min_count: int = 4        # rarer words are left out of the vocabulary
    seed: int = 0


def train_skipgram(ids: torch.Tensor, vocab: Vocabulary,
                   config: TrainConfig = TrainConfig(),
                   device: torch.device | None = None,
                   max_steps: int | None = None,
                   log_every: int = 50) -> tuple[SkipGram, dict]:
    """Skip-gram with negative sampling on ``ids`` (the corpus, int64 (N,)).

    Each epoch subsamples frequent words, draws a window per center,
    shuffles the pairs and draws K negatives per pair from the count^0.75
    distribution; all randomness comes from one generator seeded with
    ``config.seed``. ``max_steps`` stops early without changing the
    learning-rate schedule, so a short run retraces the start of the full
    one. Returns the model and a history: {"step", "loss" (mean of the
    last ``log_every`` steps), "pairs_per_epoch", "seconds", "steps"}.
    """
    device = device or get_device()
    g = seed_everything(config.seed)
    model = SkipGram(len(vocab), config.dim).to(device)
    # fused: one kernel for the whole update, much faster on a CPU
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 fused=True)
    keep = keep_probabilities(vocab.counts, config.subsample)   # (V,)
    noise = noise_distribution(vocab.counts)                    # (V,)

    # Pairs per epoch: 2 sides x mean window (w + 1) / 2, for the schedule
    expected_pairs = float(keep[ids].sum()) * (config.window + 1)
    total_steps = max(1, math.ceil(expected_pairs / config.batch_size)
                      * config.epochs)
    stop = total_steps if max_steps is None else min(total_steps, max_steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: max(0.0, 1 - s / total_steps))

    history = {"step": [], "loss": [], "pairs_per_epoch": []}
    step, running = 0, []
    start = time.perf_counter()
    for _ in range(config.epochs):
        kept = ids[torch.rand(len(ids), generator=g) < keep[ids]]
        pairs = skipgram_training_pairs(kept, config.window, g)  # (P, 2)
        pairs = pairs[torch.randperm(len(pairs), generator=g)]
        history["pairs_per_epoch"].append(len(pairs))
        for batch in pairs.split(config.batch_size):             # (B, 2)
            negatives = torch.multinomial(
                noise, len(batch) * config.negatives, replacement=True,
                generator=g).view(len(batch), config.negatives)  # (B, K)
            batch, negatives = batch.to(device), negatives.to(device)
            loss = model(batch[:, 0], batch[:, 1], negatives)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            running.append(loss.item())
            if step % log_every == 0:
                history["step"].append(step)
                history["loss"].append(sum(running) / len(running))
                running = []
            if step >= stop:
                break
        if step >= stop:
            break
    history["seconds"] = time.perf_counter() - start
    history["steps"] = step
    return model, history


# --------------------------------------------------------------------------- queries


def unit_rows(vectors: torch.Tensor) -> torch.Tensor:
    """Each row divided by its length (zero rows stay zero): cosines become dot products."""
    return vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-8)


def nearest(vectors: torch.Tensor, words: Sequence[str], query, k: int = 8,
            exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
    """The ``k`` words whose vectors have the largest cosine with ``query``, best first.

    ``query`` is a word (left out of the answer) or a vector (d,). Words in ``exclude`` are left
    out too. Returns [(word, cosine), ...].
    """
    index = {w: i for i, w in enumerate(words)}
    unit = unit_rows(vectors.float())
    banned = set(exclude)
    if isinstance(query, str):
        banned.add(query)
        query = unit[index[query]]
    sims = unit @ unit_rows(query.float().to(unit.device))       # (V,)
    for w in banned:
        if w in index:
            sims[index[w]] = -float("inf")
    top = sims.topk(min(k, len(words) - len(banned)))
    return [(words[i], float(s)) for s, i in zip(top.values.tolist(), top.indices.tolist())]


def analogy(vectors: torch.Tensor, words: Sequence[str], a: str, b: str, c: str,
            k: int = 5) -> list[tuple[str, float]]:
    """'a is to b as c is to ?': the words nearest to b - a + c (unit vectors), a, b, c excluded
    (3CosAdd, Mikolov et al., 2013)."""
    index = {w: i for i, w in enumerate(words)}
    unit = unit_rows(vectors.float())
    target = unit[index[b]] - unit[index[a]] + unit[index[c]]
    return nearest(vectors, words, target, k, exclude=(a, b, c))


def pca_2d(vectors: torch.Tensor) -> torch.Tensor:
    """(N, 2): the coordinates of the rows along their first two principal components.

    Centre the rows and take the top right-singular vectors of the centred matrix
    (``torch.linalg.svd``). The sign of each axis is fixed so that its largest coordinate is
    positive, which makes the picture reproducible.
    """
    X = vectors.double() - vectors.double().mean(0)
    _, _, Vh = torch.linalg.svd(X, full_matrices=False)
    coords = X @ Vh[:2].T                                       # (N, 2)
    signs = torch.sign(coords.gather(0, coords.abs().argmax(0, keepdim=True)))
    return (coords * signs).float()


# --------------------------------------------------------------------------- checkpoint


def save_checkpoint(path: Path, vocab: Vocabulary, vectors: torch.Tensor, config: TrainConfig, history: dict,
                    device: torch.device) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"words": vocab.tokens, "counts": vocab.counts,
                "vectors": vectors.detach().cpu().to(torch.float16),
                "config": asdict(config), "history": history,
                "trained_on": str(device), "threads": torch.get_num_threads(), "torch": str(torch.__version__)}, path)


def load_checkpoint(path: Path = CHECKPOINT) -> dict:
    """The trained vectors: ``{"vocab": Vocabulary (words and counts, in the ids they were trained
    with), "vectors": (V, d) float32, "config": TrainConfig, "history": dict (see ``train_skipgram``),
    "trained_on": "cpu" or "cuda", "threads": int, "torch": str}``."""
    ckpt = torch.load(path, weights_only=True)
    return {"vocab": Vocabulary(ckpt["words"], counts=ckpt["counts"]), "vectors": ckpt["vectors"].float(),
            "config": TrainConfig(**ckpt["config"]), "history": ckpt["history"],
            "trained_on": ckpt["trained_on"], "threads": ckpt["threads"], "torch": ckpt["torch"]}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", action="store_true", help="train skip-gram on the Machado corpus")
    parser.add_argument("--out", type=Path, default=CHECKPOINT)
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    args = parser.parse_args(argv)
    if not args.train:
        parser.print_help()
        return
    config = TrainConfig(epochs=args.epochs)
    tokens = corpus_words("machado", "train")
    vocab = Vocabulary.from_counts(tokens, config.min_count)  # id 0: the most frequent word
    ids = torch.tensor(vocab.encode(tokens, unknown="drop"), dtype=torch.long)  # rarer words dropped
    device = get_device()
    print(f"{len(tokens):,} words, vocabulary {len(vocab):,}, training on {device}")
    model, history = train_skipgram(ids, vocab, config, device)
    print(f"{history['steps']:,} steps in {history['seconds']:.1f} s, final loss {history['loss'][-1]:.3f}")
    save_checkpoint(args.out, vocab, model.center.weight, config, history, device)
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.2f} MiB)")


if __name__ == "__main__":
    main()
