"""Hidden cases for 03_rnns: seeded inputs the student never sees, edge cases included.

Every input varies on its own: W_ih is not W_hh's shape (I != H), the two biases differ, h_0 is not
zero, batches of one and of many, and sequences long enough (and weights large enough to saturate
the tanh) for a mistake in the recurrence to show.
"""
import math

import torch

from autograder.checks import BUILD, PARAMETER

# --------------------------------------------------------------------------- rnn_forward


def _rnn_weights(g, i, h, scale=1.0):
    """W_ih (H, I), W_hh (H, H), b_ih, b_hh (H,), drawn independently, PyTorch's 1/sqrt(H) scale."""
    s = scale / math.sqrt(h)
    return [torch.randn(h, i, generator=g) * s, torch.randn(h, h, generator=g) * s,
            torch.randn(h, generator=g) * s, torch.randn(h, generator=g) * s]


def rnn_forward(g):
    def case(**kw):
        return dict(returns=["outputs", "h_last"], **kw)

    for batch, t, i, h in ((3, 5, 4, 6), (1, 7, 6, 3), (5, 4, 2, 8)):
        yield case(id=f"B={batch}, T={t}, I={i}, H={h}, h0 given", group="sequences",
                   args=[torch.randn(batch, t, i, generator=g), *_rnn_weights(g, i, h, 2.0),
                         torch.randn(batch, h, generator=g)])
    yield case(id="h0 given as a keyword (B=2, T=6, I=3, H=4)", group="sequences",
               args=[torch.randn(2, 6, 3, generator=g), *_rnn_weights(g, 3, 4, 2.0)],
               kwargs=dict(h0=torch.randn(2, 4, generator=g)))
    yield case(id="h0 left out: zeros (B=4, T=5, I=5, H=5)", group="sequences",
               args=[torch.randn(4, 5, 5, generator=g), *_rnn_weights(g, 5, 5, 2.0)])
    yield case(id="h0=None given explicitly (B=2, T=3, I=7, H=2)", group="sequences",
               args=[torch.randn(2, 3, 7, generator=g), *_rnn_weights(g, 7, 2, 2.0)], kwargs=dict(h0=None))

    yield case(id="a single step (T=1), B=3, I=2, H=4", group="edge cases",
               args=[torch.randn(3, 1, 2, generator=g), *_rnn_weights(g, 2, 4, 2.0), torch.randn(3, 4, generator=g)])
    yield case(id="an empty sequence (T=0) with h0: no outputs, h_last = h0", group="edge cases",
               args=[torch.zeros(2, 0, 3), *_rnn_weights(g, 3, 5), torch.randn(2, 5, generator=g)])
    yield case(id="an empty sequence (T=0) without h0: h_last = zeros", group="edge cases",
               args=[torch.zeros(3, 0, 4), *_rnn_weights(g, 4, 2)])
    yield case(id="one input and one hidden unit (I=H=1), B=1, T=8", group="edge cases",
               args=[torch.randn(1, 8, 1, generator=g), *_rnn_weights(g, 1, 1, 1.5), torch.randn(1, 1, generator=g)])

    yield case(id="a long sequence (T=60), B=2, I=3, H=6", group="long sequences and saturation",
               args=[torch.randn(2, 60, 3, generator=g), *_rnn_weights(g, 3, 6, 1.5), torch.randn(2, 6, generator=g)])
    yield case(id="large weights: saturated tanh units (T=20, B=3, I=4, H=5)", group="long sequences and saturation",
               args=[torch.randn(3, 20, 4, generator=g), *_rnn_weights(g, 4, 5, 8.0), torch.randn(3, 5, generator=g)])


# --------------------------------------------------------------------------- lstm_cell


def _lstm_args(g, batch, i, h, scale=1.0, state_scale=1.0):
    s = scale / math.sqrt(h)
    state = (torch.randn(batch, h, generator=g) * state_scale, torch.randn(batch, h, generator=g) * state_scale * 2)
    return [torch.randn(batch, i, generator=g), state,
            torch.randn(4 * h, i, generator=g) * s, torch.randn(4 * h, h, generator=g) * s,
            torch.randn(4 * h, generator=g) * s, torch.randn(4 * h, generator=g) * s]


