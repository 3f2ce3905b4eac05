"""Chapter 11's Vision Transformer (Dosovitskiy et al. 2020) and the small CNN it is measured against, on a
10,000-image subset of Fashion-MNIST.

The ViT reads an image as a sequence: cut it into non-overlapping ``patch`` x ``patch`` squares, flatten each
and map it linearly to ``d_model`` numbers, put a learned class token in front, add learned position
embeddings, and run chapter 08's encoder blocks over the sequence; the class token's final vector, layer-normed,
is classified by one linear layer::

    x (B, C, H, W) -> patches (B, N, C p²) -> x_p E + pos[1:]            N = HW / p²   (B, N, d)
    z = [cls + pos[0]; x_p E + pos[1:]]                                                (B, N + 1, d)
    z = encoder blocks(z)   (pre-norm, as chapter 08)                                  (B, N + 1, d)
    logits = head(LN(z[:, 0]))                                                         (B, classes)

The two models are trained by the same loop (AdamW, warm-up then cosine decay, random shifts and horizontal
flips, a fixed number of optimiser steps whatever the number of images, so that the data-size curve compares
data at equal compute; each model's steps and learning rate are in ``RECIPES``), and scored once, at the end, on
the 2,000 test images: no model is picked on the test set. The shipped checkpoints and the rows of
``data/vit/results.csv`` are made by::

    python -m coursekit.vit train --model vit --threads 1
    python -m coursekit.vit train --model cnn --threads 1

and the data-size curve (``data/vit/data_size.csv``; 1,000, 2,000 and 5,000 training images, the 10,000 being the
checkpoints' rows) by::

    python -m coursekit.vit curve --model vit --threads 1
    python -m coursekit.vit curve --model cnn --threads 1

(``--sizes 1000 2000`` trains some of the sizes only, so that two runs can share the work side by side.)
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from coursekit import tables
from coursekit.device import seed_everything
from coursekit.polarity import accuracy_interval
from coursekit.rnn import n_parameters  # noqa: F401  (vit.n_parameters, for the page and the tests)
from coursekit.schedules import warmup_cosine
from coursekit.transformer import EncoderBlock, keeping_weights

DATA = Path(__file__).resolve().parent / "data"
IMAGES = DATA / "images" / "fashion_mnist_small.npz"
CHECKPOINTS = DATA / "checkpoints"
RESULTS = DATA / "vit"
RESULTS_PATH = RESULTS / "results.csv"
CURVE_PATH = RESULTS / "data_size.csv"
CLASSES = ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
           "ankle boot")
CURVE_SIZES = (1000, 2000, 5000)
# The training images' mean and standard deviation (0.286 and 0.353 on the full Fashion-MNIST):
MEAN, STD = 0.2860, 0.3530


# ----------------------------------------------------------------------------------------- data

@lru_cache(maxsize=None)
def _arrays() -> dict[str, np.ndarray]:
    with np.load(IMAGES) as f:
        return {k: f[k] for k in f.files}


def images(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``"train"`` (10,000) or ``"test"`` (2,000) images, (N, 1, 28, 28) float32 standardised with MEAN and
    STD, and their labels (N,) long, indices into CLASSES."""
    a = _arrays()
    x = torch.from_numpy(a[f"x_{split}"]).float().div(255).sub(MEAN).div(STD)
    return x[:, None], torch.from_numpy(a[f"y_{split}"]).long()


