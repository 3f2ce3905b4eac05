"""The encoder-decoder RNN of chapter 04, its training, its scores, and a synthetic task beside it.

``Seq2Seq`` (Cho et al. 2014; Sutskever et al. 2014): a GRU encoder reads the source; its last state
``c`` is all the decoder gets. The decoder is a conditional language model: a GRU that starts from
``c``, reads the previous target token with ``c`` beside it at every step, and predicts the next token
through a projection tied to the (joint) embedding::

    h_s = GRU_enc(E x_s, h_{s-1})                         c = h_S            (the fixed vector)
    s_0 = c,   s_t = GRU_dec([E y_{t-1}; c], s_{t-1})
    P(y_t | y_<t, x) = softmax(Eᵀ W_o [s_t; c])

The interface every translation model of the course shares (chapter 05's attention decoder and
chapter 06's beam search use the same three calls)::

    memory, state = model.encode(src)                        # (B, S, H), (B, H)
    logits, state = model.decode_step(prev, state, memory, src_mask)   # prev (B,) -> (B, V)
    logits = model(src, tgt_in)                              # teacher forcing, (B, T, V)

``memory`` (every encoder state) is unused by this decoder: it is there so that chapter 05's decoder,
which attends over it, fits the same loop.

The Bible model is trained once, on the CPU, with one thread, by::

    python -m coursekit.seq2seq train --task bible --threads 1
    python -m coursekit.seq2seq evaluate --task bible --threads 1

The first writes ``coursekit/data/checkpoints/seq2seq_bible.pt`` (float16 weights, settings, the
training curve with tokens and seconds, the command); the second decodes the test split greedily and
writes ``coursekit/data/seq2seq/bible_test_outputs.tsv`` (source, reference, hypothesis) and
``bible_bleu_by_length.csv`` (BLEU and chrF per source-length bucket, 95% bootstrap intervals), the
numbers chapter 05 draws its attention model against. ``--task copy`` does the same for the
synthetic task (``SyntheticTask``): a controlled test of the bottleneck in which only the length
changes.
"""
from __future__ import annotations

import argparse
import csv
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from coursekit import translation as tr
from coursekit.device import seed_everything
from coursekit.schedules import warmup_cosine

DATA = Path(__file__).resolve().parent / "data"
CHECKPOINTS = DATA / "checkpoints"
RESULTS = DATA / "seq2seq"
TASKS = ("bible", "copy")


# ---------------------------------------------------------------------------------------------- model

class Translator(nn.Module):
    """What every translation model of the course shares: batched greedy decoding over ``encode`` and
    ``decode_step`` (and ``pad_id``), which each model defines."""

    @torch.no_grad()
    def greedy(self, src: torch.Tensor, max_len: int = 120, bos: int = tr.BOS, eos: int = tr.EOS) -> torch.Tensor:
        """Batched greedy decoding: (B, S) -> (B, <= max_len) long, each row cut after its <eos> and
        padded with ``pad_id``. The loop stops early once every row has produced <eos>."""
        memory, state = self.encode(src)
        mask = src != self.pad_id
        prev = torch.full((src.size(0),), bos, dtype=torch.long, device=src.device)
        done = torch.zeros_like(prev, dtype=torch.bool)
        out = []
        for _ in range(max_len):
            logits, state = self.decode_step(prev, state, memory, mask)
            prev = logits.argmax(dim=-1).masked_fill(done, self.pad_id)
            out.append(prev)
            done |= prev == eos
            if done.all():
                break
        return torch.stack(out, dim=1)