def lstm_cell(g):
    def case(**kw):
        return dict(returns=["h_next", "c_next"], **kw)

    for batch, i, h in ((3, 4, 5), (1, 7, 2), (6, 3, 8), (2, 16, 16)):
        yield case(id=f"B={batch}, I={i}, H={h}", group="steps", args=_lstm_args(g, batch, i, h, 2.0))

    args = _lstm_args(g, 4, 3, 5, 2.0)
    args[1] = (torch.zeros(4, 5), torch.zeros(4, 5))
    yield case(id="the zero state (the first step of a sequence), B=4, I=3, H=5", group="edge cases", args=args)
    yield case(id="one hidden unit (H=1), B=5, I=3", group="edge cases", args=_lstm_args(g, 5, 3, 1, 2.0))
    yield case(id="one input feature (I=1), B=1, H=6", group="edge cases", args=_lstm_args(g, 1, 1, 6, 2.0))

    yield case(id="large weights: saturated gates (B=3, I=4, H=6)", group="saturation",
               args=_lstm_args(g, 3, 4, 6, 12.0))
    yield case(id="a large memory |c| ~ 8: tanh(c) saturates (B=4, I=5, H=3)", group="saturation",
               args=_lstm_args(g, 4, 5, 3, 2.0, state_scale=4.0))


# --------------------------------------------------------------------------- clip_grad_norm


def _parameter(g, *shape, grad_scale=1.0, no_grad=False):
    return {PARAMETER: torch.randn(*shape, generator=g),
            "grad": None if no_grad else torch.randn(*shape, generator=g) * grad_scale}


def clip_grad_norm(g):
    def case(**kw):
        return dict(observe=["grads", "return"], grad=False, **kw)

    yield case(id="one (4, 3) parameter, norm about 7 above max_norm=1.0", group="clipping",
               args=[[_parameter(g, 4, 3, grad_scale=2.0)], 1.0])
    yield case(id="three parameters of shapes (5, 4), (4,), (2, 3, 2): one joint norm, max_norm=2.5",
               group="clipping",
               args=[[_parameter(g, 5, 4, grad_scale=3.0), _parameter(g, 4, grad_scale=0.5),
                      _parameter(g, 2, 3, 2, grad_scale=2.0)], 2.5])
    yield case(id="below the threshold: the gradients are unchanged (norm about 4, max_norm=50.0)", group="clipping",
               args=[[_parameter(g, 3, 3), _parameter(g, 7)], 50.0])
    yield case(id="each parameter below max_norm, together above it (4 x norm 0.9, max_norm=1.0)", group="clipping",
               args=[[_parameter(g, 9, grad_scale=0.3) for _ in range(4)], 1.0])
    yield case(id="max_norm given as an int (3)", group="clipping",
               args=[[_parameter(g, 6, 2, grad_scale=2.0), _parameter(g, 2)], 3])
    yield case(id="a tuple of parameters, max_norm=0.5", group="clipping",
               args=[(_parameter(g, 2, 5), _parameter(g, 5, 1)), 0.5])
    yield case(id="a larger model: 5 parameters, 1300 entries, norm about 180, max_norm=5.0", group="clipping",
               args=[[_parameter(g, 20, 30, grad_scale=5.0), _parameter(g, 30, grad_scale=5.0),
                      _parameter(g, 30, 20, grad_scale=5.0), _parameter(g, 20, grad_scale=5.0),
                      _parameter(g, 4, 25, grad_scale=5.0)], 5.0])

    yield case(id="a parameter whose .grad is None, among others: skipped, and still None", group="no gradient",
               args=[[_parameter(g, 4, 4, grad_scale=2.0), _parameter(g, 3, no_grad=True),
                      _parameter(g, 6, grad_scale=2.0)], 1.5])
    yield case(id="the first parameter has no gradient, below the threshold", group="no gradient",
               args=[[_parameter(g, 5, no_grad=True), _parameter(g, 2, 2)], 10.0])
    yield case(id="no parameter has a gradient: 0.0, and nothing changes", group="no gradient",
               args=[[_parameter(g, 3, no_grad=True), _parameter(g, 2, 2, no_grad=True)], 1.0])

    inf_grad = _parameter(g, 6, grad_scale=2.0)
    inf_grad["grad"][2] = math.inf
    # what the gradients become is not graded (the docstring leaves it open): the returned norm is
    yield dict(id="a gradient that holds inf: the total norm is inf", group="non-finite norm",
               observe=["return"], grad=False, args=[[_parameter(g, 3, 2), inf_grad], 1.0])
    inf_grad = _parameter(g, 2, 2)
    inf_grad["grad"][1, 0] = -math.inf
    yield dict(id="a gradient that holds -inf, below the threshold otherwise", group="non-finite norm",
               observe=["return"], grad=False, args=[[inf_grad, _parameter(g, 4, no_grad=True)], 100.0])
    nan_grad = _parameter(g, 5, grad_scale=0.5)
    nan_grad["grad"][3] = math.nan
    yield dict(id="a gradient that holds nan (a loss that overflowed): the total norm is nan", group="non-finite norm",
               observe=["return"], grad=False, args=[[_parameter(g, 4), nan_grad], 1.0])


