"""Chapter 10's decoder-only Transformer: a character-level GPT (Radford et al. 2018) on chapter 01's splits.

GPT is chapter 08's decoder without the encoder and without cross-attention: a stack of pre-norm blocks of causal
self-attention and a feed-forward layer, trained to predict every next character at once::

    x = E_token[ids] + E_position[0..T-1]                                   (B, T, d)
    block:  x = x + CausalAttn(LN(x))        x = x + MLP(LN(x))             MLP: d -> 4d -> d, GELU
    P(next character | prefix) = softmax(LN(x) E_tokenᵀ)                     the output tied to the input

Generating is one forward pass per new character. Without a cache each pass reads the whole prefix again; with
the **KV cache** (``forward(ids, cache)``) a pass reads only the new characters and appends their keys and values
to those the cache keeps, so its cost no longer grows with the prefix (until the context window is full).

The shipped checkpoint is trained once, on the CPU, by::

    python -m coursekit.gpt train --threads 1

which writes ``data/checkpoints/gpt_shakespeare.pt`` (float16 weights, the settings, the training curve), its row
of chapter 03's language-model table (``data/lm_results.csv``) and its curve (``data/rnn_curves.csv``, cell
"gpt"). ``python -m coursekit.gpt measure --threads 1`` times generation with and without the cache and writes
``data/gpt/kv_cache.csv``.
"""
from __future__ import annotations

import argparse
import csv
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from coursekit import corpora, rnn
from coursekit.device import seed_everything
from coursekit.schedules import warmup_cosine
from coursekit.vocab import Vocabulary

CHECKPOINTS = corpora.DATA / "checkpoints"
RESULTS = corpora.DATA / "gpt"
KV_CACHE_PATH = RESULTS / "kv_cache.csv"

Cache = list  # one (keys, values) pair per block, each (B, heads, T so far, d / heads)


# ------------------------------------------------------------------------------------------ model

class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position i sees positions j <= i only.

    forward(x, past) with x (B, T, d) and ``past`` the (keys, values) of earlier positions, each
    (B, heads, P, d / heads), or None. Returns (y (B, T, d), (keys, values) of all P + T positions). With ``past``
    the T new queries sit at positions P .. P + T - 1 and see every past position. With ``keep_weights`` set the
    attention weights (B, heads, T, P + T) of the last call are kept in ``weights`` (for the chapter's pictures).
    """

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} is not a multiple of heads={heads}")
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.keep_weights = False
        self.weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None):
        B, T, d = x.shape
        q, k, v = (t.view(B, T, self.heads, -1).transpose(1, 2) for t in self.qkv(x).split(d, dim=-1))
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)  # (B, h, P + T, d/h)
        P = k.size(2) - T
        # Query i (at position P + i) may look at key j when j <= P + i: a causal mask shifted by P.
        allowed = torch.ones(T, P + T, dtype=torch.bool, device=x.device).tril(diagonal=P)
        dropout = self.dropout if self.training else 0.0
        if self.keep_weights:
            scores = (q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))).masked_fill(~allowed, float("-inf"))
            self.weights = scores.softmax(dim=-1)
            y = F.dropout(self.weights, dropout, self.training) @ v
        elif P == 0:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout)
        return self.out(y.transpose(1, 2).reshape(B, T, d)), (k, v)


class Block(nn.Module):
    """A pre-norm GPT block: causal self-attention, then the feed-forward layer, each a residual sub-layer."""

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attention = CausalSelfAttention(d_model, heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model),
                                 nn.Dropout(dropout))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, past=None):
        a, present = self.attention(self.norm1(x), past)
        x = x + self.dropout(a)
        return x + self.mlp(self.norm2(x)), present


@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 256  # the context window: the most characters a prediction sees
    d_model: int = 256
    heads: int = 8
    layers: int = 6
    dropout: float = 0.1


class GPT(nn.Module):
    """A character-level GPT. forward(ids (B, T), cache=None) -> (logits (B, T, V), cache).

    ``cache`` holds the keys and values of the characters before ``ids`` (None: ``ids`` starts the text); the
    returned cache covers them and ``ids``. The positions of ``ids`` continue those of the cache, and all must
    fit in ``block_size``.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.token = nn.Embedding(config.vocab_size, config.d_model)
        self.position = nn.Embedding(config.block_size, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config.d_model, config.heads, config.dropout)
                                    for _ in range(config.layers))
        self.norm = nn.LayerNorm(config.d_model)
        # The embeddings start as GPT-2's, N(0, 0.02²); the linear layers keep PyTorch's default, scaled to their
        # width (chapter 09 measured what a fixed 0.02 does to the attention of a narrow model).
        for embedding in (self.token, self.position):
            nn.init.normal_(embedding.weight, std=0.02)

    def forward(self, ids: torch.Tensor, cache: Cache | None = None) -> tuple[torch.Tensor, Cache]:
        start = 0 if cache is None else cache[0][0].size(2)
        if start + ids.size(1) > self.config.block_size:
            raise ValueError(f"{start + ids.size(1)} positions do not fit the context of {self.config.block_size}")
        positions = torch.arange(start, start + ids.size(1), device=ids.device)
        x = self.dropout(self.token(ids) + self.position(positions))  # (B, T, d)
        present = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, None if cache is None else cache[i])
            present.append(kv)
        return self.norm(x) @ self.token.weight.T, present  # (B, T, V)

    def attention_modules(self) -> list[CausalSelfAttention]:
        return [block.attention for block in self.blocks]


