"""Chapter 09's encoder-only model: a tiny BERT (Devlin et al. 2019) pre-trained with masked language modelling on
the course's English text, then fine-tuned to tell positive from negative movie-review sentences.

The model is chapter 08's encoder with BERT's input and heads::

    x = LayerNorm(E_token[ids] + E_position[0..T-1] + E_segment[segments])           (B, T, d)
    h = EncoderBlock(... EncoderBlock(x))      post-norm, as in BERT                   (B, T, d)
    masked LM:       P(token at i) = softmax(LayerNorm(GELU(W h_i)) E_tokenᵀ + b)    the output tied to the input
    classification:  P(label) = softmax(W_c tanh(W_p h_[CLS]))                      BERT's pooler and its head

Its tokenizer is a WordPiece vocabulary of ``VOCAB_SIZE`` pieces, lower-cased, as BERT's (``[CLS]``, ``[SEP]``,
``[MASK]``, ``##`` for a piece inside a word), trained on the pre-training text. The pre-training text is the
training split of every English source the course has: the polarity sentences (without their labels),
the World English Bible verses of chapter 04 and tiny Shakespeare; about 1.3 million words, against BERT's
3.3 billion.

Trained once, on the CPU, by::

    python -m coursekit.bert tokenizer
    python -m coursekit.bert pretrain --threads 1
    python -m coursekit.bert finetune --threads 1

which write ``data/bert/wordpiece.json``, ``data/checkpoints/bert_tiny.pt`` (float16 weights, the settings, the
training curve with the masked-LM accuracy) and ``data/checkpoints/bert_tiny_polarity.pt``.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from coursekit import corpora, polarity
from coursekit import translation as tr
from coursekit.device import seed_everything
from coursekit.schedules import warmup_cosine
from coursekit.transformer import EncoderBlock

DATA = Path(__file__).resolve().parent / "data"
TOKENIZER_FILE = DATA / "bert" / "wordpiece.json"
CHECKPOINTS = DATA / "checkpoints"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD, UNK, CLS, SEP, MASK = range(len(SPECIAL_TOKENS))
VOCAB_SIZE = 8000
MAX_TOKENS = 64  # per pre-training sequence and per classified sentence, [CLS] and [SEP] included
IGNORE = -100  # the label of a position the masked-LM loss skips (PyTorch's ignore_index)


# ------------------------------------------------------------------------------------------- text

def pretraining_texts() -> list[str]:
    """The training split of the course's English: polarity sentences, Bible verses (English side),
    Shakespeare lines grouped by speech (blank-line separated). Never a validation or test sentence."""
    texts, _ = polarity.split("train")
    verses = [p.tgt for p in tr.split("train")]
    speeches = [" ".join(block.split()) for block in corpora.split("shakespeare")["train"].split("\n\n")]
    return list(texts) + verses + [s for s in speeches if s]


def train_tokenizer(texts: Sequence[str] | None = None, vocab_size: int = VOCAB_SIZE):
    """A lower-cased WordPiece tokenizer (Hugging Face ``tokenizers``) trained on ``texts``
    (``pretraining_texts()`` by default), with BERT's special tokens and its [CLS] a [SEP] b [SEP] template."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS))
    tok.train_from_iterator(pretraining_texts() if texts is None else texts, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", CLS), ("[SEP]", SEP)])
    return tok


@lru_cache(maxsize=None)
def tokenizer():
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(TOKENIZER_FILE))


def encode(texts: Sequence[str], max_len: int = MAX_TOKENS) -> tuple[torch.Tensor, torch.Tensor]:
    """Sentences -> ids (B, T) long, [CLS] pieces [SEP] [PAD]..., cut to ``max_len`` (the [SEP] kept), and the
    special-token mask (B, T) bool, True at [CLS], [SEP] and [PAD] (positions masked LM never masks)."""
    rows = [e.ids if len(e.ids) <= max_len else e.ids[:max_len - 1] + [SEP]
            for e in tokenizer().encode_batch(list(texts))]
    ids = pad_rows(rows)
    return ids, ids <= MASK


# ------------------------------------------------------------------------------------------ model

