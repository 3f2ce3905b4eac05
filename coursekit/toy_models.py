"""Small, fully specified models that graded functions take as input (a decoder's step function, a
language model to sample from), built from given weights by the grader and by the notebooks alike.

A graded ``beam_search(step_fn, ...)`` or ``generate(model, ...)`` is checked alone: the hidden
cases name one of these with its weights (``{"__build__": "coursekit.toy_models:TableStepFunction",
"kwargs": {...}}``), and the reference and the student's code both receive the same object.
"""
from __future__ import annotations

import torch


class TableStepFunction:
    """A first-order Markov "decoder": the next token's log-probabilities depend on the last token only.

    log_probs: (V, V) float tensor, row i = log P(next token | last token i); rows are normalised here.
    Called with the token ids so far, (B, T) long, it returns (B, V) log-probabilities of the next token.
    """

    def __init__(self, log_probs: torch.Tensor):
        self.log_probs = torch.log_softmax(log_probs, dim=-1)  # (V, V)

    def __call__(self, prefixes: torch.Tensor) -> torch.Tensor:
        return self.log_probs[prefixes[:, -1]]  # (B, V)

    @property
    def vocab_size(self) -> int:
        return self.log_probs.size(-1)


class TinyRNN(torch.nn.Module):
    """A one-layer Elman RNN whose loss reads its last hidden state: the model that chapter 03's
    ``gradient_norms_through_time`` takes as input.

        h_0 = h0 (zeros by default),   h_t = φ(W_ih x_t + W_hh h_{t-1} + b),   L = Σ_b readout · h_T^(b)

    with φ = tanh (``nonlinearity="tanh"``) or the identity (``"linear"``, where ∂L/∂h_t is exactly
    (W_hhᵀ)^(T-t) readout). The loss sums over the batch, so example b's gradients are its own.

    weight_ih: (H, I), weight_hh: (H, H), bias: (H,), readout: (H,), h0: (H,) or None; float
    tensors on one device. The weights are parameters: every state made by ``step`` requires grad.

    What code that takes the model may use: ``initial_state(batch_size)`` -> h_0, (B, H);
    ``step(x_t, h)`` -> the next state, (B, H), for x_t (B, I) and h (B, H); ``loss(h_last)`` -> a
    0-d tensor; and the sizes ``input_size`` and ``hidden_size``.
    """

    def __init__(self, weight_ih: torch.Tensor, weight_hh: torch.Tensor, bias: torch.Tensor,
                 readout: torch.Tensor, h0: torch.Tensor | None = None, nonlinearity: str = "tanh"):
        super().__init__()
        if nonlinearity not in ("tanh", "linear"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'linear', not {nonlinearity!r}")
        self.weight_ih = torch.nn.Parameter(weight_ih.clone())
        self.weight_hh = torch.nn.Parameter(weight_hh.clone())
        self.bias = torch.nn.Parameter(bias.clone())
        self.register_buffer("readout", readout.clone())
        self.register_buffer("h0", torch.zeros_like(bias) if h0 is None else h0.clone())
        self.nonlinearity = nonlinearity

    @property
    def input_size(self) -> int:
        return self.weight_ih.size(1)

    @property
    def hidden_size(self) -> int:
        return self.weight_hh.size(0)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        return self.h0.expand(batch_size, -1).clone()  # (B, H)

    def step(self, x_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        a = x_t @ self.weight_ih.T + h @ self.weight_hh.T + self.bias  # (B, H)
        return torch.tanh(a) if self.nonlinearity == "tanh" else a

    def loss(self, h_last: torch.Tensor) -> torch.Tensor:
        return (h_last @ self.readout).sum()

    def forward(self, *args, **kwargs):
        # No forward on purpose: the gradient with respect to a stack of states made inside a call
        # would not be the gradient with respect to the states that the steps pass on.
        raise TypeError("TinyRNN runs one step at a time: use initial_state, step and loss")