def stratified_subset(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Indices of n training images, n / 10 of each class, drawn with ``numpy.random.default_rng(seed)``; a
    smaller subset is the start of a larger one's per-class draw, so the data-size curve adds images."""
    rng = np.random.default_rng(seed)
    per_class = n // len(CLASSES)
    picked = [rng.permutation(np.flatnonzero(labels.numpy() == c))[:per_class] for c in range(len(CLASSES))]
    return torch.from_numpy(np.sort(np.concatenate(picked)))


def augment(x: torch.Tensor, g: torch.Generator, shift: int = 2) -> torch.Tensor:
    """Random shifts of up to ``shift`` pixels each way (the image padded with its background) and random
    horizontal flips, one draw per image from ``g``. x (B, C, H, W) -> (B, C, H, W)."""
    B, _, H, W = x.shape
    background = x.amin()
    padded = F.pad(x, (shift,) * 4, value=float(background))
    dy, dx = (torch.randint(0, 2 * shift + 1, (B,), generator=g) for _ in range(2))
    rows = (dy[:, None] + torch.arange(H))[:, None, :, None].expand(B, x.size(1), H, W + 2 * shift)
    shifted = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(W))[:, None, None, :].expand(B, x.size(1), H, W)
    shifted = shifted.gather(3, cols)
    flip = torch.rand(B, generator=g) < 0.5
    return torch.where(flip[:, None, None, None], shifted.flip(-1), shifted)


# ----------------------------------------------------------------------------------------- the models

