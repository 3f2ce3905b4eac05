"""coursekit.rnn (chapter 03) against independent oracles: direct cross-entropy, matrix powers, explicit
Jacobian products, finite differences, nn.LSTM's own states, and the shipped checkpoints against the table."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from coursekit import corpora, ngrams, rnn


pytestmark = pytest.mark.usefixtures("one_thread")


def small_model(cell="lstm", vocab_size=11, hidden=16, seed=0):
    torch.manual_seed(seed)
    return rnn.CharRNN(vocab_size, cell, hidden=hidden, embed=8, dropout=0.0).double().eval()


# --------------------------------------------------------------------------- evaluation


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_total_nll_is_the_cross_entropy_of_the_whole_stream(cell):
    model = small_model(cell).float()
    ids = torch.randint(0, 11, (700,), generator=torch.Generator().manual_seed(1))
    x = torch.cat([torch.tensor([3]), ids])  # the stream starts with first_input = 3
    with torch.no_grad():
        logits, _ = model(x[None, :-1])  # one forward pass over everything: the oracle
    direct = F.cross_entropy(logits[0].double(), x[1:], reduction="sum").item()
    assert rnn.total_nll(model, ids, 3, chunk=64) == pytest.approx(direct, rel=1e-6)


def test_parallel_rows_score_every_character_exactly_once():
    # A model without memory (no recurrent weights, the forget gate shut): its prediction depends on
    # the current input only, so any cut of the stream gives exactly the same total.
    model = small_model("lstm")
    with torch.no_grad():
        model.rnn.weight_hh_l0.zero_()
        model.rnn.bias_ih_l0[16:32] = -1e4
    ids = torch.randint(0, 11, (1001,), generator=torch.Generator().manual_seed(2))
    one = rnn.total_nll(model, ids, 0)
    for rows, burn_in in ((7, 0), (7, 50), (32, 13), (1000, 3)):
        assert rnn.total_nll(model, ids, 0, rows=rows, burn_in=burn_in) == pytest.approx(one, rel=1e-12)


def test_parallel_rows_with_burn_in_match_one_stream():
    model = small_model("lstm")
    ids = torch.randint(0, 11, (3000,), generator=torch.Generator().manual_seed(3))
    one = rnn.total_nll(model, ids, 0)
    assert rnn.total_nll(model, ids, 0, rows=8, burn_in=200) == pytest.approx(one, rel=1e-6)


def test_nats_per_char_is_total_over_length_in_chapter_1_units():
    vocab = corpora.char_vocab("shakespeare")
    model = small_model("gru", vocab_size=len(vocab))
    text = corpora.split("shakespeare")["val"][:500]
    total = rnn.total_nll(model, torch.tensor(vocab.encode(text)), vocab["\n"])
    assert rnn.nats_per_char(model, vocab, text) == pytest.approx(corpora.nats_per_char(total, text))


# --------------------------------------------------------------------------- gradients through time


def test_linear_rnn_gradients_are_matrix_powers():
    out = rnn.rnn_hidden_gradients(1.1, steps=40, hidden=24, seeds=3, linear=True)
    W, u = out["inputs"]["W"], out["inputs"]["u"]  # (3, 24, 24), (3, 24, 1)
    for s in range(3):
        for k in (0, 1, 5, 39):
            exact = (torch.linalg.matrix_power(W[s].T, k) @ u[s]).norm()
            assert out["norms"][s, k].item() == pytest.approx(exact.item(), rel=1e-9)
    assert torch.linalg.eigvals(W).abs().amax(-1) == pytest.approx(1.1, rel=1e-9)


def test_tanh_rnn_gradients_are_products_of_jacobians_and_match_finite_differences():
    out = rnn.rnn_hidden_gradients(1.3, steps=25, hidden=10, seeds=2, input_scale=0.5)
    W, U, u, h0, x = (out["inputs"][k] for k in ("W", "U", "u", "h0", "x"))
    for s in range(2):
        hs = [h0[s]]
        for t in range(25):
            hs.append(torch.tanh(W[s] @ hs[-1] + U[s] @ x[t, s]))
        g = u[s]  # dL/dh_T
        for k in range(25):
            assert out["norms"][s, k].item() == pytest.approx(g.norm().item(), rel=1e-9)
            D = torch.diag((1 - hs[25 - k] ** 2).flatten())  # dh_t/dh_{t-1} = D_t W
            g = (D @ W[s]).T @ g

        def loss_from(h, start):  # run on from h_{start} to h_T
            for t in range(start, 25):
                h = torch.tanh(W[s] @ h + U[s] @ x[t, s])
            return (u[s] * h).sum()

        k, e = 12, 1e-6  # dL/dh_{T-k} by central differences, direction by direction
        start = 25 - k
        fd = torch.stack([(loss_from(hs[start] + e * v, start) - loss_from(hs[start] - e * v, start)) / (2 * e)
                          for v in torch.eye(10, dtype=torch.float64)[..., None]])
        assert out["norms"][s, k].item() == pytest.approx(fd.norm().item(), rel=1e-6)


def test_batched_radii_are_the_single_runs():
    both = rnn.rnn_hidden_gradients([0.9, 1.1], steps=20, hidden=16, seeds=2)
    one = rnn.rnn_hidden_gradients(1.1, steps=20, hidden=16, seeds=2)
    torch.testing.assert_close(both[1.1]["norms"], one["norms"])


def test_lstm_gradients_match_finite_differences():
    out = rnn.lstm_hidden_gradients(1.0, steps=12, hidden=6, inputs=4, seeds=2, burn_in=5)
    for s, run in enumerate(out["inputs"]):
        cell, x, u = run["cell"], run["x"], run["u"]

        def loss_from(h, c, start):
            for t in range(start, 12):
                h, c = cell(x[t], (h, c))
            return (u * h).sum()

        h, c = run["h0"], run["c0"]
        states = [(h, c)]
        with torch.no_grad():
            for t in range(12):
                h, c = cell(x[t], (h, c))
                states.append((h, c))
            k = 7  # h_{T-k} = states[12 - k], and the loss depends on it through steps 12-k+1 .. 12
            hk, ck = states[12 - k]
            e = 1e-6
            fd = torch.stack([(loss_from(hk + e * v, ck, 12 - k) - loss_from(hk - e * v, ck, 12 - k)) / (2 * e)
                              for v in torch.eye(6, dtype=torch.float64)[:, None, :]])
        assert out["norms"][s, k].item() == pytest.approx(fd.norm().item(), rel=1e-6)
        assert out["norms"][s, 0].item() == pytest.approx(1.0)


def test_fitted_rate_recovers_a_geometric_sequence():
    k = torch.arange(100, dtype=torch.float64)
    assert rnn.fitted_rate(3.0 * 0.87 ** k) == pytest.approx(0.87, rel=1e-12)
    assert rnn.geometric_mean(torch.stack([2 * torch.ones(5), 8 * torch.ones(5)])) == pytest.approx(4.0)


# --------------------------------------------------------------------------- the one-unit map


@pytest.mark.parametrize("w,b", [(0.5, 0.0), (1.0, 0.0), (2.0, 0.0), (3.0, 0.0), (2.0, 0.2), (1.2, 0.2), (-2.0, 0.1)])
def test_fixed_points_are_fixed_and_classified(w, b):
    points = rnn.fixed_points(w, b)
    assert points, "tanh(wx + b) = x always has a root in (-1, 1)"
    for x, stable in points:
        assert math.tanh(w * x + b) == pytest.approx(x, abs=1e-12)
        assert stable == (abs(w * (1 - x * x)) < 1)
    if b == 0.0:  # symmetric: one fixed point for w <= 1, three beyond
        assert len(points) == (1 if w <= 1 else 3)
    if (w, b) == (2.0, 0.0):
        assert points[-1][0] == pytest.approx(0.9575040240772687, abs=1e-10)  # x = tanh(2x)


def test_one_unit_loss_gradient_matches_finite_differences_and_clipping_caps_steps():
    w = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(-0.2, dtype=torch.float64, requires_grad=True)
    gw, gb = torch.autograd.grad(rnn.one_unit_loss(w, b, target=-0.7), (w, b))
    e = 1e-7
    L = lambda w_, b_: rnn.one_unit_loss(torch.tensor(w_, dtype=torch.float64),
                                         torch.tensor(b_, dtype=torch.float64), target=-0.7).item()
    assert gw.item() == pytest.approx((L(1.7 + e, -0.2) - L(1.7 - e, -0.2)) / (2 * e), rel=1e-5)
    assert gb.item() == pytest.approx((L(1.7, -0.2 + e) - L(1.7, -0.2 - e)) / (2 * e), rel=1e-5)
    path = rnn.descent((2.0, -0.5), 0.5, 40, clip=0.5, target=-0.7)
    steps = [math.hypot(q[0] - p[0], q[1] - p[1]) for p, q in zip(path, path[1:])]
    assert max(steps) <= 0.25 + 1e-12
    plain = rnn.descent((2.0, -0.5), 0.5, 40, target=-0.7)
    assert max(math.hypot(q[0] - p[0], q[1] - p[1]) for p, q in zip(plain, plain[1:])) > 1.0, "the cliff throws"


# --------------------------------------------------------------------------- LSTM gates, sampling, demos


def test_lstm_gates_rebuild_the_layers_own_hidden_states():
    vocab = corpora.char_vocab("shakespeare")
    model = small_model("lstm", vocab_size=len(vocab)).float()
    gates = rnn.lstm_gates(model, vocab, "To be, or not to be")
    c = torch.zeros(16)
    for t in range(len("To be, or not to be")):
        c = gates["forget"][t] * c + gates["input"][t] * gates["candidate"][t]
        torch.testing.assert_close(gates["output"][t] * torch.tanh(c), gates["hidden"][t])


def test_generate_is_seeded_and_greedy_at_low_temperature():
    vocab = corpora.char_vocab("shakespeare")
    model = small_model("gru", vocab_size=len(vocab)).float()
    a = rnn.generate(model, vocab, "ab", 30, [0.7, 1.3], seed=5)
    assert a == rnn.generate(model, vocab, "ab", 30, [0.7, 1.3], seed=5)
    assert [len(t) for t in a] == [30, 30]
    greedy, ids, state = [], torch.tensor([vocab.encode("ab")]), None
    with torch.no_grad():
        for _ in range(30):
            logits, state = model(ids, state)
            ids = logits[:, -1:].argmax(-1)
            greedy.append(ids.item())
    assert rnn.generate(model, vocab, "ab", 30, [1e-4], seed=0)[0] == "".join(vocab.decode(greedy))


def test_time_per_step_measures_each_length():
    out = rnn.time_per_step("rnn", hidden=8, lengths=[4, 8], batch=2, embed=4, repeats=1)
    assert len(out["recurrent"]) == len(out["parallel"]) == 2 and min(out["recurrent"]) > 0


def test_results_table_round_trip(tmp_path):
    path = tmp_path / "lm.csv"
    row = {"corpus": "machado", "model": "gpt 6x256", "params": 10, "val_nats_per_char": 1.2,
           "test_nats_per_char": 1.3, "train_seconds": 5.0, "checkpoint": "x.pt", "command": "python -m x --a 'b c'"}
    rnn.write_result(row, path)
    rnn.write_result({**row, "model": "lstm 512", "params": 7}, path)
    rnn.write_result({**row, "test_nats_per_char": 1.25}, path)  # replaces the GPT row
    rows = rnn.read_results(path)
    assert [(r["model"], r["test_nats_per_char"]) for r in rows] == [("gpt 6x256", 1.25), ("lstm 512", 1.3)]
    assert rows[0]["command"] == row["command"] and rows[1]["params"] == 7


# --------------------------------------------------------------------------- the shipped checkpoints


def test_shipped_rows_match_their_checkpoints():
    # The recurrent rows; chapter 10's GPT row is tested with its own model in test_gpt.py.
    rows = [r for r in rnn.read_results() if r["model"].split()[0] in rnn.CELL_NAMES]
    assert {(r["corpus"], r["model"].split()[0]) for r in rows} >= {(c, "lstm") for c in corpora.CORPORA}
    for row in rows:
        path = corpora.DATA.parent.parent / row["checkpoint"]
        assert path.stat().st_size <= 5 * 2**20, f"{path.name} is over 5 MB"
        raw = torch.load(path, weights_only=True)
        assert all(v.dtype == torch.float16 for v in raw["state_dict"].values())
        model, vocab, info = rnn.load(path=path)
        assert info["test"] == pytest.approx(row["test_nats_per_char"], abs=1e-6)
        assert info["val"] == pytest.approx(row["val_nats_per_char"], abs=1e-6)
        assert rnn.n_parameters(model) == row["params"]
        assert vocab.tokens == corpora.char_vocab(row["corpus"]).tokens
        assert info["command"] == row["command"] and info["command"].startswith("python -m coursekit.rnn train")


@pytest.mark.parametrize("corpus", corpora.CORPORA)
def test_lstm_checkpoint_reproduces_its_number_and_beats_the_5gram(corpus):
    model, vocab, info = rnn.load("lstm", corpus)
    # 20 pieces read side by side, each after 300 characters of context: the one-stream number
    # stored at training time to 1e-5 (test_parallel_rows_with_burn_in_match_one_stream), 9 times faster.
    head = rnn.nats_per_char(model, vocab, corpora.split(corpus)["test"][:5000], rows=20, burn_in=300)
    assert head == pytest.approx(info["test_head_5000"], abs=1e-5)
    assert info["test"] < ngrams.best_baseline(corpus)["test_nats_per_char"], "the chapter's claim"