# ------------------------------------------------------------------------------------- evaluation

@torch.no_grad()
def total_nll(model: GPT, ids: torch.Tensor, first_input: int, batch: int = 64) -> float:
    """Total negative log-likelihood (nats) of ``ids`` (1-D long) under ``model``, every character predicted from
    at least half a context window before it (all before it near the start).

    The stream is prefixed with ``first_input`` (the newline every split starts after), cut into windows of
    ``block_size`` that overlap by half, and each window scores only its second half (the first window all of
    it), so every character is scored exactly once. The same convention for every model keeps the numbers
    comparable with chapter 03's, which read the split as one stream.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    stream = torch.cat([torch.tensor([first_input]), ids.cpu()])  # (N + 1,): inputs, then targets
    n, T = len(ids), model.config.block_size
    half = T // 2
    starts = list(range(0, max(1, n - half), half)) if n > T else [0]
    total = 0.0
    for b in range(0, len(starts), batch):
        rows = starts[b:b + batch]
        x = torch.stack([_window(stream, s, T) for s in rows]).to(device)           # (R, T)
        y = torch.stack([_window(stream, s + 1, T, fill=-100) for s in rows]).to(device)
        for r, s in enumerate(rows):
            if s > 0:
                y[r, :half] = -100  # scored by the previous window
        logits, _ = model(x)
        total += F.cross_entropy(logits.double().transpose(1, 2), y, ignore_index=-100, reduction="sum").item()
    model.train(was_training)
    return total


def _window(stream: torch.Tensor, start: int, length: int, fill: int = 0) -> torch.Tensor:
    out = torch.full((length,), fill, dtype=torch.long)
    piece = stream[start:start + length]
    out[:len(piece)] = piece
    return out


def nats_per_char(model: GPT, vocab: Vocabulary, text: str) -> float:
    """The model's nats per character of ``text`` (the unit of chapter 01's and chapter 03's tables)."""
    return corpora.nats_per_char(total_nll(model, rnn.encode(vocab, text), vocab["\n"]), text)


# ------------------------------------------------------------------------------------------ training

@dataclass
class TrainConfig:
    corpus: str = "shakespeare"
    block_size: int = 256
    d_model: int = 192
    heads: int = 6
    layers: int = 4
    dropout: float = 0.1
    batch: int = 32          # windows per step, drawn at random positions of the training text
    max_steps: int = 1000
    lr: float = 2e-3
    min_lr: float = 1e-4
    warmup: int = 100
    weight_decay: float = 0.1
    evals: int = 10          # validation passes during training (the best one is kept)
    seed: int = 0
    threads: int = 1
    command: str = ""

    def model_config(self, vocab_size: int) -> GPTConfig:
        return GPTConfig(vocab_size, self.block_size, self.d_model, self.heads, self.layers, self.dropout)


