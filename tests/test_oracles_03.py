"""Chapter 03's reference solution against independent oracles: PyTorch's nn.RNN, nn.LSTMCell and
clip_grad_norm_, the closed form of a linear RNN's gradients, the product of Jacobians written out
from the weights, and finite differences."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from autograder.reference import load_reference
from coursekit.toy_models import TinyRNN

F64 = torch.float64


@pytest.fixture(scope="module")
def ref():
    return load_reference("03_rnns")


# --------------------------------------------------------------------------- rnn_forward


@pytest.mark.parametrize("batch, t, i, h", [(1, 1, 1, 1), (3, 7, 4, 6), (2, 30, 8, 3)])
@pytest.mark.parametrize("with_h0", [False, True])
def test_rnn_forward_matches_torch(ref, batch, t, i, h, with_h0):
    torch.manual_seed(batch * t + i)
    rnn = nn.RNN(i, h, batch_first=True, dtype=F64)
    x = torch.randn(batch, t, i, dtype=F64)
    h0 = torch.randn(batch, h, dtype=F64) if with_h0 else None
    with torch.no_grad():
        outputs, h_last = ref["rnn_forward"](x, rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0,
                                             rnn.bias_hh_l0, h0)
        want, h_n = rnn(x, None if h0 is None else h0[None])
    torch.testing.assert_close(outputs, want)
    torch.testing.assert_close(h_last, h_n[0])


def test_rnn_forward_of_an_empty_sequence_is_its_initial_state(ref):
    rnn = nn.RNN(3, 5, batch_first=True)
    h0 = torch.randn(2, 5)
    weights = (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)
    outputs, h_last = ref["rnn_forward"](torch.zeros(2, 0, 3), *weights, h0=h0)
    assert outputs.shape == (2, 0, 5) and torch.equal(h_last, h0)
    outputs, h_last = ref["rnn_forward"](torch.zeros(2, 0, 3), *weights)
    assert outputs.shape == (2, 0, 5) and torch.equal(h_last, torch.zeros(2, 5))


# --------------------------------------------------------------------------- lstm_cell


@pytest.mark.parametrize("batch, i, h", [(1, 1, 1), (4, 6, 5), (3, 10, 20)])
@pytest.mark.parametrize("weight_scale", [1.0, 10.0])
def test_lstm_cell_matches_torch(ref, batch, i, h, weight_scale):
    torch.manual_seed(batch + i + h)
    cell = nn.LSTMCell(i, h, dtype=F64)
    with torch.no_grad():
        for p in cell.parameters():
            p.mul_(weight_scale)
    x, h0, c0 = torch.randn(batch, i, dtype=F64), torch.randn(batch, h, dtype=F64), 3 * torch.randn(batch, h, dtype=F64)
    with torch.no_grad():
        h1, c1 = ref["lstm_cell"](x, (h0, c0), cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
        want_h, want_c = cell(x, (h0, c0))
    torch.testing.assert_close(h1, want_h)
    torch.testing.assert_close(c1, want_c)


def test_lstm_cell_run_over_a_sequence_matches_nn_lstm(ref):
    torch.manual_seed(5)
    lstm = nn.LSTM(4, 6, batch_first=True, dtype=F64)
    x = torch.randn(2, 9, 4, dtype=F64)
    h, c = torch.randn(2, 6, dtype=F64), torch.randn(2, 6, dtype=F64)
    with torch.no_grad():
        want, (h_n, c_n) = lstm(x, (h[None], c[None]))
        outputs = []
        for t in range(9):
            h, c = ref["lstm_cell"](x[:, t], (h, c), lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0,
                                    lstm.bias_hh_l0)
            outputs.append(h)
    torch.testing.assert_close(torch.stack(outputs, 1), want)
    torch.testing.assert_close(c, c_n[0])


# --------------------------------------------------------------------------- clip_grad_norm


def twins(grads):
    """Two lists of parameters with the same gradients (None: no gradient)."""
    made = []
    for _ in range(2):
        params = []
        for g in grads:
            p = nn.Parameter(torch.zeros(g.shape if g is not None else (3,), dtype=F64))
            p.grad = None if g is None else g.clone()
            params.append(p)
        made.append(params)
    return made


@pytest.mark.parametrize("scale, max_norm", [(0.1, 1.0), (3.0, 1.0), (10.0, 2), (1.0, 1e-3)])
def test_clip_grad_norm_matches_torch(ref, scale, max_norm):
    g = torch.Generator().manual_seed(int(scale * 10))
    grads = [torch.randn(5, 4, generator=g, dtype=F64) * scale, None, torch.randn(7, generator=g, dtype=F64) * scale,
             torch.randn(2, 3, 2, generator=g, dtype=F64) * scale]
    mine, theirs = twins(grads)
    total = ref["clip_grad_norm"](mine, max_norm)
    want = torch.nn.utils.clip_grad_norm_(theirs, max_norm)
    assert total == pytest.approx(want.item(), rel=1e-12)
    for p, q in zip(mine, theirs):
        if q.grad is None:
            assert p.grad is None
        else:
            torch.testing.assert_close(p.grad, q.grad)


def test_clip_grad_norm_by_the_definition(ref):
    """The norm of all the gradients concatenated, with plain Python numbers."""
    g = torch.Generator().manual_seed(7)
    grads = [torch.randn(3, 3, generator=g, dtype=F64) * 4, torch.randn(5, generator=g, dtype=F64) * 4]
    mine, _ = twins(grads)
    total = ref["clip_grad_norm"](mine, 1.5)
    flat = [v for grad in grads for v in grad.flatten().tolist()]
    norm = math.sqrt(sum(v * v for v in flat))
    assert total == pytest.approx(norm, rel=1e-12)
    clipped = [v for p in mine for v in p.grad.flatten().tolist()]
    assert math.sqrt(sum(v * v for v in clipped)) == pytest.approx(1.5, rel=1e-5)
    for before, after in zip(flat, clipped):  # the direction is kept: one positive factor for all
        assert after == pytest.approx(before * 1.5 / (norm + 1e-6), rel=1e-12)


def test_clip_grad_norm_edge_cases_match_torch(ref):
    mine, theirs = twins([None, None])
    assert ref["clip_grad_norm"](mine, 1.0) == torch.nn.utils.clip_grad_norm_(theirs, 1.0).item() == 0.0
    assert all(p.grad is None for p in mine)
    grads = [torch.tensor([1.0, math.inf], dtype=F64), torch.ones(3, dtype=F64)]
    mine, theirs = twins(grads)
    assert ref["clip_grad_norm"](mine, 1.0) == torch.nn.utils.clip_grad_norm_(theirs, 1.0).item() == math.inf
    for p, q in zip(mine, theirs):  # the gradients as PyTorch leaves them (zeros and NaNs)
        torch.testing.assert_close(p.grad, q.grad, equal_nan=True)


# --------------------------------------------------------------------------- gradient_norms_through_time


def tiny_rnn(g, i, h, scale_hh=1.0, nonlinearity="tanh", h0=True):
    return TinyRNN(torch.randn(h, i, generator=g, dtype=F64), torch.randn(h, h, generator=g, dtype=F64) * scale_hh,
                   torch.randn(h, generator=g, dtype=F64), torch.randn(h, generator=g, dtype=F64),
                   h0=torch.randn(h, generator=g, dtype=F64) if h0 else None, nonlinearity=nonlinearity)


@pytest.mark.parametrize("radius", [0.5, 0.9, 1.0, 1.3])
def test_gradient_norms_of_a_linear_rnn_have_the_closed_form(ref, radius):
    """∂L/∂h_t = (W_hhᵀ)^(T-t) readout: vanishing below spectral radius 1, exploding above."""
    g = torch.Generator().manual_seed(int(radius * 100))
    model = tiny_rnn(g, 3, 5, nonlinearity="linear")
    with torch.no_grad():
        model.weight_hh.mul_(radius / torch.linalg.eigvals(model.weight_hh).abs().max())
    T = 20
    norms = ref["gradient_norms_through_time"](model, torch.randn(2, T, 3, generator=g, dtype=F64))
    W, v = model.weight_hh.detach(), model.readout
    want = torch.stack([torch.linalg.matrix_power(W.T, T - t) @ v for t in range(1, T + 1)]).norm(dim=-1)
    torch.testing.assert_close(norms, want.expand(2, T))
    # the geometric rate: the T-th root of the growth tends to the spectral radius
    assert (norms[0, 0] / norms[0, -1]) ** (1 / (T - 1)) == pytest.approx(radius, rel=0.25)


@pytest.mark.parametrize("batch, T, i, h, scale", [(1, 1, 2, 3, 1.0), (3, 8, 2, 4, 1.0), (2, 25, 3, 6, 2.0)])
def test_gradient_norms_are_the_product_of_jacobians(ref, batch, T, i, h, scale):
    """∂L/∂h_t = Π_k W_hhᵀ diag(tanh'(a_k)) readout, from the weights, without autograd."""
    g = torch.Generator().manual_seed(T * h)
    model = tiny_rnn(g, i, h, scale_hh=scale / math.sqrt(h))
    x = torch.randn(batch, T, i, generator=g, dtype=F64)
    norms = ref["gradient_norms_through_time"](model, x)
    W_ih, W_hh, b = (p.detach() for p in (model.weight_ih, model.weight_hh, model.bias))
    h_t = model.h0.expand(batch, h)
    derivatives = []  # tanh'(a_k) = 1 - h_k², for k = 1 .. T
    for t in range(T):
        h_t = torch.tanh(x[:, t] @ W_ih.T + h_t @ W_hh.T + b)
        derivatives.append(1 - h_t ** 2)
    grad = model.readout.expand(batch, h)  # ∂L/∂h_T
    want = [grad.norm(dim=-1)]
    for k in range(T - 1, 0, -1):  # ∂L/∂h_k = W_hhᵀ diag(tanh'(a_{k+1})) ∂L/∂h_{k+1}
        grad = (grad * derivatives[k]) @ W_hh
        want.append(grad.norm(dim=-1))
    torch.testing.assert_close(norms, torch.stack(want[::-1], dim=1))


def test_gradient_norms_match_finite_differences(ref):
    g = torch.Generator().manual_seed(11)
    model = tiny_rnn(g, 3, 4, scale_hh=0.8)
    T, batch = 7, 2
    x = torch.randn(batch, T, 3, generator=g, dtype=F64)
    norms = ref["gradient_norms_through_time"](model, x)
    with torch.no_grad():
        states = [model.initial_state(batch)]
        for t in range(T):
            states.append(model.step(x[:, t], states[-1]))

        def loss_from(t, h):
            for s in range(t, T):
                h = model.step(x[:, s], h)
            return model.loss(h).item()

        eps = 1e-6
        for t in range(1, T + 1):
            for b in range(batch):
                grad = []
                for j in range(4):
                    up, down = states[t].clone(), states[t].clone()
                    up[b, j] += eps
                    down[b, j] -= eps
                    grad.append((loss_from(t, up) - loss_from(t, down)) / (2 * eps))
                assert norms[b, t - 1].item() == pytest.approx(math.sqrt(sum(v * v for v in grad)), rel=1e-6)


def test_gradient_norms_work_under_no_grad(ref):
    g = torch.Generator().manual_seed(3)
    model = tiny_rnn(g, 2, 3)
    x = torch.randn(2, 5, 2, generator=g, dtype=F64)
    with torch.no_grad():
        quiet = ref["gradient_norms_through_time"](model, x)
    torch.testing.assert_close(quiet, ref["gradient_norms_through_time"](model, x))


def test_the_lstm_cell_path_carries_gradients_an_rnn_loses(ref):
    """The chapter's claim, measured: with its forget gate near 1, an LSTM's gradient along the cell
    state survives 50 steps, where a tanh RNN of the same size lets it vanish."""
    torch.manual_seed(0)
    H, I, T = 8, 3, 50
    x = torch.randn(1, T, I, dtype=F64)
    cell = nn.LSTMCell(I, H, dtype=F64)
    with torch.no_grad():
        cell.bias_hh[H:2 * H] = 6.0  # forget gate ≈ 1
    h = torch.zeros(1, H, dtype=F64)
    c0 = torch.zeros(1, H, dtype=F64, requires_grad=True)
    c = c0
    for t in range(T):
        h, c = ref["lstm_cell"](x[:, t], (h, c), cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    (lstm_grad,) = torch.autograd.grad(c.sum(), c0)
    rnn = tiny_rnn(torch.Generator().manual_seed(1), I, H, scale_hh=1 / math.sqrt(H))
    rnn_norms = ref["gradient_norms_through_time"](rnn, x)
    assert lstm_grad.norm() > 0.1 * math.sqrt(H) and rnn_norms[0, 0] < 1e-3 * rnn_norms[0, -1]
