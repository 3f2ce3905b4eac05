"""Chapter 08's Transformer (Vaswani et al. 2017), for the course's translation task.

Chapter 07's parts, assembled: token embeddings scaled by √d_model plus sinusoidal positions; an encoder of
``layers`` blocks (self-attention, then a position-wise feed-forward layer, each wrapped in a residual
connection and a layer norm); a decoder of as many blocks (masked self-attention, cross-attention with queries
from the decoder and keys and values from the encoder, feed-forward); the output projection tied to the
(joint, source-and-target) embedding::

    x = E[tokens] √d + PE                                   (B, T, d)
    encoder block:  x = x + Attn(LN(x), LN(x))        x = x + FFN(LN(x))                 (pre-norm)
    decoder block:  y = y + Attn_causal(LN(y), LN(y))  y = y + Attn(LN(y), memory)  y = y + FFN(LN(y))
    P(y_t | y_<t, x) = softmax(LN(y_t) Eᵀ)

``norm_first=False`` puts the norms where the paper had them, after each residual sum (post-norm:
``x = LN(x + Attn(x, x))``), and drops the final norms.

The model has the interface of every translation model of the course (``coursekit.seq2seq.Translator``:
``encode``, ``decode_step``, ``forward``, ``greedy``), so the same training loop, scores and beam search apply.
Its decoder state is the prefix of target tokens so far: each ``decode_step`` runs the decoder over the whole
prefix again, which is why generating gets slower as the output grows (chapter 10's KV cache keeps the keys and
values instead).

The checkpoint is trained by ``coursekit.seq2seq`` (its ``TrainConfig`` with ``layers`` > 0) and scored on the
test set by::

    python -m coursekit.seq2seq train --task bible --layers 2 --d-ff 1024 --lr 0.001 --warmup 400 \
        --max-steps 1740 --label-smoothing 0.1 --threads 2
    python -m coursekit.seq2seq evaluate --task bible --layers 2 --threads 2

1,740 steps is chapter 05's training time (2,400 steps) at the two models' training speeds measured on one CPU
thread. The chapter's measurements of cost (training tokens per second of chapters 04, 05 and 08's models, time per
generated token) and its comparison table are made by::

    python -m coursekit.transformer measure --threads 1
    python -m coursekit.transformer compare --threads 1
"""
from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from coursekit import tables
from coursekit import translation as tr
from coursekit.seq2seq import Translator

MAX_POSITIONS = 1024
RESULTS = Path(__file__).resolve().parent / "data" / "transformer"
THROUGHPUT_PATH = RESULTS / "throughput.csv"
GENERATION_PATH = RESULTS / "generation.csv"
COMPARISON_PATH = RESULTS / "comparison.csv"
BEAM_OUTPUTS_PATH = RESULTS / "beam_test_outputs.tsv"


def sinusoidal_positions(n: int, d_model: int) -> torch.Tensor:
    """(n, d_model) float32: PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d))."""
    position = torch.arange(n, dtype=torch.float32)[:, None]  # (n, 1)
    frequency = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(n, d_model)
    pe[:, 0::2] = torch.sin(position * frequency)
    pe[:, 1::2] = torch.cos(position * frequency)
    return pe


def causal_mask(t: int, device=None) -> torch.Tensor:
    """(t, t) bool, True where query i may look at key j, i.e. j <= i."""
    return torch.ones(t, t, dtype=torch.bool, device=device).tril()


