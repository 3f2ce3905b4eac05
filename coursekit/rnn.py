"""Recurrent networks for chapter 03: character language models, their gradients, their cost.

Everything chapter 03 needs that is not an exercise:

- ``CharRNN``: embedding -> one recurrent layer (``nn.RNN`` with tanh, ``nn.GRU`` or ``nn.LSTM``)
  -> dropout -> linear read-out, a character-level language model on the chapter-01 splits
  (``coursekit.corpora.split`` and ``char_vocab``);
- ``train_char_model``: truncated backpropagation through time over contiguous streams with
  carried (detached) state, Adam, warm-up then cosine learning rate, gradient clipping by norm,
  dropout, and the checkpoint chosen on the validation split;
- ``nats_per_char``: the model's total negative log-likelihood of a whole split, read as one
  stream with carried state, per character (the unit of ``coursekit.corpora.nats_per_char``,
  the same as chapter 01's n-gram table);
- checkpoints (float16, a few MB) and the results table ``coursekit/data/lm_results.csv`` that
  chapter 10 extends with its GPT (``read_results``, ``write_result``), and the training curves
  (``read_curves``); ``generate`` samples text at several temperatures;
- the chapter's measurements: ``rnn_hidden_gradients`` and ``lstm_hidden_gradients`` (the norm of
  dL/dh_{T-k} in random networks, with ``geometric_mean`` and ``fitted_rate``),
  ``input_gradient_norms`` and ``lstm_gates`` (the same in trained models), the one-unit map
  (``fixed_points``, ``iterate_map``), its loss surface and descent with and without clipping
  (``one_unit_loss``, ``descent``), and ``time_per_step``.

The chapter loads checkpoints trained once, on the CPU, one thread each, by these commands (the
two corpora ran side by side on a 2-core machine; the training times are in the table). The
Machado LSTM was trained in two stages, 4 epochs and then 5 more from the first stage's
checkpoint (``--resume``: a new warm-up and cosine schedule); after 4 epochs it was still behind
the 5-gram, while the Shakespeare LSTM was already ahead::

    python -m coursekit.rnn train --corpus shakespeare --cell lstm --hidden 512 --epochs 4 --threads 1
    python -m coursekit.rnn train --corpus machado --cell lstm --hidden 512 --epochs 4 --threads 1
    python -m coursekit.rnn train --corpus machado --cell lstm --hidden 512 --epochs 5 --lr 2e-3 --seed 1 --threads 1 --resume
    python -m coursekit.rnn train --corpus shakespeare --cell rnn --hidden 256 --epochs 1 --threads 1
    python -m coursekit.rnn train --corpus machado --cell rnn --hidden 256 --epochs 1 --threads 1
    python -m coursekit.rnn train --corpus shakespeare --cell gru --hidden 256 --epochs 1 --threads 1
    python -m coursekit.rnn train --corpus machado --cell gru --hidden 256 --epochs 1 --threads 1

Each writes ``coursekit/data/checkpoints/{cell}_{corpus}.pt`` (weights in float16, the settings,
the vocabulary, the training curve and the command), the curve to ``coursekit/data/rnn_curves.csv``
and its row of ``coursekit/data/lm_results.csv``; the numbers in the table are those of the
float16 weights as shipped, over the whole validation and test splits read as one stream.
``python -m coursekit.rnn train-all`` runs the seven one after the other.
"""
from __future__ import annotations

import argparse
import csv
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from coursekit import corpora
from coursekit.device import seed_everything
from coursekit.schedules import warmup_cosine
from coursekit.vocab import Vocabulary

DATA = corpora.DATA
CHECKPOINTS = DATA / "checkpoints"
RESULTS_PATH = DATA / "lm_results.csv"
CURVES_PATH = DATA / "rnn_curves.csv"
CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
CELL_NAMES = {"rnn": "vanilla RNN (tanh)", "gru": "GRU", "lstm": "LSTM"}


# --------------------------------------------------------------------------- the model


class CharRNN(nn.Module):
    """A character language model: ids (B, T) -> logits (B, T, V) of the next character.

    ``cell``: "rnn" (Elman, tanh), "gru" or "lstm"; one layer of ``hidden`` units over
    ``embed``-dimensional character embeddings. ``state`` is what the recurrent layer carries
    (``h`` of shape (1, B, hidden); for the LSTM the pair ``(h, c)``), None for zeros.
    """

    def __init__(self, vocab_size: int, cell: str = "lstm", hidden: int = 512, embed: int = 64,
                 dropout: float = 0.2):
        super().__init__()
        self.cell = cell
        self.embed = nn.Embedding(vocab_size, embed)
        self.rnn = CELLS[cell](embed, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, ids: torch.Tensor, state=None):
        x = self.drop(self.embed(ids))              # (B, T, embed)
        h, state = self.rnn(x, state)                # (B, T, hidden); state carried to the next window
        return self.out(self.drop(h)), state        # (B, T, V)