class BertEmbeddings(nn.Module):
    """Token + learned position + segment embeddings, summed, layer-normed (BERT's epsilon), dropped out.
    ids (B, T) long, segments (B, T) long in {0, 1} or None (all 0) -> (B, T, d)."""

    def __init__(self, vocab_size: int, d_model: int, max_positions: int = 512, segments: int = 2,
                 dropout: float = 0.1, eps: float = 1e-12):
        super().__init__()
        self.token = nn.Embedding(vocab_size, d_model, padding_idx=PAD)
        self.position = nn.Embedding(max_positions, d_model)
        self.segment = nn.Embedding(segments, d_model)
        self.norm = nn.LayerNorm(d_model, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, ids: torch.Tensor, segments: torch.Tensor | None = None) -> torch.Tensor:
        positions = torch.arange(ids.size(1), device=ids.device)
        segments = torch.zeros_like(ids) if segments is None else segments
        return self.dropout(self.norm(self.token(ids) + self.position(positions) + self.segment(segments)))


class TinyBert(nn.Module):
    """An encoder-only Transformer with BERT's embeddings and masked-LM head (tied to the token embedding)."""

    def __init__(self, vocab_size: int = VOCAB_SIZE, d_model: int = 128, heads: int = 4, layers: int = 4,
                 d_ff: int = 512, dropout: float = 0.1, max_positions: int = MAX_TOKENS):
        super().__init__()
        self.embeddings = BertEmbeddings(vocab_size, d_model, max_positions, dropout=dropout)
        self.encoder = nn.ModuleList(EncoderBlock(d_model, heads, d_ff, dropout, norm_first=False)
                                     for _ in range(layers))
        self.mlm_transform = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU(), nn.LayerNorm(d_model))
        self.mlm_bias = nn.Parameter(torch.zeros(vocab_size))
        self.apply(_bert_init)

    def forward(self, ids: torch.Tensor, segments: torch.Tensor | None = None) -> torch.Tensor:
        """ids (B, T) -> the contextual vectors (B, T, d); [PAD] positions are never attended to."""
        mask = (ids != PAD)[:, None, None, :]  # (B, 1, 1, T)
        h = self.embeddings(ids, segments)
        for block in self.encoder:
            h = block(h, mask)
        return h

    def mlm_logits(self, h: torch.Tensor) -> torch.Tensor:
        """(..., d) -> (..., V): the masked-LM scores of every vocabulary piece."""
        return self.mlm_transform(h) @ self.embeddings.token.weight.T + self.mlm_bias


def _bert_init(module: nn.Module) -> None:
    # BERT's initialisation: normal(0, 0.02) weights, zero biases; layer norms start as the identity.
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


class ClassificationHead(nn.Module):
    """BERT's sentence classifier: the [CLS] vector through the pooler (a dense layer with tanh), dropout, and a
    linear layer to the labels. h (B, T, d) -> logits (B, labels)."""

    def __init__(self, d_model: int, labels: int = 2, dropout: float = 0.1):
        super().__init__()
        self.pooler = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(d_model, labels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(torch.tanh(self.pooler(h[:, 0]))))


class SentenceClassifier(nn.Module):
    """A pre-trained encoder with a classification head on top; both are trained when fine-tuning."""

    def __init__(self, encoder: TinyBert, labels: int = 2, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.head = ClassificationHead(encoder.embeddings.token.embedding_dim, labels, dropout)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(ids))


def parameter_count(vocab_size: int, d_model: int, layers: int, d_ff: int, max_positions: int = 512,
                    segments: int = 2, pooler: bool = True) -> dict[str, int]:
    """The parameters of a BERT encoder, part by part, from its configuration (weights and biases; BERT's
    feed-forward width is 4 d): embeddings V d + P d + S d and their layer norm 2d; per layer, the four attention
    projections 4(d² + d), the feed-forward 2 d d_ff + d_ff + d and two layer norms 4d; the pooler d² + d."""
    per_layer = 4 * (d_model * d_model + d_model) + 2 * d_model * d_ff + d_ff + d_model + 4 * d_model
    parts = {"embeddings": (vocab_size + max_positions + segments) * d_model + 2 * d_model,
             "encoder layers": layers * per_layer,
             "pooler": d_model * d_model + d_model if pooler else 0}
    return {**parts, "total": sum(parts.values())}