class Seq2Seq(Translator):
    """GRU encoder-decoder with one fixed vector between them. Batch first; ``pad_id`` rows are ignored.

    vocab_size: V (source and target share one vocabulary and one embedding, E of them tied to the
    output); embed: E; hidden: H; dropout on the embeddings and before the output projection.
    """

    def __init__(self, vocab_size: int, embed: int = 256, hidden: int = 256, dropout: float = 0.1,
                 pad_id: int = tr.PAD):
        super().__init__()
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=pad_id)
        self.encoder = nn.GRU(embed, hidden, batch_first=True)
        self.decoder = nn.GRU(embed + hidden, hidden, batch_first=True)
        self.to_embedding = nn.Linear(2 * hidden, embed)  # [s_t; c] -> E, then the tied embedding
        self.dropout = nn.Dropout(dropout)

    @property
    def vocab_size(self) -> int:
        return self.embedding.num_embeddings

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """src: (B, S) long, right-padded -> memory (B, S, H) (zeros at padding), c (B, H): the state
        after each row's last real token (packing skips the padding, so it does not dilute c)."""
        lengths = (src != self.pad_id).sum(dim=1).clamp(min=1).cpu()
        x = self.dropout(self.embedding(src))  # (B, S, E)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, h = self.encoder(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        return memory, h[0]  # (B, S, H), (B, H)

    def _logits(self, s: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        z = self.to_embedding(self.dropout(torch.cat([s, c], dim=-1)))  # (..., E)
        return z @ self.embedding.weight.T  # (..., V)

    def decode_step(self, prev: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | torch.Tensor,
                    memory: torch.Tensor | None = None, src_mask: torch.Tensor | None = None):
        """One decoder step. prev: (B,) long, the previous target token; state: c (B, H) at the first
        step, afterwards the (s, c) pair this method returned. -> logits (B, V), the new state."""
        s, c = (state, state) if isinstance(state, torch.Tensor) else state
        x = torch.cat([self.dropout(self.embedding(prev)), c], dim=-1).unsqueeze(1)  # (B, 1, E+H)
        out, h = self.decoder(x, s.unsqueeze(0).contiguous())
        return self._logits(out[:, 0], c), (h[0], c)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: src (B, S), tgt_in (B, T) = <bos> y_1 ... y_{T-1} -> logits (B, T, V) for
        y_1 ... y_T. The whole target runs through the decoder GRU in one call (cuDNN/MKL-friendly)."""
        _, c = self.encode(src)
        y = self.dropout(self.embedding(tgt_in))  # (B, T, E)
        x = torch.cat([y, c.unsqueeze(1).expand(-1, y.size(1), -1)], dim=-1)  # (B, T, E+H)
        out, _ = self.decoder(x, c.unsqueeze(0).contiguous())  # (B, T, H)
        return self._logits(out, c.unsqueeze(1).expand_as(out))


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def loss_per_token(model: nn.Module, src: torch.Tensor, tgt: torch.Tensor, label_smoothing: float = 0.0):
    """Mean cross-entropy over the non-pad target tokens: tgt (B, T) = <bos> y <eos> <pad>...;
    the model reads tgt[:, :-1] and is scored on tgt[:, 1:]."""
    logits = model(src, tgt[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt[:, 1:].reshape(-1),
                           ignore_index=model.pad_id, label_smoothing=label_smoothing)


# ------------------------------------------------------------------------------ the synthetic task

class SyntheticTask:
    """Translation without linguistics: the source is a random sentence of ``length`` words from a
    vocabulary of ``words`` pseudo-words, the target is each word looked up in a fixed one-to-one bilingual
    lexicon, in the same order. Nothing but the number of words changes from short sentences to long
    ones, and every word must reach the output, so BLEU by length measures how much a fixed vector can
    hold and nothing else. (A first version also swapped adjacent words, as an adjective and its noun
    swap between Spanish and English; within the training budget the fixed-vector model did not learn
    the swap even for three-word sentences, which hid the effect of length.)

    The words are strings ("ba", "ko", ... -> "BA", "KO"), so the same tokenizer-free scoring
    (sacreBLEU on whitespace-joined words) and the same model code apply; ids are 4 + word index, after
    the four special tokens of ``coursekit.translation``. Short test sentences may also occur in training
    (there are only 40³ three-word sentences); long ones practically never do.
    """

    def __init__(self, words: int = 40, min_len: int = 3, max_len: int = 40, seed: int = 0):
        rng = np.random.default_rng(seed)
        syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
        picked = rng.choice(len(syllables), size=words, replace=False)
        self.source_words = [syllables[i] for i in picked]
        self.target_words = [w.upper() for w in self.source_words]
        self.lexicon = rng.permutation(words)  # source word i -> target word lexicon[i]
        self.min_len, self.max_len = min_len, max_len

    @property
    def vocab_size(self) -> int:
        return 4 + 2 * len(self.source_words)

    def sample(self, n: int, seed: int, lengths: Sequence[int] | None = None) -> tuple[list[list[int]], list[list[int]]]:
        """n (source ids, target ids) pairs, uniform lengths in [min_len, max_len] unless given."""
        rng = np.random.default_rng(seed)
        if lengths is None:
            lengths = rng.integers(self.min_len, self.max_len + 1, size=n)
        srcs, tgts = [], []
        w = len(self.source_words)
        for length in lengths:
            words = rng.integers(0, w, size=int(length))
            out = self.lexicon[words]
            srcs.append([4 + int(i) for i in words])
            tgts.append([4 + w + int(i) for i in out])
        return srcs, tgts

    def text(self, ids: Sequence[int]) -> str:
        names = self.source_words + self.target_words
        return " ".join(names[i - 4] for i in ids if i >= 4)

    def decode(self, ids: torch.Tensor) -> list[str]:
        return [self.text(tr._cut(row)) for row in ids.tolist()]


COPY_TASK = SyntheticTask()
COPY_TEST_SEED = 99
COPY_BUCKETS = ((3, 10), (11, 20), (21, 30), (31, 40))


def copy_batches(batch_size: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """An endless stream of fresh synthetic batches (each step sees new sentences)."""
    step = 0
    while True:
        src, tgt = COPY_TASK.sample(batch_size, seed=seed * 1_000_003 + step)
        yield tr.pad(src), tr.pad(tgt, bos=True)
        step += 1


def copy_test_set(per_length: int = 20) -> tuple[list[list[int]], list[list[int]]]:
    """``per_length`` pairs of every length from min_len to max_len, never seen in training."""
    lengths = [n for n in range(COPY_TASK.min_len, COPY_TASK.max_len + 1) for _ in range(per_length)]
    return COPY_TASK.sample(len(lengths), seed=COPY_TEST_SEED, lengths=lengths)


# ---------------------------------------------------------------------------------------- training

@dataclass
class TrainConfig:
    task: str = "bible"
    embed: int = 256
    hidden: int = 256
    dropout: float = 0.1
    batch_size: int = 64
    lr: float = 2e-3
    warmup: int = 100
    max_steps: int = 2400
    clip: float = 1.0
    label_smoothing: float = 0.0
    max_len: int = 96  # tokens per side, specials included (a few long verses are cut in training only)
    eval_every: int = 200
    seed: int = 0
    score: str = ""  # an attention score of coursekit.attention.SCORES; "" for the fixed-vector Seq2Seq
    layers: int = 0  # Transformer blocks per side (chapter 08; embed is its d_model); 0 for the RNNs
    heads: int = 4
    d_ff: int = 1024
    norm_first: bool = True
    command: str = ""

    @property
    def name(self) -> str:
        """"seq2seq", "attention-additive" etc., "transformer": the stem of the checkpoint's and results files'
        names."""
        if self.layers:
            return "transformer" if self.norm_first else "transformer-postnorm"
        return f"attention-{self.score}" if self.score else "seq2seq"

    def model(self, vocab_size: int) -> Translator:
        if self.layers:
            from coursekit.transformer import Transformer

            return Transformer(vocab_size, self.embed, self.heads, self.layers, self.d_ff, self.dropout,
                               self.norm_first)
        if self.score:
            from coursekit.attention import AttentionSeq2Seq

            return AttentionSeq2Seq(vocab_size, self.embed, self.hidden, self.dropout, self.score)
        return Seq2Seq(vocab_size, self.embed, self.hidden, self.dropout)


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to a tenth of ``lr`` at ``max_steps``."""
    return warmup_cosine(step, config.lr, config.warmup, config.max_steps, final=0.1 * config.lr)


def train_batches(config: TrainConfig) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    if config.task == "copy":
        yield from copy_batches(config.batch_size, config.seed)
        return
    epoch = 0
    while True:
        yield from tr.batches("train", config.batch_size, seed=config.seed + epoch, max_len=config.max_len)
        epoch += 1


def validation_batches(config: TrainConfig) -> list[tuple[torch.Tensor, torch.Tensor]]:
    if config.task == "copy":
        src, tgt = COPY_TASK.sample(512, seed=COPY_TEST_SEED + 1)
        return [(tr.pad(src[i:i + 128]), tr.pad(tgt[i:i + 128], bos=True)) for i in range(0, 512, 128)]
    return list(tr.batches("val", 128, shuffle=False))


@torch.no_grad()
def mean_loss(model: nn.Module, batches, device) -> float:
    """Per-token cross-entropy (nats) over all the batches' non-pad target tokens."""
    model.eval()
    total, count = 0.0, 0
    for src, tgt in batches:
        src, tgt = src.to(device), tgt.to(device)
        n = int((tgt[:, 1:] != model.pad_id).sum())
        total += float(loss_per_token(model, src, tgt)) * n
        count += n
    return total / count


def vocab_size(task: str) -> int:
    return COPY_TASK.vocab_size if task == "copy" else tr.tokenizer().get_vocab_size()


def train(config: TrainConfig, device: torch.device | str = "cpu", log=print) -> tuple[Translator, dict]:
    """Adam with warm-up and cosine decay, gradient clipping, the weights of the best validation loss
    kept. Returns the model (best weights) and the history: step, target tokens seen, seconds, lr,
    train loss (mean since the last evaluation), validation loss."""
    seed_everything(config.seed)
    model = config.model(vocab_size(config.task)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    val = validation_batches(config)
    history = {k: [] for k in ("step", "tokens", "seconds", "lr", "train", "val")}
    best, best_state = float("inf"), None
    tokens, running, running_n, start = 0, 0.0, 0, time.perf_counter()
    batches = train_batches(config)
    for step in range(1, config.max_steps + 1):
        model.train()
        src, tgt = next(batches)
        src, tgt = src.to(device), tgt.to(device)
        lr = learning_rate(step - 1, config)
        for group in opt.param_groups:
            group["lr"] = lr
        loss = loss_per_token(model, src, tgt, config.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        opt.step()
        tokens += int((tgt[:, 1:] != model.pad_id).sum())
        running, running_n = running + loss.item(), running_n + 1
        if step % config.eval_every == 0 or step == config.max_steps:
            v = mean_loss(model, val, device)
            elapsed = time.perf_counter() - start
            for key, value in zip(history, (step, tokens, elapsed, lr, running / running_n, v)):
                history[key].append(value)
            log(f"step {step:5d}  tokens {tokens:9,}  {elapsed:7.0f} s  lr {lr:.2e}  "
                f"train {running / running_n:.3f}  val {v:.3f}")
            running, running_n = 0.0, 0
            if v < best:
                best, best_state = v, {k: t.detach().clone() for k, t in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()
    return model, history


# ------------------------------------------------------------------------------------ checkpoints

def checkpoint_path(task: str, model: str = "seq2seq") -> Path:
    """``model``: a ``TrainConfig.name`` ("seq2seq", "attention-additive", ...)."""
    return CHECKPOINTS / f"{model}_{task}.pt"


def save(path: Path, model: Translator, config: TrainConfig, history: dict) -> None:
    """Float16 weights (half the bytes; the scores are measured on these weights as shipped)."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state": state, "config": asdict(config), "history": history}, path)


def load(task: str = "bible", path: Path | None = None, device: torch.device | str = "cpu",
         model: str = "seq2seq") -> tuple[Translator, dict]:
    """(model in eval mode, float32, on ``device``; the checkpoint dict with "config" and "history")."""
    ckpt = torch.load(path or checkpoint_path(task, model), map_location="cpu", weights_only=True)
    config = TrainConfig(**ckpt["config"])
    net = config.model(vocab_size(config.task))
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["state"].items()})
    return net.to(device).eval(), ckpt


# ---------------------------------------------------------------------------------------- scoring

def translate(model: Translator, sources: Sequence[str], batch_size: int = 128, max_len: int = 120,
              device: torch.device | str = "cpu") -> list[str]:
    """Greedy translations (detokenized) of Spanish ``sources``, batched by length, in input order."""
    ids = tr.token_ids(list(sources))
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out: list[str] = [""] * len(ids)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        src = tr.pad([ids[i] for i in chunk]).to(device)
        for i, text in zip(chunk, tr.decode(model.greedy(src, max_len).cpu())):
            out[i] = text
    return out


def outputs_path(task: str, model: str = "seq2seq") -> Path:
    return RESULTS / f"{model}_{task}_test_outputs.tsv"


def by_length_path(task: str, model: str = "seq2seq") -> Path:
    return RESULTS / f"{model}_{task}_bleu_by_length.csv"


def test_pairs(task: str) -> tuple[list[str], list[str], list[str]]:
    """(sources, references, source texts used for bucketing) of the task's test set."""
    if task == "copy":
        src, tgt = copy_test_set()
        texts = [COPY_TASK.text(s) for s in src]
        return texts, [COPY_TASK.text(t) for t in tgt], texts
    test = tr.split("test")
    return [p.src for p in test], [p.tgt for p in test], [p.src for p in test]


def decode_test(model: Translator, task: str, device="cpu") -> list[str]:
    if task == "copy":
        src, _ = copy_test_set()
        return [text for i in range(0, len(src), 200)
                for text in COPY_TASK.decode(model.greedy(tr.pad(src[i:i + 200]).to(device), 60).cpu())]
    return translate(model, test_pairs(task)[0], device=device)


def write_outputs(task: str, hyps: Sequence[str], model: str = "seq2seq") -> None:
    sources, refs, _ = test_pairs(task)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(outputs_path(task, model), "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(("source", "reference", "hypothesis"))
        w.writerows(zip(sources, refs, hyps))


def read_outputs(task: str = "bible", model: str = "seq2seq") -> list[dict]:
    with open(outputs_path(task, model), encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def buckets(task: str):
    return COPY_BUCKETS if task == "copy" else tr.LENGTH_BUCKETS


def write_by_length(task: str, rows: list[dict], model: str = "seq2seq") -> None:
    with open(by_length_path(task, model), "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows({k: (f"{v:.2f}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows)


def read_by_length(task: str = "bible", model: str = "seq2seq") -> list[dict]:
    with open(by_length_path(task, model), encoding="utf-8", newline="") as f:
        return [{k: (v if k == "bucket" else int(v) if k == "n" else float(v)) for k, v in r.items()}
                for r in csv.DictReader(f)]


# ---------------------------------------------------------------------------------------------------
# ---- chapter 04's measurements
#
# What book/04_seq2seq.md measures on the shipped checkpoints, in seconds on one CPU thread: the
# decoder's candidates step by step (its demo) and the bottleneck probe (what a linear read-out can
# recover of the source from the one vector c the decoder receives).

@torch.no_grad()
def greedy_steps(model: Translator, source_ids: Sequence[int], k: int = 5, max_len: int = 80,
                 bos: int = tr.BOS, eos: int = tr.EOS) -> list[dict]:
    """Greedy decoding of one source (token ids without specials; <eos> is appended, as in training),
    step by step. One dict per output token, up to and including <eos>: {"id": the token chosen (the
    arg-max), "p": its probability, "top": [(id, probability), ...] the ``k`` most likely tokens,
    most likely first}. Probabilities are the softmax of the decoder's logits (float). A model that
    attends (chapter 05's, with ``attend``) adds "alpha": the weights over the S + 1 source positions
    (the source tokens, then <eos>; floats summing to 1) that the step's context vector was made with."""
    src = tr.pad([list(source_ids)]).to(next(model.parameters()).device)  # (1, S)
    memory, state = model.encode(src)
    mask = src != model.pad_id
    prev = torch.tensor([bos], device=src.device)
    steps = []
    for _ in range(max_len):
        alpha = model.attend(state, memory, mask)[1] if hasattr(model, "attend") else None  # decode_step's α
        logits, state = model.decode_step(prev, state, memory, mask)  # (1, V)
        probs = logits.softmax(dim=-1)[0]
        top = probs.topk(k)
        chosen = int(top.indices[0])  # the arg-max: greedy decoding
        steps.append({"id": chosen, "p": float(top.values[0]),
                      "top": [(int(i), float(p)) for i, p in zip(top.indices, top.values)]})
        if alpha is not None:
            steps[-1]["alpha"] = alpha[0].float().cpu().tolist()
        if chosen == eos:
            break
        prev = torch.tensor([chosen], device=src.device)
    return steps


@torch.no_grad()
def encoder_summaries(model: Seq2Seq, ids: Sequence[Sequence[int]], batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Two fixed vectors per source (token ids without specials; <eos> appended, as in training):
    the final encoder state c, the only thing this decoder receives, and, for comparison, the mean
    of all the encoder's states (the same H numbers, but every position contributes equally).
    Returns two float32 tensors (N, H) on the CPU, in input order. Sources are batched by length,
    so little time goes into padding."""
    device = next(model.parameters()).device
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    final = torch.zeros(len(ids), model.encoder.hidden_size)
    mean = torch.zeros_like(final)
    model.eval()
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        src = tr.pad([ids[i] for i in chunk]).to(device)  # (B, S)
        memory, c = model.encode(src)  # (B, S, H) with zeros at padding, (B, H)
        n = (src != model.pad_id).sum(dim=1, keepdim=True)  # (B, 1)
        final[chunk] = c.float().cpu()
        mean[chunk] = (memory.sum(dim=1) / n).float().cpu()
    return final, mean


def bag_of_tokens(ids: Sequence[Sequence[int]], vocab_size: int) -> torch.Tensor:
    """(N, V) float32: 1 where subword v occurs in source n (any number of times), else 0;
    the special tokens (ids 0-3) are never set."""
    out = torch.zeros(len(ids), vocab_size)
    for n, row in enumerate(ids):
        kept = [i for i in row if i > tr.UNK]
        if kept:
            out[n, kept] = 1.0
    return out


@dataclass
class LinearProbe:
    """A linear read-out ``scores = x @ weight + bias``, fitted by ridge-regularised least squares
    (closed form: one H x H solve, no training loop, deterministic)."""
    weight: torch.Tensor  # (H, V)
    bias: torch.Tensor  # (V,)

    @classmethod
    def fit(cls, X: torch.Tensor, Y: torch.Tensor, ridge: float = 1e-3) -> "LinearProbe":
        """X (N, H), Y (N, V) float. ``ridge`` is relative: the penalty is ridge times the mean
        eigenvalue of the centred Gram matrix, so it means the same whatever the scale of X."""
        X64, Y64 = X.double(), Y.double()
        mx, my = X64.mean(0), Y64.mean(0)
        Xc = X64 - mx
        gram = Xc.T @ Xc  # (H, H)
        lam = ridge * torch.trace(gram) / gram.shape[0]
        weight = torch.linalg.solve(gram + lam * torch.eye(gram.shape[0], dtype=gram.dtype), Xc.T @ (Y64 - my))
        return cls(weight.float(), (my - mx @ weight).float())

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        return X @ self.weight + self.bias


def probe_hits(scores: torch.Tensor, ids: Sequence[Sequence[int]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """How much of each source a probe recovers. For source n with k distinct subwords, the probe's
    guess is its k highest-scoring subwords (special tokens excluded). Returns (per source: the
    fraction of its distinct subwords in the guess, R-precision, float array (N,); per source: a
    bool array, one entry per token position, True where that position's subword is in the guess)."""
    scores = scores.clone()
    scores[:, :tr.UNK + 1] = -float("inf")
    recall, positions = np.zeros(len(ids)), []
    for n, row in enumerate(ids):
        distinct = sorted({i for i in row if i > tr.UNK})
        if not distinct:
            recall[n] = np.nan
            positions.append(np.zeros(len(row), dtype=bool))
            continue
        guess = set(scores[n].topk(len(distinct)).indices.tolist())
        recall[n] = len(guess.intersection(distinct)) / len(distinct)
        positions.append(np.array([i in guess for i in row], dtype=bool))
    return recall, positions


def bottleneck_probe(model: Seq2Seq, n_train: int = 4000, seed: int = 0, ridge: float = 1e-3,
                     test: Sequence[tr.Pair] | None = None) -> dict:
    """The bottleneck probe of chapter 04: can a linear read-out tell which subwords a Spanish verse
    contains, from the vector the decoder receives?

    Fits ``LinearProbe``s from three inputs to the bag of subwords of the source (``bag_of_tokens``):
    the final encoder state c, the mean of all encoder states (same size, every position counted),
    and nothing (the bias alone: each subword's frequency, the score of a probe that knows no more
    than the language). Fitted on ``n_train`` training verses drawn with ``default_rng(seed)``,
    scored on the test split (or ``test``) with ``probe_hits``.

    Returns {"words": source words per test verse (N,), "tokens": source tokens per verse (N,),
    "recall": {"final", "mean", "frequency"} -> R-precision per verse (N,), "positions": {"final",
    "mean", "frequency"} -> per verse a bool array over its token positions, "n_train", "seconds"}.
    """
    start = time.perf_counter()
    train = tr.split("train")
    picked = np.random.default_rng(seed).choice(len(train), size=min(n_train, len(train)), replace=False)
    train_ids = tr.token_ids([train[i].src for i in sorted(picked)])
    test = tr.split("test") if test is None else test
    test_ids = tr.token_ids([p.src for p in test])
    V = model.vocab_size
    Y = bag_of_tokens(train_ids, V)  # (n_train, V)
    final_tr, mean_tr = encoder_summaries(model, train_ids)
    final_te, mean_te = encoder_summaries(model, test_ids)
    scores = {"final": LinearProbe.fit(final_tr, Y, ridge)(final_te),
              "mean": LinearProbe.fit(mean_tr, Y, ridge)(mean_te),
              "frequency": Y.mean(0).expand(len(test_ids), -1)}
    recall, positions = {}, {}
    for name, s in scores.items():
        recall[name], positions[name] = probe_hits(s, test_ids)
    return {"words": np.array([tr.source_words(p.src) for p in test]),
            "tokens": np.array([len(row) for row in test_ids]),
            "recall": recall, "positions": positions, "n_train": len(train_ids),
            "seconds": time.perf_counter() - start}


def recall_by_position(positions: Sequence[np.ndarray], bins: int = 5) -> np.ndarray:
    """Mean of ``probe_hits``'s per-position hits by relative position in the source (the first
    token at 0, the last at 1), in ``bins`` equal bins: float array (bins,)."""
    hits, where = [], []
    for row in positions:
        if len(row) == 0:
            continue
        hits.append(row.astype(float))
        where.append(np.arange(len(row)) / max(1, len(row) - 1))
    hits, where = np.concatenate(hits), np.concatenate(where)
    index = np.minimum((where * bins).astype(int), bins - 1)
    return np.array([hits[index == b].mean() for b in range(bins)])


# -------------------------------------------------------------------------------------------- CLI

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("train", "evaluate"))
    parser.add_argument("--task", choices=TASKS, default="bible")
    parser.add_argument("--out", type=Path, default=None, help="checkpoint to write (train) or read (evaluate)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is fastest on a busy 2-core machine)")
    for name, value in asdict(TrainConfig()).items():
        if name not in ("task", "command"):
            parser.add_argument("--" + name.replace("_", "-"), default=None,
                                type=(lambda text: text.lower() in ("1", "true", "yes")) if isinstance(value, bool)
                                else type(value))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.command == "train":
        defaults = {"copy": {"hidden": 256, "embed": 64, "max_steps": 2000, "dropout": 0.0}}.get(args.task, {})
        settings = {**defaults, **{k: v for k, v in vars(args).items()
                                    if k in TrainConfig.__dataclass_fields__ and v is not None}}
        settings["command"] = "python -m coursekit.seq2seq " + shlex.join(sys.argv[1:] if argv is None else argv)
        config = TrainConfig(**settings)
        print(f"training {config} on {device}")
        model, history = train(config, device)
        out = args.out or checkpoint_path(args.task, config.name)
        save(out, model, config, history)
        print(f"{n_parameters(model):,} parameters; {history['seconds'][-1] / 60:.1f} min -> {out}")
        return 0
    name = TrainConfig(score=args.score or "", layers=args.layers or 0,
                       norm_first=True if args.norm_first is None else args.norm_first).name
    start = time.perf_counter()
    model, _ = load(args.task, path=args.out, device=device, model=name)
    hyps = decode_test(model, args.task, device)
    decoding = time.perf_counter() - start
    write_outputs(args.task, hyps, name)
    sources, refs, texts = test_pairs(args.task)
    scores = tr.evaluate(hyps, refs)
    rows = tr.bleu_by_length(hyps, refs, texts, buckets(args.task))
    write_by_length(args.task, rows, name)
    print(f"decoded {len(hyps):,} test sentences in {decoding:.0f} s")
    for s in scores.values():
        print(s, s.signature)
    for r in rows:
        print(f"{r['bucket']:>6} n={r['n']:5d}  BLEU {r['bleu']:5.1f} [{r['bleu_low']:.1f}, {r['bleu_high']:.1f}]"
              f"  chrF {r['chrf']:5.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