def detach(state):
    """Cut the graph at a window boundary (truncated BPTT): keep the values, drop the history."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def total_nll(model: CharRNN, ids: torch.Tensor, first_input: int, rows: int = 1, burn_in: int = 512,
              chunk: int = 2048) -> float:
    """Total negative log-likelihood (nats) of ``ids`` (1-D long tensor) under ``model``.

    The stream starts with the id ``first_input`` (the newline: every split of
    ``coursekit.corpora`` starts after a line break), so every one of the ``len(ids)`` characters
    is predicted, the first from the state after that newline, and the state is carried from chunk
    to chunk. With ``rows=1`` (the default) the text is read as one stream: each character is
    predicted from everything before it, exactly. With ``rows=K`` the stream is cut into K pieces
    read side by side (K times fewer sequential steps); each piece but the first is preceded by the
    ``burn_in`` characters before it, read and not scored, so its state has seen them. Every
    character is scored exactly once either way. Returns a float.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    stream = torch.cat([torch.tensor([first_input]), ids.cpu()])     # (N + 1,): inputs, then targets
    n = len(ids)
    burn_in = 0 if rows == 1 else burn_in
    length = max(1, math.ceil((n - burn_in) / rows))                  # scored positions per row (row 0: + burn_in)
    width = burn_in + length
    padded = torch.zeros(rows * length + burn_in + 1, dtype=torch.long)
    padded[:n + 1] = stream
    starts = torch.arange(rows) * length                              # row r reads padded[r L : r L + W + L]
    pos = starts[:, None] + torch.arange(width)[None, :]              # (rows, W + L): stream positions of inputs
    x_all, y_all = padded[pos], padded[pos + 1]                       # inputs and their next characters
    scored = (pos < n) & ((torch.arange(width)[None, :] >= burn_in) | (torch.arange(rows)[:, None] == 0))
    total, state = 0.0, None
    for a in range(0, width, chunk):
        x = x_all[:, a:a + chunk].to(device)                          # (rows, t)
        logits, state = model(x, state)                               # (rows, t, V)
        nll = F.cross_entropy(logits.double().transpose(1, 2), y_all[:, a:a + chunk].to(device), reduction="none")
        total += nll[scored[:, a:a + chunk].to(device)].sum().item()
    model.train(was_training)
    return total


def encode(vocab: Vocabulary, text: str) -> torch.Tensor:
    return torch.tensor(vocab.encode(text), dtype=torch.long)


def nats_per_char(model: CharRNN, vocab: Vocabulary, text: str, rows: int = 1, burn_in: int = 512) -> float:
    """The model's nats per character of ``text`` (``total_nll`` / ``len(text)``, the unit of
    ``coursekit.corpora.nats_per_char``). ``rows=1``: exact, one stream; more rows are faster."""
    return corpora.nats_per_char(total_nll(model, encode(vocab, text), vocab["\n"], rows, burn_in), text)


# --------------------------------------------------------------------------- training


@dataclass
class TrainConfig:
    corpus: str = "shakespeare"
    cell: str = "lstm"
    hidden: int = 384
    embed: int = 64
    dropout: float = 0.1
    batch: int = 64           # contiguous streams read in parallel
    bptt: int = 64            # characters per window: gradients flow back at most this far
    epochs: float = 2.0
    lr: float = 3e-3
    min_lr: float = 1e-4
    warmup: int = 50          # steps of linear warm-up
    weight_decay: float = 0.0
    clip: float = 1.0         # gradient clipping by global norm
    evals: int = 14           # validation passes during training (the best one is kept)
    val_chars: int = 0        # validate on the first this many characters only (0: the whole split)
    seed: int = 0
    threads: int = 2


DEFAULT_LR = {"lstm": 3e-3, "gru": 3e-3, "rnn": 2e-3}


def streams(ids: torch.Tensor, batch: int, offset: int = 0) -> torch.Tensor:
    """The training ids cut into ``batch`` contiguous streams (batch, L), after dropping ``offset``
    characters at the start (a different cut each epoch, so windows do not always align)."""
    ids = ids[offset:]
    length = len(ids) // batch
    return ids[:length * batch].view(batch, length)


def learning_rate(step: int, total: int, config: TrainConfig) -> float:
    return warmup_cosine(step, config.lr, config.warmup, total, final=config.min_lr)