def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """x (B, C, H, W) -> (B, N, C * patch²): the non-overlapping patches in reading order (row by row), each
    flattened channel by channel, then row by row within the patch. H and W must be multiples of ``patch``."""
    B, C, H, W = x.shape
    if H % patch or W % patch:
        raise ValueError(f"a {H}x{W} image does not cut into {patch}x{patch} patches")
    x = x.view(B, C, H // patch, patch, W // patch, patch)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(B, (H // patch) * (W // patch), C * patch * patch)


class PatchEmbedding(nn.Module):
    """Each patch mapped linearly to d_model numbers: x (B, C, H, W) -> (B, N, d_model). The same map as a
    Conv2d(C, d_model, kernel_size=patch, stride=patch) whose weight is ``proj.weight`` reshaped to
    (d_model, C, patch, patch)."""

    def __init__(self, in_channels: int, patch: int, d_model: int):
        super().__init__()
        self.patch = patch
        self.proj = nn.Linear(in_channels * patch * patch, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(patchify(x, self.patch))


@dataclass
class ViTConfig:
    image_size: int = 28
    in_channels: int = 1
    patch: int = 7
    d_model: int = 96
    heads: int = 4
    layers: int = 4
    d_ff: int = 384
    classes: int = 10
    dropout: float = 0.0

    @property
    def patches(self) -> int:
        return (self.image_size // self.patch) ** 2


class ViT(nn.Module):
    """x (B, C, H, W) -> logits (B, classes). ``blocks`` are chapter 08's pre-norm encoder blocks; set their
    attention's ``keep_weights`` to see the weights (see ``attention_weights``)."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.config = config
        self.embed = PatchEmbedding(config.in_channels, config.patch, config.d_model)
        self.cls = nn.Parameter(torch.zeros(1, 1, config.d_model))
        self.pos = nn.Parameter(torch.randn(1, config.patches + 1, config.d_model) * 0.02)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(EncoderBlock(config.d_model, config.heads, config.d_ff, config.dropout)
                                    for _ in range(config.layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = self.embed(x)                                         # (B, N, d)
        cls = self.cls.expand(x.size(0), -1, -1)                        # (B, 1, d)
        z = self.dropout(torch.cat([cls, patches], 1) + self.pos)       # (B, N + 1, d)
        for block in self.blocks:
            z = block(z)
        return self.head(self.norm(z[:, 0]))                            # (B, classes)


@torch.no_grad()
def attention_weights(model: ViT, x: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's attention weights for images x: a list of ``layers`` tensors (B, heads, N + 1, N + 1)."""
    with keeping_weights(block.attention for block in model.blocks) as modules:
        model(x)
        return [m.weights for m in modules]


def attention_rollout(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020): each layer's weights averaged over heads, the residual
    connection added as half an identity, rows renormalised, and the layers multiplied from the first up.
    weights: per layer (B, heads, T, T) -> (B, T, T); row i says how much of token i's final vector comes from
    each input token. Row 0 of the class token, over positions 1…N, is the map of an image's patches."""
    rollout = None
    for w in weights:
        a = w.mean(1)                                                    # (B, T, T)
        a = 0.5 * a + 0.5 * torch.eye(a.size(-1), dtype=a.dtype, device=a.device)
        a = a / a.sum(-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout
    return rollout


class SmallCNN(nn.Module):
    """The baseline: two 3x3 convolutions of ``width`` channels, max-pool, two of 2 x ``width``, max-pool, then a
    hidden layer and the classifier. x (B, 1, 28, 28) -> logits (B, classes)."""

    def __init__(self, width: int = 32, hidden: int = 128, classes: int = 10, dropout: float = 0.1):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2))                                             # (B, 2w, 7, 7)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * w * 49, hidden), nn.ReLU(),
                                        nn.Dropout(dropout), nn.Linear(hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# ----------------------------------------------------------------------------------------- training

# Each model's budget of optimiser steps and its peak learning rate. Both get about 16 minutes of one CPU thread:
# a ViT step takes 0.12 s and a CNN step 0.21 s, so the ViT makes more of them, and the two are compared at equal
# compute. The ViT's recipe (patch 7, d_ff 384, no dropout, this learning rate) was chosen on 1,000 training
# images held out from the other 9,000, never on the test set.
RECIPES = {"vit": {"steps": 8000, "lr": 2e-3}, "cnn": {"steps": 4300, "lr": 1e-3}}


@dataclass
class TrainConfig:
    model: str = "vit"            # "vit" or "cnn"
    train_size: int = 10_000
    steps: int | None = None      # None: the model's budget in RECIPES
    batch_size: int = 128
    lr: float | None = None       # None: the model's learning rate in RECIPES
    warmup: int = 200
    weight_decay: float = 0.05
    seed: int = 0
    threads: int = 1
    command: str = ""

    def __post_init__(self):
        recipe = RECIPES[self.model]
        self.steps = recipe["steps"] if self.steps is None else self.steps
        self.lr = recipe["lr"] if self.lr is None else self.lr

    def build(self) -> nn.Module:
        return ViT(ViTConfig()) if self.model == "vit" else SmallCNN()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch: int = 500, device="cpu") -> torch.Tensor:
    """The predicted classes (N,) of images x (N, C, H, W), in eval mode."""
    model.eval()
    return torch.cat([model(x[i:i + batch].to(device)).argmax(-1).cpu() for i in range(0, len(x), batch)])


def train(config: TrainConfig, device="cpu", log=print, max_seconds: float | None = None,
          model: nn.Module | None = None) -> tuple[nn.Module, dict]:
    """Train ``config.model`` (or the ``model`` given, e.g. a smaller ViT) on ``config.train_size`` stratified
    training images for ``config.steps`` steps (sooner if ``max_seconds`` runs out). Returns the model in eval mode and its history: ``step``, ``seconds``
    and ``train`` (the mean loss since the last entry), every tenth of the run."""
    g = seed_everything(config.seed)
    torch.set_num_threads(config.threads)
    x_all, y_all = images("train")
    keep = stratified_subset(y_all, config.train_size)
    x, y = x_all[keep], y_all[keep]
    model = (model if model is not None else config.build()).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history = {k: [] for k in ("step", "seconds", "train")}
    start, running, counted = time.perf_counter(), 0.0, 0
    every = max(1, config.steps // 10)
    order, cursor = torch.randperm(len(x), generator=g), 0
    model.train()
    for step in range(1, config.steps + 1):
        if cursor + config.batch_size > len(order):
            order, cursor = torch.randperm(len(x), generator=g), 0
        picked = order[cursor:cursor + config.batch_size]
        cursor += config.batch_size
        for group in opt.param_groups:
            group["lr"] = warmup_cosine(step - 1, config.lr, config.warmup, config.steps, final=0.05 * config.lr)
        loss = F.cross_entropy(model(augment(x[picked], g).to(device)), y[picked].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running, counted = running + loss.item(), counted + 1
        out_of_time = max_seconds is not None and time.perf_counter() - start > max_seconds
        if step % every == 0 or step == config.steps or out_of_time:
            for key, value in zip(history, (step, time.perf_counter() - start, running / counted)):
                history[key].append(value)
            log(f"step {step:5d}  {history['seconds'][-1]:6.0f} s  train {running / counted:.3f}")
            running, counted = 0.0, 0
        if out_of_time:
            break
    return model.eval(), history


def test_accuracy(model: nn.Module, device="cpu") -> tuple[torch.Tensor, tuple[float, float, float]]:
    """The test predictions (2,000,) and (accuracy, low, high) in %, with a 95% Wilson interval."""
    x, y = images("test")
    predictions = predict(model, x, device=device)
    return predictions, accuracy_interval(predictions.tolist(), y.tolist())


def checkpoint_path(model: str) -> Path:
    return CHECKPOINTS / f"{model}_fashion.pt"


def train_and_record(config: TrainConfig, device="cpu") -> dict:
    """Train, score on the test set and write the row (``results.csv`` with the checkpoint for the full training
    set; ``data_size.csv`` for a subset)."""
    model, history = train(config, device)
    predictions, (accuracy, low, high) = test_accuracy(model, device)
    row = {"model": config.model, "train_size": config.train_size, "params": n_parameters(model),
           "steps": config.steps, "seconds": round(history["seconds"][-1], 1), "test_accuracy": accuracy,
           "low": low, "high": high, "command": config.command}
    if config.train_size == len(images("train")[1]):
        model = model.cpu().half().float()  # scored as shipped: in float16
        predictions, (accuracy, low, high) = test_accuracy(model)
        row.update(test_accuracy=accuracy, low=low, high=high)
        path = checkpoint_path(config.model)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": {k: v.half() for k, v in model.state_dict().items()}, "config": asdict(config),
                    "history": history, "test_predictions": predictions.to(torch.uint8), "row": row,
                    "torch": str(torch.__version__)}, path)
        tables.upsert_row(RESULTS_PATH, row, ("model",))
    else:
        tables.upsert_row(CURVE_PATH, row, ("model", "train_size"))
    print(row, flush=True)
    return row


def load(model: str = "vit") -> tuple[nn.Module, dict]:
    """A shipped checkpoint: (the model in eval mode with its float16 weights as float32; the rest of the file:
    ``config`` (a TrainConfig), ``history``, ``test_predictions``, ``row``)."""
    ckpt = torch.load(checkpoint_path(model), map_location="cpu", weights_only=True)
    config = TrainConfig(**ckpt["config"])
    net = config.build()
    net.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()})
    info = {k: v for k, v in ckpt.items() if k != "state_dict"}
    info["config"] = config
    return net.eval(), info


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.vit", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("train", "curve"))
    parser.add_argument("--model", choices=("vit", "cnn"), default="vit")
    parser.add_argument("--steps", type=int, default=None, help="default: the model's budget in RECIPES")
    # Only the curve's sizes: a curve run on all 10,000 images would overwrite the shipped checkpoint.
    parser.add_argument("--sizes", type=int, nargs="+", choices=CURVE_SIZES, default=CURVE_SIZES,
                        help="the curve's training-set sizes")
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    args = parser.parse_args(argv)
    command = "python -m coursekit.vit " + shlex.join(sys.argv[1:] if argv is None else argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.what == "train":
        train_and_record(TrainConfig(model=args.model, steps=args.steps, threads=args.threads, command=command),
                         device)
        return 0
    for size in args.sizes:
        train_and_record(TrainConfig(model=args.model, train_size=size, steps=args.steps, threads=args.threads,
                                     command=command), device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
