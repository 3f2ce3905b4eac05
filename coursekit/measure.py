"""Small, generic tools to measure what a piece of PyTorch code costs: time and activation memory.

The chapters use them to put numbers on claims such as "attention is quadratic in the sequence length"
or "a KV cache makes generation faster". Both helpers take a zero-argument callable, so whatever is being
measured (a layer's forward and backward pass, a generation loop) is written once, at the call site::

    x = torch.randn(8, 512, 64)
    layer = torch.nn.RNN(64, 64, batch_first=True)
    seconds = time_call(lambda: layer(x)[0].sum().backward(), repeats=5)
    nbytes = saved_activation_bytes(lambda: layer(x)[0].sum(), exclude=layer.parameters())
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Iterable

import torch


def synchronize() -> None:
    # CUDA kernels run asynchronously: without this, a timer measures only the launch.
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def time_call(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall-clock time of ``fn()``, in seconds.

    ``fn`` is called ``warmup`` times first (not timed: caches, allocator, kernel selection), then
    ``repeats`` times, each timed on its own. The median is robust to the odd slow run caused by the
    rest of the machine. CUDA work is synchronised before and after each call, so the time includes
    the kernels, not just their launch.
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def saved_activation_bytes(fn: Callable[[], Any], exclude: Iterable[torch.Tensor] = ()) -> int:
    """Bytes of memory that autograd keeps alive for the backward pass while ``fn()`` runs.

    This is the memory a training step holds between its forward and its backward pass, beyond the
    parameters: for a layer with input (B, T, C) it grows with B·T·C for a recurrent layer and with
    B·T·T for attention that materialises its weight matrix. ``fn`` should run a forward pass with
    autograd on; its result is discarded, which frees the graph.

    A saved tensor keeps its whole storage alive, so storages are counted, each once, however many
    operations save it or views of it (``q`` and ``k`` chunked from one projection count as that
    projection's output). Storages shared with ``exclude`` (typically ``module.parameters()``: weights
    saved to compute input gradients are not activations) are left out. Returns a number of bytes.
    """
    def storage_key(t: torch.Tensor):
        try:
            return (t.device, t.untyped_storage().data_ptr())
        except (RuntimeError, NotImplementedError):  # tensors without a plain storage
            return ("id", id(t))

    excluded = {storage_key(t) for t in exclude}
    seen: set = set()
    total = 0

    def pack(t: torch.Tensor):
        nonlocal total
        key = storage_key(t)
        if key not in excluded and key not in seen:
            seen.add(key)
            try:
                total += t.untyped_storage().nbytes()
            except (RuntimeError, NotImplementedError):
                total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total