def train_char_model(config: TrainConfig, device: torch.device | str = "cpu", log=print,
                     max_seconds: float | None = None, init: dict | None = None):
    """Train ``CharRNN`` on ``corpora.split(config.corpus)["train"]``; returns ``(model, vocab,
    history)`` with the weights of the validation pass with the lowest loss.

    ``history``: ``{"step", "chars", "seconds", "train", "val"}`` lists, one entry per validation
    pass (``train``: mean training loss since the previous pass, nats/char), and ``"best_step"``,
    ``"seconds_total"``. ``max_seconds`` stops early (the live demo of the chapter); the
    checkpoints are trained without it, so that the number of steps, hence the result, is fixed.
    ``init``: a state dict to start from (a second stage of training, ``--resume``), else random.
    """
    torch.set_num_threads(config.threads)
    gen = seed_everything(config.seed)
    device = torch.device(device)
    parts = corpora.split(config.corpus)
    vocab = corpora.char_vocab(config.corpus)
    train_ids = encode(vocab, parts["train"])
    val_text = parts["val"][:config.val_chars] if config.val_chars else parts["val"]
    model = CharRNN(len(vocab), config.cell, config.hidden, config.embed, config.dropout).to(device)
    if init is not None:
        model.load_state_dict({k: v.float() for k, v in init.items()})
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = (len(train_ids) // config.batch - 1) // config.bptt
    total = int(round(config.epochs * steps_per_epoch))
    eval_every = max(1, total // max(1, config.evals))
    history = {"step": [], "chars": [], "seconds": [], "train": [], "val": [], "lr": []}
    best, best_state, running, n_running = math.inf, None, 0.0, 0
    start, step, state, epoch = time.perf_counter(), 0, None, 0
    model.train()
    while step < total:
        offset = 0 if epoch == 0 else int(torch.randint(0, config.bptt, (1,), generator=gen))
        data = streams(train_ids, config.batch, offset).to(device)    # (batch, L)
        state = None
        for i in range(0, data.shape[1] - 1 - config.bptt + 1, config.bptt):
            if step >= total:
                break
            x = data[:, i:i + config.bptt]                   # (B, T) inputs
            y = data[:, i + 1:i + 1 + config.bptt]           # (B, T) next characters
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, total, config)
            logits, state = model(x, state)
            state = detach(state)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            optimizer.step()
            running, n_running, step = running + loss.item(), n_running + 1, step + 1
            out_of_time = max_seconds is not None and time.perf_counter() - start > max_seconds
            if step % eval_every == 0 or step == total or out_of_time:
                val = nats_per_char(model, vocab, val_text, rows=32, burn_in=256)  # fast
                seconds = time.perf_counter() - start
                for key, value in (("step", step), ("chars", step * config.batch * config.bptt),
                                   ("seconds", seconds), ("train", running / n_running), ("val", val),
                                   ("lr", optimizer.param_groups[0]["lr"])):
                    history[key].append(value)
                running, n_running = 0.0, 0
                if val < best:
                    best, history["best_step"] = val, step
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                log(f"{config.cell} {config.corpus} step {step}/{total} ({seconds:.0f} s): "
                    f"train {history['train'][-1]:.4f}, val {val:.4f} nats/char")
            if out_of_time:
                total = step
        epoch += 1
    history["seconds_total"] = time.perf_counter() - start
    model.load_state_dict(best_state)
    model.eval()
    return model, vocab, history


# --------------------------------------------------------------------------- checkpoints


def checkpoint_path(cell: str, corpus: str) -> Path:
    return CHECKPOINTS / f"{cell}_{corpus}.pt"


def save(path: Path, model: CharRNN, vocab: Vocabulary, config: TrainConfig, history: dict, extra: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {k: v.detach().cpu().to(torch.float16) for k, v in model.state_dict().items()},
                "chars": vocab.tokens, "config": asdict(config), "history": history,
                "torch": str(torch.__version__), **extra}, path)


def load(cell: str = "lstm", corpus: str = "shakespeare", path: Path | None = None):
    """A shipped checkpoint: ``(model, vocab, info)``; the model is float32 on the CPU in eval mode
    (its weights are the float16 ones as shipped), ``info`` the rest of the file (``config``,
    ``history``, ``val``, ``test``, ``seconds``, ``command``)."""
    ckpt = torch.load(path or checkpoint_path(cell, corpus), weights_only=True)
    config = TrainConfig(**ckpt["config"])
    vocab = Vocabulary(ckpt["chars"])
    model = CharRNN(len(vocab), config.cell, config.hidden, config.embed, config.dropout)
    model.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()})
    model.eval()
    info = {k: v for k, v in ckpt.items() if k not in ("state_dict", "chars")}
    info["config"] = config
    return model, vocab, info