@torch.no_grad()
def fill_mask(model: TinyBert, ids: torch.Tensor, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """(pieces, probabilities), each (T, k): the ``k`` most probable pieces at every position of ``ids`` (T,)."""
    model.eval()
    probabilities = F.softmax(model.mlm_logits(model(ids[None])[0]), -1)  # (T, V)
    top = probabilities.topk(k, dim=-1)
    return top.indices, top.values


# ---------------------------------------------------------------------------------------- masking

def mask_with(ids: torch.Tensor, special: torch.Tensor, u: torch.Tensor, rate: float = 0.15,
              vocab_size: int = VOCAB_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking, with its randomness given: ``u`` (B, T, 3) uniform in [0, 1). Position (b, t) is chosen
    when ``u[b, t, 0] < rate`` and it is not special; a chosen position becomes [MASK] when ``u[b, t, 1] < 0.8``,
    the ordinary piece ``5 + floor(u[b, t, 2] * (vocab_size - 5))`` when ``0.8 <= u[b, t, 1] < 0.9``, and stays
    itself otherwise. Returns (inputs, labels), both (B, T): labels hold the original piece at chosen positions
    and ``IGNORE`` elsewhere, so that the loss is computed where a guess is asked."""
    chosen = (u[..., 0] < rate) & ~special
    inputs = ids.clone()
    inputs[chosen & (u[..., 1] < 0.8)] = MASK
    random = chosen & (u[..., 1] >= 0.8) & (u[..., 1] < 0.9)
    pieces = len(SPECIAL_TOKENS) + (u[..., 2] * (vocab_size - len(SPECIAL_TOKENS))).long()
    inputs[random] = pieces[random]
    return inputs, torch.where(chosen, ids, torch.full_like(ids, IGNORE))


def mask_for_mlm(ids: torch.Tensor, special: torch.Tensor, generator: torch.Generator, rate: float = 0.15,
                 vocab_size: int = VOCAB_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """``mask_with`` on uniforms drawn from ``generator``: each non-special position is chosen with probability
    ``rate``, and a chosen one becomes [MASK] 80% of the time, a random piece 10%, and stays itself 10%."""
    u = torch.rand(ids.shape + (3,), generator=generator, device=ids.device)  # choose, what to do, which piece
    return mask_with(ids, special, u, rate, vocab_size)


def pretraining_sequences(texts: Sequence[str], max_len: int = MAX_TOKENS) -> list[list[int]]:
    """The texts' pieces run together and cut into [CLS] ... [SEP] sequences of ``max_len`` tokens (the last
    one shorter): no piece of text is wasted on padding."""
    stream = [i for e in tokenizer().encode_batch(list(texts), add_special_tokens=False) for i in e.ids]
    body = max_len - 2
    return [[CLS] + stream[i:i + body] + [SEP] for i in range(0, len(stream), body)]


def pad_rows(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    """Id lists -> (B, T) long, right-padded with [PAD]; T the longest row."""
    out = torch.full((len(rows), max(map(len, rows))), PAD, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, :len(row)] = torch.tensor(row)
    return out


# --------------------------------------------------------------------------------------- training

@dataclass
class PretrainConfig:
    d_model: int = 128
    heads: int = 4
    layers: int = 4
    d_ff: int = 512
    dropout: float = 0.1
    batch_size: int = 64
    lr: float = 2e-3
    warmup: int = 400
    max_steps: int = 5000
    eval_every: int = 250
    seed: int = 0
    command: str = ""

    def model(self) -> TinyBert:
        return TinyBert(tokenizer().get_vocab_size(), self.d_model, self.heads, self.layers, self.d_ff,
                        self.dropout)


@torch.no_grad()
def mlm_accuracy(model: TinyBert, sequences: Sequence[Sequence[int]], seed: int = 1, batch_size: int = 128,
                 device="cpu") -> tuple[float, float, float]:
    """(mean masked-LM loss in nats, accuracy of the top guess, accuracy at the [MASK] positions alone) over the
    positions masking chose, with a fixed masking (``seed``), so that every evaluation asks the same questions.
    The first accuracy counts the 10% of chosen positions left unchanged, which copying the input answers; the
    second is the honest one: the piece was hidden."""
    model.eval()
    g = torch.Generator(device=device).manual_seed(seed)
    total, correct, count, hidden_correct, hidden = 0.0, 0, 0, 0, 0
    for start in range(0, len(sequences), batch_size):
        ids = pad_rows(sequences[start:start + batch_size]).to(device)
        inputs, labels = mask_for_mlm(ids, ids <= MASK, g, vocab_size=model.mlm_bias.numel())
        asked = labels != IGNORE
        logits = model.mlm_logits(model(inputs)[asked])  # (N asked, V)
        total += float(F.cross_entropy(logits, labels[asked], reduction="sum"))
        right = logits.argmax(-1) == labels[asked]
        was_masked = inputs[asked] == MASK
        correct, count = correct + int(right.sum()), count + int(asked.sum())
        hidden_correct, hidden = hidden_correct + int(right[was_masked].sum()), hidden + int(was_masked.sum())
    return total / count, correct / count, hidden_correct / hidden


def validation_sequences() -> list[list[int]]:
    """Held-out text for the masked-LM curve: the polarity validation sentences and Shakespeare's validation
    split (never trained on)."""
    texts, _ = polarity.split("val")
    return pretraining_sequences(list(texts) + [corpora.split("shakespeare")["val"]])


def pretrain(config: PretrainConfig, device="cpu", log=print) -> tuple[TinyBert, dict]:
    """Masked-LM pre-training with AdamW, warm-up and cosine decay; each epoch reshuffles the sequences and
    draws new masks. Returns the model and its history (step, seconds, lr, train loss, val loss, val accuracy)."""
    g = seed_everything(config.seed)
    model = config.model().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    sequences, val = pretraining_sequences(pretraining_texts()), validation_sequences()
    history = {k: [] for k in ("step", "seconds", "lr", "train", "val_loss", "val_accuracy", "val_mask_accuracy")}
    mask_g = torch.Generator(device=device).manual_seed(config.seed)
    start, running, n = time.perf_counter(), 0.0, 0
    batches = _shuffled_batches(sequences, config.batch_size, g)
    for step in range(1, config.max_steps + 1):
        model.train()
        ids = next(batches).to(device)
        inputs, labels = mask_for_mlm(ids, ids <= MASK, mask_g, vocab_size=model.mlm_bias.numel())
        lr = warmup_cosine(step - 1, config.lr, config.warmup, config.max_steps, final=0.1 * config.lr)
        for group in opt.param_groups:
            group["lr"] = lr
        asked = labels != IGNORE
        logits = model.mlm_logits(model(inputs)[asked])  # (N asked, V): scoring only where a guess is asked
        loss = F.cross_entropy(logits, labels[asked])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running, n = running + loss.item(), n + 1
        if step % config.eval_every == 0 or step == config.max_steps:
            val_loss, val_acc, val_mask_acc = mlm_accuracy(model, val, device=device)
            for key, value in zip(history, (step, time.perf_counter() - start, lr, running / n, val_loss, val_acc,
                                            val_mask_acc)):
                history[key].append(value)
            log(f"step {step:5d}  {history['seconds'][-1]:6.0f} s  train {running / n:.3f}  "
                f"val {val_loss:.3f}  accuracy {val_acc:.3f}  at [MASK] {val_mask_acc:.3f}")
            running, n = 0.0, 0
    return model.eval(), history


def _shuffled_batches(rows: Sequence[Sequence[int]], batch_size: int, g: torch.Generator) -> Iterator[torch.Tensor]:
    while True:
        order = torch.randperm(len(rows), generator=g).tolist()
        for start in range(0, len(order) - batch_size + 1, batch_size):
            yield pad_rows([rows[i] for i in order[start:start + batch_size]])


def save(path: Path, model: nn.Module, config, history: dict) -> None:
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state": state, "config": asdict(config), "history": history}, path)


def load_pretrained(path: Path | None = None, device="cpu") -> tuple[TinyBert, dict]:
    ckpt = torch.load(path or CHECKPOINTS / "bert_tiny.pt", map_location="cpu", weights_only=True)
    model = PretrainConfig(**ckpt["config"]).model()
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["state"].items()})
    return model.to(device).eval(), ckpt


def load_finetuned(path: Path | None = None, device="cpu") -> tuple[SentenceClassifier, dict]:
    """The shipped fine-tuned classifier (``bert_tiny_polarity.pt``) in eval mode, and the rest of its file
    (``config``, ``history``)."""
    ckpt = torch.load(path or CHECKPOINTS / "bert_tiny_polarity.pt", map_location="cpu", weights_only=True)
    model = SentenceClassifier(PretrainConfig().model(), dropout=ckpt["config"]["dropout"])
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["state"].items()})
    return model.to(device).eval(), ckpt


@dataclass
class FinetuneConfig:
    epochs: int = 4
    batch_size: int = 32
    lr: float = 1e-4
    warmup_fraction: float = 0.1
    dropout: float = 0.1
    seed: int = 0
    pretrained: bool = True  # False: the same architecture from random weights, the control
    command: str = ""


@torch.no_grad()
def predict(model: SentenceClassifier, texts: Sequence[str], batch_size: int = 256, device="cpu") -> list[int]:
    model.eval()
    out: list[int] = []
    for start in range(0, len(texts), batch_size):
        ids, _ = encode(texts[start:start + batch_size])
        out += model(ids.to(device)).argmax(-1).tolist()
    return out


def finetune(config: FinetuneConfig, device="cpu", log=print) -> tuple[SentenceClassifier, dict]:
    """Fine-tune the whole tiny BERT with its classification head on the polarity training split (AdamW, warm-up
    then cosine decay); the weights of the best validation accuracy, checked after every epoch, are kept."""
    g = seed_everything(config.seed)
    encoder = load_pretrained(device=device)[0] if config.pretrained else PretrainConfig().model()
    model = SentenceClassifier(encoder, dropout=config.dropout).to(device)
    texts = polarity.split("train")[0]
    val_texts, val_labels = polarity.split("val")
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)

    def logits_of(picked):
        return model(encode([texts[j] for j in picked])[0].to(device))

    def val_accuracy():
        return polarity.accuracy_interval(predict(model, val_texts, device=device), val_labels)[0]

    history = polarity.fine_tune_by_epochs(model, opt, logits_of, config.epochs, config.batch_size,
                                           config.warmup_fraction, val_accuracy, g, log)
    return model.eval(), history


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import shlex
    import sys

    parser = argparse.ArgumentParser(prog="python -m coursekit.bert", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("tokenizer", "pretrain", "finetune"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--max-steps", type=int, default=PretrainConfig.max_steps)
    parser.add_argument("--epochs", type=int, default=FinetuneConfig.epochs)
    parser.add_argument("--lr", type=float, default=FinetuneConfig.lr, help="finetune: the peak learning rate")
    parser.add_argument("--from-scratch", action="store_true",
                        help="finetune: the same model from random weights (the control); no checkpoint is kept")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    command = "python -m coursekit.bert " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.command == "tokenizer":
        TOKENIZER_FILE.parent.mkdir(parents=True, exist_ok=True)
        train_tokenizer().save(str(TOKENIZER_FILE))
    elif args.command == "pretrain":
        config = PretrainConfig(max_steps=args.max_steps, command=command)
        model, history = pretrain(config, device)
        save(CHECKPOINTS / "bert_tiny.pt", model, config, history)
    else:
        config = FinetuneConfig(epochs=args.epochs, lr=args.lr, pretrained=not args.from_scratch, command=command)
        model, history = finetune(config, device)
        if config.pretrained:
            save(CHECKPOINTS / "bert_tiny_polarity.pt", model, config, history)
        val, test = (predict(model, polarity.split(name)[0], device=device) for name in ("val", "test"))
        name, what = (("bert-tiny", "tiny BERT, pre-trained (masked LM, course text), fine-tuned") if config.pretrained
                      else ("bert-tiny-scratch", "the same tiny BERT trained from random weights (no pre-training)"))
        polarity.write_result(name, what, val, test, history["seconds"][-1],
                              sum(p.numel() for p in model.parameters()), command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