# --------------------------------------------------------------------------- gradient_norms_through_time


def _tiny_rnn(g, i, h, scale_ih=1.0, scale_hh=1.0, h0=True, nonlinearity="tanh", radius=None):
    """A TinyRNN, built alike on both sides. ``radius``: W_hh scaled to that spectral radius."""
    weight_hh = torch.randn(h, h, generator=g, dtype=torch.float64)
    if radius is None:
        weight_hh = weight_hh * scale_hh / math.sqrt(h)
    else:
        weight_hh = weight_hh * radius / torch.linalg.eigvals(weight_hh).abs().max()
    kwargs = dict(weight_ih=torch.randn(h, i, generator=g) * scale_ih / math.sqrt(i), weight_hh=weight_hh.float(),
                  bias=torch.randn(h, generator=g) * 0.5, readout=torch.randn(h, generator=g),
                  nonlinearity=nonlinearity)
    if h0:
        kwargs["h0"] = torch.randn(h, generator=g) * 0.5
    return {BUILD: "coursekit.toy_models:TinyRNN", "kwargs": kwargs}


def gradient_norms_through_time(g):
    for batch, t, i, h, scale in ((2, 6, 3, 4, 1.0), (1, 9, 5, 3, 1.5), (4, 5, 2, 6, 1.0), (3, 12, 4, 4, 2.0)):
        yield dict(id=f"tanh RNN: B={batch}, T={t}, I={i}, H={h}, |W_hh| x{scale}", group="tanh RNN",
                   args=[_tiny_rnn(g, i, h, scale_hh=scale), torch.randn(batch, t, i, generator=g)])
    yield dict(id="tanh RNN starting from h0 = 0: B=3, T=7, I=3, H=5", group="tanh RNN",
               args=[_tiny_rnn(g, 3, 5, scale_hh=1.5, h0=False), torch.randn(3, 7, 3, generator=g)])

    yield dict(id="linear RNN, spectral radius 0.7: vanishing (B=2, T=15, I=3, H=5)", group="linear RNN",
               args=[_tiny_rnn(g, 3, 5, nonlinearity="linear", radius=0.7), torch.randn(2, 15, 3, generator=g)])
    yield dict(id="linear RNN, spectral radius 1.3: exploding (B=3, T=12, I=2, H=4)", group="linear RNN",
               args=[_tiny_rnn(g, 2, 4, nonlinearity="linear", radius=1.3), torch.randn(3, 12, 2, generator=g)])
    yield dict(id="linear RNN, spectral radius 1.0 (B=2, T=10, I=4, H=6)", group="linear RNN",
               args=[_tiny_rnn(g, 4, 6, nonlinearity="linear", radius=1.0), torch.randn(2, 10, 4, generator=g)])

    yield dict(id="a long sequence: tanh RNN, T=40, B=2, I=3, H=8", group="long sequences and saturation",
               args=[_tiny_rnn(g, 3, 8, scale_hh=1.2), torch.randn(2, 40, 3, generator=g)])
    yield dict(id="large weights: saturated tanh units (T=15, B=3, I=4, H=5)", group="long sequences and saturation",
               args=[_tiny_rnn(g, 4, 5, scale_ih=3.0, scale_hh=3.0), torch.randn(3, 15, 4, generator=g)])

    yield dict(id="a single step (T=1): the norm of the readout, B=3, I=2, H=4", group="edge cases",
               args=[_tiny_rnn(g, 2, 4), torch.randn(3, 1, 2, generator=g)])
    yield dict(id="one input and one hidden unit (I=H=1), B=1, T=8", group="edge cases",
               args=[_tiny_rnn(g, 1, 1, scale_hh=1.5), torch.randn(1, 8, 1, generator=g)])
    yield dict(id="two steps (T=2), B=5, I=6, H=3", group="edge cases",
               args=[_tiny_rnn(g, 6, 3, scale_hh=1.5), torch.randn(5, 2, 6, generator=g)])


CASES = {
    "rnn_forward": rnn_forward,
    "lstm_cell": lstm_cell,
    "clip_grad_norm": clip_grad_norm,
    "gradient_norms_through_time": gradient_norms_through_time,
}