def round_to_half(model: nn.Module) -> nn.Module:
    """The weights as they will be shipped (float16), back in float32: evaluate what is shipped."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    return model


# --------------------------------------------------------------------------- the results table

RESULT_COLUMNS = ("corpus", "model", "params", "val_nats_per_char", "test_nats_per_char",
                  "train_seconds", "checkpoint", "command")


def read_results(path: Path = RESULTS_PATH) -> list[dict]:
    """The neural language models' rows (chapter 03's recurrent models; chapter 10 adds its GPT):
    one dict per (corpus, model) with ``params`` an int and the losses and seconds floats
    (nats per character of the chapter-01 splits, as ``coursekit.ngrams.baselines``)."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["params"] = int(row["params"])
        for key in ("val_nats_per_char", "test_nats_per_char", "train_seconds"):
            row[key] = float(row[key])
    return rows


def write_result(row: dict, path: Path = RESULTS_PATH) -> Path:
    """Add ``row`` (the keys of ``RESULT_COLUMNS``) to the table, replacing the row of the same
    corpus and model; rows stay sorted by corpus, then model."""
    rows = [r for r in read_results(path) if (r["corpus"], r["model"]) != (row["corpus"], row["model"])]
    rows.append(row)
    rows.sort(key=lambda r: (corpora.CORPORA.index(r["corpus"]) if r["corpus"] in corpora.CORPORA else 99,
                             r["model"]))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RESULT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{r[k]:.6f}" if isinstance(r[k], float) else r[k]) for k in RESULT_COLUMNS})
    return path


CURVE_COLUMNS = ("corpus", "cell", "step", "chars", "seconds", "lr", "train", "val")


