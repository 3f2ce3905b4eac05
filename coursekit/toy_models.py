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