class MultiHeadAttention(nn.Module):
    """Chapter 07's multi-head attention: queries from ``x``, keys and values from ``source`` (``x`` itself
    for self-attention), ``heads`` heads of d_model / heads numbers each, joined by W_o.

    mask: bool, broadcastable to (B, heads, T, S), True where a query may look at a key. With
    ``keep_weights`` set, the last call's weights (B, heads, T, S) are kept in ``weights`` (for the chapter's
    pictures); otherwise PyTorch's fused kernel computes the same thing without materialising them.
    """

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} is not a multiple of heads={heads}")
        self.heads, self.dropout = heads, dropout
        self.W_q = nn.Linear(d_model, d_model)
        self.W_k = nn.Linear(d_model, d_model)
        self.W_v = nn.Linear(d_model, d_model)
        self.W_o = nn.Linear(d_model, d_model)
        self.keep_weights = False
        self.weights: torch.Tensor | None = None

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d) -> (B, heads, T, d / heads)
        return x.view(x.size(0), x.size(1), self.heads, -1).transpose(1, 2)

    def forward(self, x: torch.Tensor, source: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = self._split(self.W_q(x)), self._split(self.W_k(source)), self._split(self.W_v(source))
        dropout = self.dropout if self.training else 0.0
        if self.keep_weights:
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, h, T, S)
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            self.weights = scores.softmax(dim=-1)
            y = F.dropout(self.weights, dropout, self.training) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)  # (B, h, T, d/h)
        return self.W_o(y.transpose(1, 2).reshape(x.shape))  # (B, T, d), the heads concatenated


@contextmanager
def keeping_weights(modules: Iterable[nn.Module]) -> Iterator[list[nn.Module]]:
    """Within the ``with`` block, attention layers (anything with ``keep_weights`` and ``weights``: chapter 07's,
    chapter 10's) keep their last call's weights; afterwards they go back to the fused kernel and forget them."""
    modules = list(modules)
    for m in modules:
        m.keep_weights = True
    try:
        yield modules
    finally:
        for m in modules:
            m.keep_weights, m.weights = False, None