def read_curves(path: Path = CURVES_PATH) -> list[dict]:
    """The training curves of the shipped checkpoints: one dict per validation pass."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key in CURVE_COLUMNS[2:]:
            row[key] = float(row[key])
    return rows


def write_curve(corpus: str, cell: str, history: dict, path: Path = CURVES_PATH) -> None:
    rows = [r for r in read_curves(path) if (r["corpus"], r["cell"]) != (corpus, cell)]
    for i in range(len(history["step"])):
        rows.append({"corpus": corpus, "cell": cell, **{k: history[k][i] for k in CURVE_COLUMNS[2:]}})
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CURVE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in CURVE_COLUMNS})


# --------------------------------------------------------------------------- generating text


@torch.no_grad()
def generate(model: CharRNN, vocab: Vocabulary, prompt: str, length: int, temperatures: Sequence[float],
             seed: int = 0) -> list[str]:
    """``length`` characters after ``prompt``, one continuation per temperature, drawn side by side.

    At each step the next character is drawn from softmax(logits / temperature) with
    ``torch.multinomial`` and a generator seeded with ``seed``; every row uses the same generator,
    so the continuations differ only through their temperatures. Returns one str per temperature.
    """
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    temps = torch.tensor([float(t) for t in temperatures])[:, None]      # (R, 1)
    ids = encode(vocab, prompt).repeat(len(temperatures), 1)              # (R, len(prompt))
    logits, state = model(ids)
    out = []
    for _ in range(length):
        probs = (logits[:, -1].double() / temps).softmax(-1)              # (R, V)
        nxt = torch.multinomial(probs, 1, generator=gen)                   # (R, 1)
        out.append(nxt)
        logits, state = model(nxt, state)
    chars = torch.cat(out, 1).tolist()                                     # (R, length)
    return ["".join(vocab.decode(row)) for row in chars]


# --------------------------------------------------------------------------- gradients through time


def scaled_to_radius(W: torch.Tensor, radius: float) -> torch.Tensor:
    """``W`` (..., n, n) rescaled so that its spectral radius (largest |eigenvalue|) is ``radius``."""
    rho = torch.linalg.eigvals(W.double()).abs().amax(-1)
    return W * (radius / rho).to(W.dtype)[..., None, None]


def rnn_hidden_gradients(radius, steps: int = 100, hidden: int = 128, inputs: int = 16,
                         seeds: int = 20, input_scale: float = 0.1, burn_in: int = 100, linear: bool = False,
                         seed: int = 0) -> dict:
    """How far back the gradient of a loss at the last step reaches, in a tanh RNN.

    For each of ``seeds`` networks: W (hidden, hidden) Gaussian, scaled to spectral radius
    ``radius``; U (hidden, inputs) Gaussian with variance ``input_scale**2 / inputs``; inputs x_t
    standard normal; h_t = tanh(W h_{t-1} + U x_t), from h = 0 run for ``burn_in`` steps first (so
    that the state has settled to its typical size; h_0 is where it got), then for t = 1..steps.
    The loss is L = u . h_T with u a random unit vector, so ||dL/dh_T|| = 1. Returns ``{"norms":
    (seeds, steps) tensor, entry [s, k] = ||dL/dh_{T-k}|| (k = 0..steps-1), "tanh_rms": (seeds,)
    the root mean square of tanh'(a) over the run, "sigma_max": (seeds,) the largest singular
    value of W}``, measured with autograd (each h_t keeps its gradient). ``linear=True`` drops the
    tanh (h_t = W h_{t-1} + U x_t): then dL/dh_{T-k} = (W^T)^k u exactly.

    ``radius`` may be a list of radii: then the same networks (the same Gaussian matrices, rescaled)
    and inputs are run for each, in one batch, and the result is ``{radius: dict as above}``.
    """
    radii = [float(r) for r in radius] if isinstance(radius, (list, tuple)) else [float(radius)]
    S = seeds
    act = (lambda a: a) if linear else torch.tanh
    g = torch.Generator().manual_seed(seed)
    W0 = torch.randn(S, hidden, hidden, generator=g, dtype=torch.float64)
    rho0 = torch.linalg.eigvals(W0).abs().amax(-1)                                   # (S,): once, then rescale
    sigma0 = torch.linalg.matrix_norm(W0, ord=2)                                     # (S,)
    scale = torch.tensor(radii, dtype=torch.float64)[None, None, :] / rho0[:, None, None]  # (S, 1, R)
    U = torch.randn(S, hidden, inputs, generator=g, dtype=torch.float64) * input_scale / math.sqrt(inputs)
    x = torch.randn(burn_in + steps, S, inputs, 1, generator=g, dtype=torch.float64)
    u = F.normalize(torch.randn(S, hidden, 1, generator=g, dtype=torch.float64), dim=1)
    # One column per radius: W_r h = (r / rho0) W0 h, so every step is one (n, n) @ (n, R) product
    # per network, and the R networks of a seed share their matrix, inputs and read-out.
    h = torch.zeros(S, hidden, len(radii), dtype=torch.float64)
    with torch.no_grad():
        for t in range(burn_in):
            h = act(scale * (W0 @ h) + U @ x[t])
    start = h.clone()
    h.requires_grad_(True)  # h_0, a leaf: the graph starts here
    states, derivs = [], []
    for t in range(burn_in, burn_in + steps):
        h = act(scale * (W0 @ h) + U @ x[t])             # (S, hidden, R)
        h.retain_grad()
        states.append(h)
        derivs.append(torch.ones_like(h) if linear else 1 - h.detach() ** 2)  # tanh'(a) = 1 - tanh(a)^2
    (u * states[-1]).sum().backward()
    norms = torch.stack([states[steps - 1 - k].grad.norm(dim=1) for k in range(steps)], 1)  # (S, steps, R)
    rms = torch.stack(derivs).pow(2).mean(dim=(0, 2)).sqrt()                                # (S, R)
    out = {r: {"norms": norms[:, :, i], "tanh_rms": rms[:, i], "sigma_max": sigma0 * scale[:, 0, i],
               "inputs": {"W": W0 * scale[:, :, i:i + 1], "U": U, "u": u,
                          "h0": start[:, :, i:i + 1], "x": x[burn_in:]}}
           for i, r in enumerate(radii)}
    return out if isinstance(radius, (list, tuple)) else out[radii[0]]


def lstm_hidden_gradients(forget_bias: float, steps: int = 100, hidden: int = 128, inputs: int = 16,
                          seeds: int = 20, input_scale: float = 1.0, burn_in: int = 100, seed: int = 0) -> dict:
    """The same measurement for an LSTM (``nn.LSTMCell``, PyTorch's initialisation, the forget
    gate's bias set to ``forget_bias``), inputs ``input_scale`` times standard normal, the same
    burn-in and loss: ``{"norms": (seeds, steps), "forget_mean": (seeds,) the mean forget gate
    over the run, "forget_log_mean": (seeds,) the mean of log f (its exp is the typical factor
    per step along the cell's additive path), "inputs": one {"cell", "x", "u", "h0", "c0"} per seed}``."""
    g = torch.Generator().manual_seed(seed)
    norms, forget, log_forget, used = [], [], [], []
    for s in range(seeds):
        torch.manual_seed(seed * 1000 + s)
        cell = nn.LSTMCell(inputs, hidden).double()
        with torch.no_grad():
            cell.bias_ih[hidden:2 * hidden] = forget_bias   # gates are ordered i, f, g, o
            cell.bias_hh[hidden:2 * hidden] = 0.0
        x = input_scale * torch.randn(burn_in + steps, 1, inputs, generator=g, dtype=torch.float64)
        u = F.normalize(torch.randn(1, hidden, generator=g, dtype=torch.float64), dim=1)
        h = c = torch.zeros(1, hidden, dtype=torch.float64)
        with torch.no_grad():
            for t in range(burn_in):
                h, c = cell(x[t], (h, c))
        x = x[burn_in:]
        used.append({"cell": cell, "x": x, "u": u, "h0": h.clone(), "c0": c.clone()})
        h.requires_grad_(True)
        states, f_values = [], []
        for t in range(steps):
            gates = F.linear(x[t], cell.weight_ih, cell.bias_ih) + F.linear(h, cell.weight_hh, cell.bias_hh)
            f_values.append(torch.sigmoid(gates[:, hidden:2 * hidden]).detach())
            h, c = cell(x[t], (h, c))
            h.retain_grad()
            states.append(h)
        (u * states[-1]).sum().backward()
        norms.append(torch.stack([states[steps - 1 - k].grad.norm() for k in range(steps)]))
        f_all = torch.stack(f_values)
        forget.append(f_all.mean())
        log_forget.append(f_all.log().mean())
    return {"norms": torch.stack(norms), "forget_mean": torch.stack(forget), "forget_log_mean": torch.stack(log_forget),
            "inputs": used}


def geometric_mean(norms: torch.Tensor) -> torch.Tensor:
    """exp(mean over seeds of log norm): the typical norm, (seeds, steps) -> (steps,); the average
    a log axis shows (an arithmetic mean is dominated by the largest seed)."""
    return norms.clamp_min(1e-300).log().mean(0).exp()


def fitted_rate(curve: torch.Tensor, start: int = 10) -> float:
    """The per-step factor r of a geometric decay or growth, curve[k] ~ C r^k: exp of the
    least-squares slope of log curve[k] against k, for k >= ``start`` (skipping the transient)."""
    k = torch.arange(start, len(curve), dtype=torch.float64)
    y = curve[start:].double().log()
    slope = ((k - k.mean()) * (y - y.mean())).sum() / ((k - k.mean()) ** 2).sum()
    return math.exp(slope.item())


@torch.no_grad()
def lstm_gates(model: CharRNN, vocab: Vocabulary, text: str) -> dict:
    """The gates of a ``CharRNN`` LSTM reading ``text`` (after a newline): ``{"input", "forget",
    "output", "candidate"}`` each (len(text), hidden), recomputed from the layer's weights and its
    hidden states (PyTorch orders the four blocks of ``weight_ih_l0`` as i, f, g, o), and
    ``"hidden"``, the layer's own h_t."""
    rnn = model.rnn
    ids = torch.cat([torch.tensor([vocab["\n"]]), encode(vocab, text)])[:-1][None]   # (1, T): the inputs
    x = model.embed(ids)                                            # (1, T, embed)
    h, _ = rnn(x)                                                   # (1, T, hidden)
    h_prev = torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], 1)  # h_{t-1}
    pre = x @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h_prev @ rnn.weight_hh_l0.T + rnn.bias_hh_l0
    i, f, cand, o = pre[0].chunk(4, dim=-1)
    return {"input": torch.sigmoid(i), "forget": torch.sigmoid(f), "output": torch.sigmoid(o),
            "candidate": torch.tanh(cand), "hidden": h[0]}


def input_gradient_norms(model: CharRNN, vocab: Vocabulary, text: str, windows: int = 16,
                         length: int = 200) -> torch.Tensor:
    """How much a trained model's last prediction depends on each earlier input: for ``windows``
    windows of ``length`` characters taken at equal intervals from ``text``, the norm of the
    gradient of the loss at the window's last character with respect to the input embedding
    k steps earlier, ||dL_T/dx_{T-k}||. Returns (windows, length) with column k for distance k
    (through the recurrence only; every window starts from a zero state, dropout off). Computed
    in float64 on a copy of the model: the gradients of a vanilla RNN fall below float32's range."""
    import copy

    model = copy.deepcopy(model).double().eval()
    ids = encode(vocab, text)
    starts = torch.linspace(0, len(ids) - length - 2, windows).long()
    batch = torch.stack([ids[s:s + length + 1] for s in starts.tolist()])   # (windows, length + 1)
    x = model.embed(batch[:, :-1]).detach().requires_grad_(True)             # (windows, length, embed)
    h, _ = model.rnn(x)                                                     # (windows, length, hidden)
    loss = F.cross_entropy(model.out(h[:, -1]), batch[:, -1], reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad.norm(dim=-1).flip(1)                                        # column k: input T - k


# --------------------------------------------------------------------------- one unit: the iterated map


def fixed_points(w: float, b: float, lo: float = -1.0, hi: float = 1.0, grid: int = 4001) -> list[tuple[float, bool]]:
    """The fixed points x* = tanh(w x* + b) of the one-unit map, with their stability.

    Every fixed point lies in (-1, 1). Roots of tanh(w x + b) - x are bracketed on a grid and
    refined by bisection; a root is stable when |f'(x*)| = |w (1 - x*^2)| < 1. Returns a list of
    (x*, stable) sorted by x*.
    """
    xs = torch.linspace(lo, hi, grid, dtype=torch.float64)
    gx = torch.tanh(w * xs + b) - xs
    points = []
    for i in torch.nonzero(gx[:-1] * gx[1:] <= 0).flatten().tolist():
        a, c = xs[i].item(), xs[i + 1].item()
        fa = math.tanh(w * a + b) - a
        if fa == 0:
            root = a
        else:
            for _ in range(60):
                m = 0.5 * (a + c)
                fm = math.tanh(w * m + b) - m
                if (fm < 0) == (fa < 0):
                    a, fa = m, fm
                else:
                    c = m
            root = 0.5 * (a + c)
        if not points or abs(root - points[-1][0]) > 1e-6:
            points.append((root, abs(w * (1 - root ** 2)) < 1))
    return points


def iterate_map(w: float, b: float, x0: float, steps: int) -> list[float]:
    """x_0, x_1 = tanh(w x_0 + b), ..., x_steps: the one-unit RNN without input."""
    xs = [x0]
    for _ in range(steps):
        xs.append(math.tanh(w * xs[-1] + b))
    return xs


def one_unit_loss(w: torch.Tensor, b: torch.Tensor, h0: float = 0.5, steps: int = 50,
                  target: float = 0.7) -> torch.Tensor:
    """L(w, b) = (h_T - target)^2 with h_t = tanh(w h_{t-1} + b), h_0 = ``h0``, T = ``steps``:
    the loss surface of a one-unit RNN (after Pascanu, Mikolov & Bengio 2013, Fig. 6), for
    tensors ``w`` and ``b`` of one shape (a grid, or scalars with requires_grad)."""
    h = torch.full_like(w, h0)
    for _ in range(steps):
        h = torch.tanh(w * h + b)
    return (h - target) ** 2


def descent(start: tuple[float, float], lr: float, steps: int, clip: float | None = None, **loss_kwargs):
    """Gradient descent on ``one_unit_loss`` from (w, b) = ``start``: ``steps`` steps of size
    ``lr``, the gradient rescaled to norm ``clip`` when it is longer (clipping by norm), or not.
    Returns the list of (w, b, loss, gradient norm) visited."""
    w, b = (torch.tensor(v, dtype=torch.float64) for v in start)
    path = []
    for _ in range(steps + 1):
        w.requires_grad_(True)
        b.requires_grad_(True)
        loss = one_unit_loss(w, b, **loss_kwargs)
        gw, gb = torch.autograd.grad(loss, (w, b))
        norm = math.hypot(gw.item(), gb.item())
        path.append((w.item(), b.item(), loss.item(), norm))
        scale = 1.0 if clip is None or norm <= clip else clip / norm
        w, b = (w - lr * scale * gw).detach(), (b - lr * scale * gb).detach()
    return path[:steps + 1]


# --------------------------------------------------------------------------- time per step


def time_per_step(cell: str, hidden: int, lengths: Sequence[int], batch: int = 16, embed: int = 64,
                  repeats: int = 3) -> dict:
    """Seconds for a forward and backward pass of one recurrent layer (``nn.RNN``/``nn.GRU``/
    ``nn.LSTM``) over (batch, T, embed) inputs, for each T in ``lengths`` (median of ``repeats``,
    ``coursekit.measure.time_call``), and the same for the layer's input projection alone
    (one matrix product over all T positions at once: the part that does not wait for the
    previous step). Returns ``{"recurrent": [s, ...], "parallel": [s, ...]}``."""
    from coursekit.measure import time_call

    torch.manual_seed(0)
    layer = CELLS[cell](embed, hidden, batch_first=True)
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    projection = nn.Linear(hidden, gates * hidden)   # same arithmetic per position as W_hh h
    out = {"recurrent": [], "parallel": []}
    for T in lengths:
        x = torch.randn(batch, T, embed)
        hs = torch.randn(batch, T, hidden)
        out["recurrent"].append(time_call(lambda: layer(x)[0].sum().backward(), repeats))
        out["parallel"].append(time_call(lambda: projection(hs).sum().backward(), repeats))
    return out


# --------------------------------------------------------------------------- command line

TRAIN_ALL = (  # (arguments of ``train``): the commands of the module docstring, in order
    "--corpus shakespeare --cell lstm --hidden 512 --epochs 4 --threads 1",
    "--corpus machado --cell lstm --hidden 512 --epochs 4 --threads 1",
    "--corpus machado --cell lstm --hidden 512 --epochs 5 --lr 2e-3 --seed 1 --threads 1 --resume",
    "--corpus shakespeare --cell rnn --hidden 256 --epochs 1 --threads 1",
    "--corpus machado --cell rnn --hidden 256 --epochs 1 --threads 1",
    "--corpus shakespeare --cell gru --hidden 256 --epochs 1 --threads 1",
    "--corpus machado --cell gru --hidden 256 --epochs 1 --threads 1",
)


def train_and_ship(config: TrainConfig, command: str, resume: bool = False) -> dict:
    """Train, round to float16, evaluate on the whole validation and test splits, and write the
    checkpoint, its curve and its row. ``resume``: start from the shipped checkpoint of the same
    cell and corpus and train it further (a new warm-up and cosine schedule); the checkpoint then
    records both stages: its curve and time continue the first stage's, its command is both
    commands joined with ``&&``."""
    previous = None
    if resume:
        previous = torch.load(checkpoint_path(config.cell, config.corpus), weights_only=True)
    model, vocab, history = train_char_model(config, "cpu", init=previous and previous["state_dict"])
    if previous is not None:
        before = previous["history"]
        for key in ("step", "chars", "seconds"):
            history[key] = [v + before[key][-1] for v in history[key]]
        for key in ("step", "chars", "seconds", "train", "val", "lr"):
            history[key] = before[key] + history[key]
        history["best_step"] = history["best_step"] + before["step"][-1]
        history["seconds_total"] += before["seconds_total"]
        history["stages"] = before.get("stages", [previous["config"]]) + [asdict(config)]
        command = previous["command"] + " && " + command
    round_to_half(model)
    parts = corpora.split(config.corpus)
    val = nats_per_char(model, vocab, parts["val"])
    test = nats_per_char(model, vocab, parts["test"])
    head = nats_per_char(model, vocab, parts["test"][:5000])
    path = checkpoint_path(config.cell, config.corpus)
    extra = {"val": val, "test": test, "test_head_5000": head, "seconds": history["seconds_total"],
             "command": command}
    save(path, model, vocab, config, history, extra)
    write_curve(config.corpus, config.cell, history)
    row = {"corpus": config.corpus, "model": f"{config.cell} {config.hidden}", "params": n_parameters(model),
           "val_nats_per_char": val, "test_nats_per_char": test, "train_seconds": history["seconds_total"],
           "checkpoint": str(path.relative_to(DATA.parent.parent)), "command": command}
    write_result(row)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.2f} MiB): val {val:.4f}, test {test:.4f} nats/char, "
          f"{history['seconds_total']:.0f} s", flush=True)
    return row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.rnn", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what")
    t = sub.add_parser("train", help="train one model and ship its checkpoint and table row")
    t.add_argument("--corpus", choices=corpora.CORPORA, default="shakespeare")
    t.add_argument("--cell", choices=tuple(CELLS), default="lstm")
    t.add_argument("--hidden", type=int, default=TrainConfig.hidden)
    t.add_argument("--epochs", type=float, default=TrainConfig.epochs)
    t.add_argument("--lr", type=float, default=None, help="peak learning rate (default by cell)")
    t.add_argument("--dropout", type=float, default=TrainConfig.dropout)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=TrainConfig.threads)
    t.add_argument("--resume", action="store_true",
                   help="train the shipped checkpoint of this cell and corpus further (a second stage)")
    sub.add_parser("train-all", help="train the shipped checkpoints, one after the other")
    args = parser.parse_args(argv)
    if args.what == "train":
        config = TrainConfig(corpus=args.corpus, cell=args.cell, hidden=args.hidden, epochs=args.epochs,
                             lr=args.lr if args.lr is not None else DEFAULT_LR[args.cell],
                             dropout=args.dropout, seed=args.seed, threads=args.threads)
        command = "python -m coursekit.rnn " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
        train_and_ship(config, command, resume=args.resume)
        return 0
    if args.what == "train-all":
        for arguments in TRAIN_ALL:
            main(["train", *arguments.split()])
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
