"""Chapter 05's encoder-decoder with attention (Bahdanau et al. 2015), with every score function of the lecture.

The encoder is a bidirectional GRU: the annotation of source position j, a_j = [→h_j; ←h_j], describes word j
with both of its sides. At each target step the decoder scores every annotation against its previous state,
turns the scores into weights and reads a context vector made for that step::

    e_tj = score(s_{t-1}, a_j)       α_t = softmax_j(e_t)  (padding masked)       c_t = Σ_j α_tj a_j
    s_t = GRU([E y_{t-1}; c_t], s_{t-1})                  P(y_t | y_<t, x) = softmax(Eᵀ W_o [s_t; c_t])

``SCORES`` names the score functions of the lecture's table (query q = s_{t-1}, key k = a_j):

==============  ============================  ===================================
name            score(q, k)                   from
==============  ============================  ===================================
``cosine``      β cos(W_q q, k)               content-based, Graves et al. 2014
``additive``    vᵀ tanh(W_q q + W_k k)        Bahdanau et al. 2015
``location``    (W_l q)_j: the position only  Luong et al. 2015
``general``     qᵀ W k                        Luong et al. 2015
``dot``         qᵀ k                          Luong et al. 2015
``scaled_dot``  qᵀ k / √d                     Vaswani et al. 2017
==============  ============================  ===================================

The model has the interface of ``coursekit.seq2seq.Seq2Seq`` (``encode``, ``decode_step``, ``forward``,
``greedy``), so the same training loop, scoring and beam search (chapter 06) apply. ``memory`` holds the
annotations and, for the scores with a learned key projection, the projected keys beside them (computed once
per sentence, not at every step): treat it as opaque apart from its batch dimension.

The checkpoints are trained by ``coursekit.seq2seq`` with ``--score`` (its docstring has the commands). The
score functions are compared on the synthetic task of chapter 04, each trained with the same short budget, by::

    python -m coursekit.attention compare-scores --threads 1

which writes ``coursekit/data/seq2seq/score_comparison.csv``: per score, BLEU by length bucket, the validation
loss and the training time. No checkpoints ship for it (six models for one table).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from coursekit import tables
from coursekit import translation as tr
from coursekit.seq2seq import Translator

SCORES = ("cosine", "additive", "location", "general", "dot", "scaled_dot")
MAX_SOURCE_TOKENS = 128  # the location score has one output per source position


class ScoreFunction(nn.Module):
    """e = score(q, keys): q (B, H), keys (B, S, K) -> (B, S). ``project_keys`` is applied to the annotations
    once per sentence; ``forward`` receives its result."""

    def __init__(self, kind: str, query: int, key: int, attention: int = 256):
        super().__init__()
        if kind not in SCORES:
            raise ValueError(f"unknown score {kind!r}; choose one of {SCORES}")
        if kind in ("dot", "scaled_dot") and query != key:
            raise ValueError(f"the {kind} score needs queries and keys of one size, not {query} and {key}")
        self.kind, self.key_size = kind, key
        if kind == "additive":
            self.w_q = nn.Linear(query, attention, bias=False)
            self.w_k = nn.Linear(key, attention)
            self.v = nn.Linear(attention, 1, bias=False)
        elif kind == "general":
            self.w_k = nn.Linear(key, query, bias=False)  # qᵀ W k with W k computed once per sentence
        elif kind == "cosine":
            self.w_q = nn.Linear(query, key)
            self.log_beta = nn.Parameter(torch.tensor(math.log(5.0)))  # the sharpness β, learned
        elif kind == "location":
            self.w_l = nn.Linear(query, MAX_SOURCE_TOKENS)

    @property
    def projected_size(self) -> int:
        """Extra memory columns the projected keys take (0 when the keys are used as they are)."""
        if self.kind == "additive":
            return self.w_k.out_features
        return self.w_k.out_features if self.kind == "general" else 0

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor | None:
        return self.w_k(keys) if self.kind in ("additive", "general") else None

    def forward(self, q: torch.Tensor, keys: torch.Tensor, projected: torch.Tensor | None) -> torch.Tensor:
        if self.kind == "dot":
            return torch.einsum("bh,bsh->bs", q, keys)
        if self.kind == "scaled_dot":
            return torch.einsum("bh,bsh->bs", q, keys) / math.sqrt(self.key_size)
        if self.kind == "general":
            return torch.einsum("bh,bsh->bs", q, projected)
        if self.kind == "additive":
            return self.v(torch.tanh(self.w_q(q).unsqueeze(1) + projected)).squeeze(-1)
        if self.kind == "cosine":
            return self.log_beta.exp() * F.cosine_similarity(self.w_q(q).unsqueeze(1), keys, dim=-1)
        return self.w_l(q)[:, :keys.size(1)]  # location: the scores ignore the keys


class AttentionSeq2Seq(Translator):
    """Bidirectional GRU encoder (``hidden // 2`` per direction, so annotations have ``hidden`` numbers), GRU
    decoder with attention, output tied to the joint embedding. Batch first; ``pad_id`` positions are masked."""

    def __init__(self, vocab_size: int, embed: int = 256, hidden: int = 256, dropout: float = 0.1,
                 score: str = "additive", pad_id: int = tr.PAD):
        super().__init__()
        if hidden % 2:
            raise ValueError("hidden must be even: half of it per encoder direction")
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=pad_id)
        self.encoder = nn.GRU(embed, hidden // 2, batch_first=True, bidirectional=True)
        self.init_state = nn.Linear(hidden, hidden)  # s_0 = tanh(W [→h_S; ←h_1])
        self.score = ScoreFunction(score, hidden, hidden)
        self.decoder = nn.GRUCell(embed + hidden, hidden)
        self.to_embedding = nn.Linear(2 * hidden, embed)
        self.dropout = nn.Dropout(dropout)
        self.hidden = hidden

    @property
    def vocab_size(self) -> int:
        return self.embedding.num_embeddings

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """src (B, S) -> memory (B, S, H [+ projected keys]), s_0 (B, H)."""
        lengths = (src != self.pad_id).sum(dim=1).clamp(min=1).cpu()
        x = self.dropout(self.embedding(src))  # (B, S, E)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, h = self.encoder(packed)  # h: (2, B, H/2), the last forward and the first backward state
        annotations, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))  # (B, S, H)
        s0 = torch.tanh(self.init_state(torch.cat([h[0], h[1]], dim=-1)))  # (B, H)
        projected = self.score.project_keys(annotations)
        memory = annotations if projected is None else torch.cat([annotations, projected], dim=-1)
        return memory, s0

    def attend(self, s: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor):
        """The decoder state s (B, H) against the source -> context c (B, H), weights α (B, S)."""
        annotations = memory[..., :self.hidden]
        projected = memory[..., self.hidden:] if memory.size(-1) > self.hidden else None
        e = self.score(s, annotations, projected).masked_fill(~src_mask, float("-inf"))  # (B, S)
        alpha = torch.softmax(e, dim=-1)
        return torch.einsum("bs,bsh->bh", alpha, annotations), alpha

    def _step(self, y_prev: torch.Tensor, s: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor):
        """The recurrence alone: the embedded previous token y_prev (B, E), s_{t-1} (B, H) -> s_t, c_t, and
        the weights α_t (B, S) that made c_t."""
        c, alpha = self.attend(s, memory, src_mask)
        return self.decoder(torch.cat([y_prev, c], dim=-1), s), c, alpha

    def _logits(self, s: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        z = self.to_embedding(self.dropout(torch.cat([s, c], dim=-1)))  # (..., E)
        return z @ self.embedding.weight.T  # (..., V)

    def decode_step(self, prev: torch.Tensor, state: torch.Tensor, memory: torch.Tensor,
                    src_mask: torch.Tensor):
        """prev (B,) long, state s_{t-1} (B, H) -> logits (B, V), s_t (B, H)."""
        s, c, _ = self._step(self.dropout(self.embedding(prev)), state, memory, src_mask)
        return self._logits(s, c), s

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: src (B, S), tgt_in (B, T) -> logits (B, T, V). The recurrence runs one step at a
        time (each step's attention needs the previous state); the output layer runs once, on all steps."""
        memory, s = self.encode(src)
        mask = src != self.pad_id
        y = self.dropout(self.embedding(tgt_in))  # (B, T, E)
        states, contexts = [], []
        for t in range(tgt_in.size(1)):
            s, c, _ = self._step(y[:, t], s, memory, mask)
            states.append(s)
            contexts.append(c)
        return self._logits(torch.stack(states, dim=1), torch.stack(contexts, dim=1))

    @torch.no_grad()
    def alignment(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """The weights α (B, T, S) of each target step over the source, with teacher forcing. Only the
        recurrence runs: the weights do not need the output layer (most of a step's time)."""
        memory, s = self.encode(src)
        mask = src != self.pad_id
        y = self.dropout(self.embedding(tgt_in))  # (B, T, E)
        weights = []
        for t in range(tgt_in.size(1)):
            s, _, alpha = self._step(y[:, t], s, memory, mask)
            weights.append(alpha)
        return torch.stack(weights, dim=1)



# ------------------------------------------------------------------------------ the score functions compared

COMPARISON_STEPS = 500
COMPARISON_PATH = Path(__file__).resolve().parent / "data" / "seq2seq" / "score_comparison.csv"


def compare_scores(scores: Sequence[str] = SCORES, steps: int = COMPARISON_STEPS, log=print) -> list[dict]:
    """Train one attention model per score on the synthetic task with the same settings and budget (the copy
    task's model size, ``steps`` steps of 64 sentences, one seed) and score each on the synthetic test set.
    Returns one row per score: the final validation loss, the training seconds, corpus BLEU and BLEU per length
    bucket (greedy decoding)."""
    from coursekit import seq2seq as s2s

    rows = []
    for score in scores:
        config = s2s.TrainConfig(task="copy", embed=64, hidden=256, dropout=0.0, max_steps=steps,
                                 eval_every=max(1, steps // 5), score=score)
        model, history = s2s.train(config, log=lambda line: None)
        hyps = s2s.decode_test(model, "copy")
        _, refs, texts = s2s.test_pairs("copy")
        row = {"score": score, "steps": steps, "seconds": round(history["seconds"][-1], 1),
               "val_loss": round(min(history["val"]), 4), "bleu": round(tr.bleu(hyps, refs).score, 2)}
        for bucket in tr.bleu_by_length(hyps, refs, texts, s2s.COPY_BUCKETS, n_boot=100):
            row[f"bleu_{bucket['bucket']}"] = round(bucket["bleu"], 2)
        log(row)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------------
# ---- chapter 05's measurements
#
# What book/05_attention.md measures on the shipped checkpoints, in seconds on one CPU thread: the
# teacher-forced alignments of many verses at once (its heatmaps and the counts of where each target word
# looks). Its step-by-step demo decodes with ``coursekit.seq2seq.greedy_steps``, which records α too.

@torch.no_grad()
def alignments(model: AttentionSeq2Seq, pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
               batch_size: int = 128) -> list[np.ndarray]:
    """The teacher-forced weights of each (source ids, target ids) pair (token ids without specials), as
    float32 arrays (T + 1, S + 1) in input order: row t is the step that predicts target token t + 1 (the
    last row predicts <eos>), column j is source token j (the last column the source's <eos>). Each row sums
    to 1. Pairs are batched by length, so little time goes into padding."""
    device = next(model.parameters()).device
    order = sorted(range(len(pairs)), key=lambda i: (len(pairs[i][0]), len(pairs[i][1])))
    out: list[np.ndarray | None] = [None] * len(pairs)
    model.eval()
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        src = tr.pad([pairs[i][0] for i in chunk]).to(device)  # (B, S + 1): ids <eos> <pad>...
        tgt_in = tr.pad([pairs[i][1] for i in chunk], bos=True, eos=False).to(device)  # <bos> y <pad>...
        alpha = model.alignment(src, tgt_in).float().cpu().numpy()  # (B, T_max+1, S_max+1)
        for row, i in enumerate(chunk):
            s, t = len(pairs[i][0]) + 1, len(pairs[i][1]) + 1
            out[i] = alpha[row, :t, :s]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("compare-scores",))
    parser.add_argument("--steps", type=int, default=COMPARISON_STEPS)
    parser.add_argument("--scores", default=",".join(SCORES), help="comma-separated (each model is seeded on its "
                        "own, so running subsets side by side and concatenating them gives the same rows)")
    parser.add_argument("--out", type=Path, default=COMPARISON_PATH)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows = compare_scores(args.scores.split(","), steps=args.steps)
    argv = sys.argv[1:] if argv is None else list(argv)
    tables.write_table(args.out, rows, command="python -m coursekit.attention " + " ".join(argv))
    print(f"{len(rows)} models in {(time.perf_counter() - start) / 60:.1f} min -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