class FeedForward(nn.Sequential):
    """The position-wise feed-forward layer: d_model -> d_ff -> d_model, ReLU between, applied to every
    position on its own."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0):
        super().__init__(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model))


class EncoderBlock(nn.Module):
    """Self-attention then feed-forward, each a residual sub-layer with its layer norm. x (B, S, d),
    src_mask bool broadcastable to (B, heads, S, S) -> (B, S, d)."""

    def __init__(self, d_model: int, heads: int, d_ff: int, dropout: float = 0.1, norm_first: bool = True):
        super().__init__()
        self.norm_first = norm_first
        self.attention = MultiHeadAttention(d_model, heads, dropout)
        self.feed_forward = FeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, src_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.dropout(self.attention(h, h, src_mask))
            return x + self.dropout(self.feed_forward(self.norm2(x)))
        x = self.norm1(x + self.dropout(self.attention(x, x, src_mask)))
        return self.norm2(x + self.dropout(self.feed_forward(x)))


class DecoderBlock(nn.Module):
    """Masked self-attention, cross-attention over the encoder's output, feed-forward; each a residual
    sub-layer with its layer norm. y (B, T, d), memory (B, S, d), tgt_mask broadcastable to (B, heads, T, T),
    src_mask to (B, heads, T, S) -> (B, T, d)."""

    def __init__(self, d_model: int, heads: int, d_ff: int, dropout: float = 0.1, norm_first: bool = True):
        super().__init__()
        self.norm_first = norm_first
        self.self_attention = MultiHeadAttention(d_model, heads, dropout)
        self.cross_attention = MultiHeadAttention(d_model, heads, dropout)
        self.feed_forward = FeedForward(d_model, d_ff, dropout)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.dropout = nn.Dropout(dropout)

    def forward(self, y: torch.Tensor, memory: torch.Tensor, tgt_mask: torch.Tensor | None = None,
                src_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.norm_first:
            h = self.norm1(y)
            y = y + self.dropout(self.self_attention(h, h, tgt_mask))
            y = y + self.dropout(self.cross_attention(self.norm2(y), memory, src_mask))
            return y + self.dropout(self.feed_forward(self.norm3(y)))
        y = self.norm1(y + self.dropout(self.self_attention(y, y, tgt_mask)))
        y = self.norm2(y + self.dropout(self.cross_attention(y, memory, src_mask)))
        return self.norm3(y + self.dropout(self.feed_forward(y)))


class Transformer(Translator):
    """Encoder-decoder Transformer with a joint vocabulary, one embedding shared by the source, the target
    and the output projection. Batch first; ``pad_id`` source positions are masked out of every attention.

    vocab_size: V; d_model: d; heads; layers: blocks per side; d_ff: the feed-forward layer's width;
    norm_first: pre-norm (True) or the paper's post-norm (False).
    """

    def __init__(self, vocab_size: int, d_model: int = 256, heads: int = 4, layers: int = 3, d_ff: int = 1024,
                 dropout: float = 0.1, norm_first: bool = True, pad_id: int = tr.PAD):
        super().__init__()
        self.pad_id, self.d_model = pad_id, d_model
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.register_buffer("positions", sinusoidal_positions(MAX_POSITIONS, d_model), persistent=False)
        self.encoder = nn.ModuleList(EncoderBlock(d_model, heads, d_ff, dropout, norm_first) for _ in range(layers))
        self.decoder = nn.ModuleList(DecoderBlock(d_model, heads, d_ff, dropout, norm_first) for _ in range(layers))
        # Pre-norm sums every sub-layer into the residual stream unnormalised: one last norm per side.
        self.encoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        nn.init.normal_(self.embedding.weight, std=d_model ** -0.5)  # so that E √d has unit-size entries

    @property
    def vocab_size(self) -> int:
        return self.embedding.num_embeddings

    def embed(self, tokens: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """tokens (B, T) -> E[tokens] √d + PE[offset : offset + T], dropped out: (B, T, d)."""
        pe = self.positions[offset:offset + tokens.size(1)]
        return self.dropout(self.embedding(tokens) * math.sqrt(self.d_model) + pe)

    def source_mask(self, src: torch.Tensor) -> torch.Tensor:
        """(B, 1, 1, S) bool: every query may look at every real source token, at no padding."""
        return (src != self.pad_id)[:, None, None, :]

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """src (B, S) -> memory (B, S, d), and the decoder's first state: the empty prefix (B, 0) long."""
        mask = self.source_mask(src)
        x = self.embed(src)
        for block in self.encoder:
            x = block(x, mask)
        return self.encoder_norm(x), src.new_zeros(src.size(0), 0)

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        """tgt_in (B, T) = <bos> y_1 ... y_{T-1}, memory (B, S, d), src_mask (B, S) bool -> (B, T, d): the
        decoder's output at every position, each seeing only the positions up to its own."""
        tgt_mask = causal_mask(tgt_in.size(1), tgt_in.device)
        cross_mask = src_mask[:, None, None, :]
        y = self.embed(tgt_in)
        for block in self.decoder:
            y = block(y, memory, tgt_mask, cross_mask)
        return self.decoder_norm(y)

    def logits(self, y: torch.Tensor) -> torch.Tensor:
        return y @ self.embedding.weight.T  # (..., V), the output tied to the embedding

    def decode_step(self, prev: torch.Tensor, prefix: torch.Tensor, memory: torch.Tensor,
                    src_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """prev (B,) long, the prefix before it (B, t) -> logits (B, V) of the next token, the prefix with
        prev appended (B, t + 1). The whole prefix runs through the decoder again: no cache."""
        prefix = torch.cat([prefix, prev[:, None]], dim=1)
        return self.logits(self.decode(prefix, memory, src_mask)[:, -1]), prefix

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: src (B, S), tgt_in (B, T) -> logits (B, T, V), every position at once."""
        memory, _ = self.encode(src)
        return self.logits(self.decode(tgt_in, memory, src != self.pad_id))

    def attention_modules(self) -> dict[str, list[MultiHeadAttention]]:
        """The attention layers by kind, first block first: "encoder", "decoder" (masked self), "cross"."""
        return {"encoder": [b.attention for b in self.encoder],
                "decoder": [b.self_attention for b in self.decoder],
                "cross": [b.cross_attention for b in self.decoder]}

    @torch.no_grad()
    def attention_maps(self, src: torch.Tensor, tgt_in: torch.Tensor) -> dict[str, torch.Tensor]:
        """The weights of every head of every layer with teacher forcing, for one or more pairs: src (B, S),
        tgt_in (B, T) -> {"encoder": (layers, B, heads, S, S), "decoder": (layers, B, heads, T, T),
        "cross": (layers, B, heads, T, S)}, float32 on the CPU."""
        modules = self.attention_modules()
        with keeping_weights(m for group in modules.values() for m in group):
            self(src, tgt_in)
            return {kind: torch.stack([m.weights.float().cpu() for m in group]) for kind, group in modules.items()}


# ---------------------------------------------------------------------------------------------------
# ---- chapter 08's measurements of cost
#
# The lectures' claim is that a Transformer trains faster than a recurrent network because it computes every
# position of a sentence at once. These measure it on whatever machine runs them: training steps of chapter 05's
# model and of this one on the same batches, and the time each new token of greedy decoding takes.

COMPARED = ("seq2seq", "attention-additive", "transformer")  # chapters 04, 05 and 08
THROUGHPUT_BATCH_SIZES = (8, 64)
GENERATION_LENGTHS = (1, 25, 50, 75, 100, 150, 200)


def training_step_seconds(model: Translator, optimizer: torch.optim.Optimizer, src: torch.Tensor,
                          tgt: torch.Tensor) -> float:
    """The wall-clock seconds of one training step (the course's loss, backward, optimizer step) on one batch,
    the device's queued work included."""
    from coursekit.measure import synchronize
    from coursekit.seq2seq import loss_per_token

    synchronize()
    start = time.perf_counter()
    loss = loss_per_token(model, src, tgt)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    synchronize()
    return time.perf_counter() - start


def measure_throughput(steps: int = 10, batch_sizes: Sequence[int] = THROUGHPUT_BATCH_SIZES,
                       device: torch.device | str = "cpu", warmup: int = 2, log=print) -> list[dict]:
    """Training throughput of the shipped models' architectures (fresh weights, their checkpoints' settings) on
    the same training batches: one row per (model, batch size), with seconds per step and target tokens per
    second over ``steps`` timed steps (after ``warmup`` untimed ones). The models take turns on each batch, so
    whatever else the machine is doing slows them alike."""
    from coursekit import seq2seq

    rows = []
    for batch_size in batch_sizes:
        batches = list(itertools.islice(tr.batches("train", batch_size, seed=0, max_len=96), warmup + steps))
        models = {}
        for name in COMPARED:
            config = seq2seq.TrainConfig(**seq2seq.load("bible", model=name)[1]["config"])
            torch.manual_seed(0)
            model = config.model(seq2seq.vocab_size("bible")).to(device).train()
            models[name] = model, torch.optim.Adam(model.parameters(), lr=1e-4)
        seconds = dict.fromkeys(models, 0.0)
        tokens = 0
        for i, (src, tgt) in enumerate(batches):
            src, tgt = src.to(device), tgt.to(device)
            for name, (model, optimizer) in models.items():
                elapsed = training_step_seconds(model, optimizer, src, tgt)
                seconds[name] += elapsed if i >= warmup else 0.0
            tokens += int((tgt[:, 1:] != tr.PAD).sum()) if i >= warmup else 0
        for name, (model, _) in models.items():
            rows.append({"model": name, "device": str(device), "threads": torch.get_num_threads(),
                         "batch_size": batch_size, "parameters": seq2seq.n_parameters(model),
                         "seconds_per_step": seconds[name] / steps, "tokens_per_second": round(tokens / seconds[name])})
            log(rows[-1])
    return rows


@torch.no_grad()
def measure_generation(lengths: Sequence[int] = GENERATION_LENGTHS, repeats: int = 5,
                       device: torch.device | str = "cpu", log=print) -> list[dict]:
    """Milliseconds that one greedy decoding step takes after ``t`` tokens have been generated, batch of one, for
    the shipped Transformer (which re-reads its whole prefix) and chapter 05's model (which carries a state)."""
    from coursekit import seq2seq
    from coursekit.measure import time_call

    source = tr.pad([tr.token_ids(tr.split("test")[0].src)[0]]).to(device)  # (1, S)
    rows = []
    for name in COMPARED[1:]:
        model, _ = seq2seq.load("bible", model=name, device=device)
        memory, state = model.encode(source)
        mask = source != model.pad_id
        prev = torch.tensor([tr.BOS], device=device)
        for t in lengths:
            # The state after t tokens: the prefix itself for the Transformer; for the RNN its size never changes.
            step_state = torch.full((1, t - 1), tr.BOS, device=device) if name == "transformer" else state
            seconds = time_call(lambda: model.decode_step(prev, step_state, memory, mask), repeats=repeats)
            rows.append({"model": name, "device": str(device), "tokens_so_far": t, "ms_per_token": round(1e3 * seconds, 3)})
            log(rows[-1])
    return rows


def beam_setting() -> tuple[int, float, str]:
    """Chapter 06's beam setting, chosen on the dev set for chapter 05's model: (B, α, penalty)."""
    from coursekit import beam

    chosen = beam.read_table(beam.TEST_PATH)[-1]
    return chosen["beam_width"], chosen["alpha"], chosen["penalty"]


def compare(log=print) -> list[dict]:
    """The chapter's table: per model of ``COMPARED``, its size, its training (steps, target tokens, best
    validation loss, and minutes at the throughput ``THROUGHPUT_PATH`` measured for it at the training batch
    size), and its test scores with greedy decoding (BLEU and chrF with 95% intervals), and with chapter 06's
    beam setting for the two models with attention. Decodes the Transformer's test set with beam search (the
    slow part: minutes) and writes those outputs to ``BEAM_OUTPUTS_PATH``."""
    from coursekit import beam, seq2seq

    speed = {(r["model"], r["batch_size"]): r for r in tables.read_table(THROUGHPUT_PATH)}
    test = tr.split("test")
    references = [p.tgt for p in test]
    width, alpha, penalty = beam_setting()
    rows = []
    for name in COMPARED:
        model, ckpt = seq2seq.load("bible", model=name)
        config, history = ckpt["config"], ckpt["history"]
        measured = speed[name, config["batch_size"]]
        hyps = [r["hypothesis"] for r in seq2seq.read_outputs("bible", name)]
        scores = tr.evaluate(hyps, references)
        row = {"model": name, "parameters": seq2seq.n_parameters(model), "steps": history["step"][-1],
               "target_tokens": history["tokens"][-1], "best_val_loss": min(history["val"]),
               "tokens_per_second": measured["tokens_per_second"],
               "training_minutes": history["step"][-1] * measured["seconds_per_step"] / 60,
               "beam_bleu": "", "bleu_gain": "", "bleu_gain_low": "", "bleu_gain_high": ""}  # filled below where they apply
        for metric, score in scores.items():
            row.update({metric: score.score, f"{metric}_low": score.low, f"{metric}_high": score.high})
        if name == "attention-additive":
            row["beam_bleu"] = beam.read_table(beam.TEST_PATH)[-1]["bleu"]
        elif name == "transformer":
            attention = [r["hypothesis"] for r in seq2seq.read_outputs("bible", "attention-additive")]
            paired = tr.paired_bootstrap(attention, hyps, references)
            row.update(bleu_gain=paired["delta"], bleu_gain_low=paired["delta_low"], bleu_gain_high=paired["delta_high"])
            outputs = [beam.text(beam.beam_search(model, ids, width, alpha=alpha, penalty=penalty)[0])
                       for ids in tr.token_ids([p.src for p in test])]
            tables.write_table(BEAM_OUTPUTS_PATH, [{"beam": h} for h in outputs],
                               f"python -m coursekit.transformer compare  (B={width}, alpha={alpha}, {penalty})")
            row["beam_bleu"] = tr.bleu(outputs, references).score
        log(row)
        rows.append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="chapter 08's measurements of cost")
    parser.add_argument("command", choices=("measure", "compare"),
                        help="measure: THROUGHPUT_PATH and GENERATION_PATH; compare: COMPARISON_PATH (after measure)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    command = "python -m coursekit.transformer " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.command == "compare":
        tables.write_table(COMPARISON_PATH, compare(), command)
        return 0
    tables.write_table(THROUGHPUT_PATH, measure_throughput(args.steps, device=device), command)
    tables.write_table(GENERATION_PATH, measure_generation(device=device), command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