def random_windows(ids: torch.Tensor, batch: int, length: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets), each (batch, length): windows at random offsets of ``ids`` and the same shifted by one."""
    starts = torch.randint(0, len(ids) - length - 1, (batch,), generator=g)
    x = torch.stack([ids[s:s + length] for s in starts.tolist()])
    y = torch.stack([ids[s + 1:s + 1 + length] for s in starts.tolist()])
    return x, y


def train(config: TrainConfig, device="cpu", log=print, max_seconds: float | None = None):
    """Train a GPT on ``corpora.split(config.corpus)["train"]`` with AdamW (weight decay on matrices only),
    warm-up then cosine decay, gradient clipping; returns (model, vocab, history) with the weights of the
    validation pass of lowest loss. ``max_seconds`` stops early (the chapter's live demo)."""
    torch.set_num_threads(config.threads)
    g = seed_everything(config.seed)
    parts, vocab = corpora.split(config.corpus), corpora.char_vocab(config.corpus)
    train_ids = rnn.encode(vocab, parts["train"])
    model = GPT(config.model_config(len(vocab))).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=config.lr, betas=(0.9, 0.99))
    eval_every = max(1, config.max_steps // config.evals)
    history = {"step": [], "chars": [], "seconds": [], "train": [], "val": [], "lr": []}
    best, best_state, running, n, step = math.inf, None, 0.0, 0, 0
    start = time.perf_counter()
    while step < config.max_steps:
        model.train()
        x, y = random_windows(train_ids, config.batch, config.block_size, g)
        lr = warmup_cosine(step, config.lr, config.warmup, config.max_steps, final=config.min_lr)
        for group in opt.param_groups:
            group["lr"] = lr
        logits, _ = model(x.to(device))
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.to(device).reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running, n, step = running + loss.item(), n + 1, step + 1
        out_of_time = max_seconds is not None and time.perf_counter() - start > max_seconds
        if step % eval_every == 0 or step == config.max_steps or out_of_time:
            val = nats_per_char(model, vocab, parts["val"])
            seconds = time.perf_counter() - start
            for key, value in (("step", step), ("chars", step * config.batch * config.block_size),
                               ("seconds", seconds), ("train", running / n), ("val", val), ("lr", lr)):
                history[key].append(value)
            running, n = 0.0, 0
            if val < best:
                best, history["best_step"] = val, step
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            log(f"gpt {config.corpus} step {step}/{config.max_steps} ({seconds:.0f} s): "
                f"train {history['train'][-1]:.4f}, val {val:.4f} nats/char")
            if out_of_time:
                break
    history["seconds_total"] = time.perf_counter() - start
    model.load_state_dict(best_state)
    return model.eval(), vocab, history


def checkpoint_path(corpus: str = "shakespeare") -> Path:
    return CHECKPOINTS / f"gpt_{corpus}.pt"


def model_name(config: TrainConfig) -> str:
    return f"gpt {config.layers}x{config.d_model}"


def train_and_ship(config: TrainConfig) -> dict:
    """Train, round to float16, score the whole validation and test splits, write the checkpoint, the curve and
    the row of the language-model table."""
    model, vocab, history = train(config)
    rnn.round_to_half(model)
    parts = corpora.split(config.corpus)
    val, test = (nats_per_char(model, vocab, parts[name]) for name in ("val", "test"))
    path = checkpoint_path(config.corpus)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {k: v.half() for k, v in model.state_dict().items()}, "chars": vocab.tokens,
                "config": asdict(config), "history": history, "val": val, "test": test,
                "seconds": history["seconds_total"], "command": config.command, "torch": str(torch.__version__)},
               path)
    rnn.write_curve(config.corpus, "gpt", history)
    row = {"corpus": config.corpus, "model": model_name(config), "params": rnn.n_parameters(model),
           "val_nats_per_char": val, "test_nats_per_char": test, "train_seconds": history["seconds_total"],
           "checkpoint": str(path.relative_to(corpora.DATA.parent.parent)), "command": config.command}
    rnn.write_result(row)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.2f} MiB): val {val:.4f}, test {test:.4f} nats/char, "
          f"{history['seconds_total']:.0f} s", flush=True)
    return row


def load(corpus: str = "shakespeare", path: Path | None = None, device="cpu") -> tuple[GPT, Vocabulary, dict]:
    """The shipped checkpoint: (model in eval mode, its weights the float16 ones as shipped; vocab; the rest of
    the file: ``config`` (a TrainConfig), ``history``, ``val``, ``test``, ``seconds``, ``command``)."""
    ckpt = torch.load(path or checkpoint_path(corpus), map_location="cpu", weights_only=True)
    config = TrainConfig(**ckpt["config"])
    vocab = Vocabulary(ckpt["chars"])
    model = GPT(config.model_config(len(vocab)))
    model.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()})
    info = {k: v for k, v in ckpt.items() if k not in ("state_dict", "chars")}
    info["config"] = config
    return model.to(device).eval(), vocab, info


# ----------------------------------------------------------------------------------------- sampling

def filtered_probabilities(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                           top_p: float | None = None) -> torch.Tensor:
    """logits (..., V) -> the probabilities sampling draws from (..., V): softmax(logits / temperature), cut to
    the ``top_k`` most probable tokens and to the smallest set of most probable tokens whose probability reaches
    ``top_p`` (nucleus sampling; the token that crosses ``top_p`` is kept), renormalised. Ties at the cut keep
    the lower token id."""
    p = F.softmax(logits.double() / temperature, dim=-1)
    order = torch.sort(p, dim=-1, descending=True, stable=True)
    sorted_p, rank_of = order.values, order.indices
    keep = torch.ones_like(sorted_p, dtype=torch.bool)
    if top_k is not None:
        keep[..., top_k:] = False
    if top_p is not None:
        before = sorted_p.cumsum(-1) - sorted_p  # probability of the tokens ranked above
        keep &= before < top_p
    kept = torch.zeros_like(p).scatter(-1, rank_of, sorted_p * keep)
    return kept / kept.sum(-1, keepdim=True)


def sample_with(logits: torch.Tensor, u: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None) -> torch.Tensor:
    """One token per row of ``logits`` (B, V), with its randomness given: ``u`` (B,) uniform in [0, 1) picks the
    first token whose cumulative probability (in token-id order) exceeds it. temperature 0: the arg-max."""
    if temperature == 0:
        return logits.argmax(-1)
    cdf = filtered_probabilities(logits, temperature, top_k, top_p).cumsum(-1)
    return torch.searchsorted(cdf, u.double()[:, None] * cdf[:, -1:], right=True).clamp(max=logits.size(-1) - 1)[:, 0]


@torch.no_grad()
def generate(model: GPT, prompt: torch.Tensor, n: int, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, generator: torch.Generator | None = None,
             use_cache: bool = True) -> torch.Tensor:
    """``n`` new tokens after ``prompt`` (B, P) long -> (B, P + n). Each step samples from the last position's
    distribution (``sample_with``, one uniform per row from ``generator``; temperature 0 is greedy).

    Each step predicts from the window of tokens since ``start``. When the window is full (``block_size``
    tokens), it slides: ``start`` jumps so that the last half of the window is kept, as ``total_nll`` reads a
    text. ``use_cache``: after reading a window once, each step feeds only the newest token and the KV cache;
    else each step reads the whole window again. Both give the same tokens.
    """
    model.eval()
    T = model.config.block_size
    ids, cache, start, new_window = prompt, None, max(0, prompt.size(1) - T), True
    for _ in range(n):
        if use_cache and not new_window:
            logits, cache = model(ids[:, -1:], cache)  # (B, 1, V): one new position
        else:
            logits, cache = model(ids[:, start:])      # (B, window, V): the whole window again
        u = torch.rand(ids.size(0), generator=generator, device=ids.device)
        ids = torch.cat([ids, sample_with(logits[:, -1], u, temperature, top_k, top_p)[:, None]], dim=1)
        new_window = ids.size(1) - start > T
        if new_window:
            start = ids.size(1) - T // 2
    return ids


# ------------------------------------------------------------------------------------------ measuring

def time_generation(model: GPT, n: int = 500, use_cache: bool = True, prompt_length: int = 1) -> float:
    """Seconds to generate ``n`` tokens greedily after a ``prompt_length``-token prompt, one sequence."""
    prompt = torch.zeros(1, prompt_length, dtype=torch.long)
    start = time.perf_counter()
    generate(model, prompt, n, temperature=0, use_cache=use_cache)
    return time.perf_counter() - start


def measure_kv_cache(n: int = 500, repeats: int = 3) -> dict:
    """Tokens per second generating ``n`` tokens with and without the cache (best of ``repeats``), and the largest
    difference between the cached and uncached logits along one sequence."""
    model, _, _ = load()
    seconds = {c: min(time_generation(model, n, c) for _ in range(repeats)) for c in (False, True)}
    return {"tokens": n, "threads": torch.get_num_threads(), "block_size": model.config.block_size,
            "uncached_tokens_per_second": n / seconds[False], "cached_tokens_per_second": n / seconds[True],
            "speedup": seconds[False] / seconds[True], "largest_logit_difference": cached_logit_difference(model),
            "torch": torch.__version__}


@torch.no_grad()
def cached_logit_difference(model: GPT, length: int | None = None, seed: int = 0) -> float:
    """max |logits fed one token at a time through the cache - logits of one uncached pass| over a random
    sequence of ``length`` tokens (the context window by default)."""
    length = length or model.config.block_size
    ids = torch.randint(0, model.config.vocab_size, (1, length), generator=torch.Generator().manual_seed(seed))
    full, _ = model(ids)
    cache, steps = None, []
    for t in range(length):
        logits, cache = model(ids[:, t:t + 1], cache)
        steps.append(logits)
    return float((torch.cat(steps, 1) - full).abs().max())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.gpt", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("train", "measure"))
    parser.add_argument("--corpus", choices=corpora.CORPORA, default="shakespeare")
    parser.add_argument("--max-steps", type=int, default=TrainConfig.max_steps)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    args = parser.parse_args(argv)
    command = "python -m coursekit.gpt " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.what == "train":
        train_and_ship(TrainConfig(corpus=args.corpus, max_steps=args.max_steps, threads=args.threads,
                                   command=command))
        return 0
    torch.set_num_threads(args.threads)
    row = measure_kv_cache()
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(KV_CACHE_PATH, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row) + ["command"], lineterminator="\n")
        writer.writeheader()
        writer.writerow({**row, "command": command})
    print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
