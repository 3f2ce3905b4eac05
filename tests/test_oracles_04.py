"""Chapter 04's reference solution against independent oracles: sacreBLEU for BLEU, nn.GRU and nn.RNN
over packed sequences for the encoder, a teacher-forced decoder run as one nn.GRU call (and the course's
Seq2Seq with its loss_per_token) for the loss, and a step-by-step argmax check of every prefix (and
Seq2Seq.greedy) for greedy decoding; and the toy model that the hidden cases build, against its
equations written out."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from sacrebleu.metrics import BLEU
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from autograder.cases import seq2seq as cases
from autograder.expected import case_seed
from autograder.reference import load_reference
from coursekit.seq2seq import Seq2Seq, loss_per_token
from coursekit.toy_models import TinySeq2Seq, embedding_layer, recurrent_cell
from coursekit.translation import BOS, EOS, PAD

F64 = torch.float64


@pytest.fixture(scope="module")
def ref():
    return load_reference("04_seq2seq")


# --------------------------------------------------------------------------- bleu


def sacrebleu_score(candidates, references, max_n=4) -> float:
    """sacreBLEU 2.x on whitespace-joined tokens, no tokenizer, no smoothing. Its references are streams,
    one per reference position; a sentence with fewer references has None in the streams it lacks
    (sacreBLEU drops None, while an empty string would count as a reference of length 0)."""
    streams = max(len(refs) for refs in references)
    refs = [[" ".join(r[i]) if i < len(r) else None for r in references] for i in range(streams)]
    metric = BLEU(tokenize="none", smooth_method="none", effective_order=False, max_ngram_order=max_n)
    return metric.corpus_score([" ".join(c) for c in candidates], refs).score


def test_sacrebleu_is_used_as_documented():
    """The oracle itself: variable numbers of references need None, not '' (which is a reference of length 0)."""
    metric = BLEU(tokenize="none", smooth_method="none", max_ngram_order=1)
    hyps = ["a b c d", "a"]  # the second sentence has one reference, "a b"
    with_none = metric.corpus_score(hyps, [["a b c d", "a b"], ["x", None]])
    with_empty = metric.corpus_score(hyps, [["a b c d", "a b"], ["x", ""]])
    assert with_none.ref_len == 4 + 2 and with_empty.ref_len == 4 + 0  # "" ties with "a b" at distance 1, and wins
    assert with_none.score < with_empty.score
    assert sacrebleu_score([list("abcd"), ["a"]], [[list("abcd"), ["x"]], [["a", "b"]]], 1) \
        == pytest.approx(with_none.score)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("max_n", [1, 2, 3, 4])
def test_bleu_matches_sacrebleu_on_random_corpora(ref, seed, max_n):
    g = torch.Generator().manual_seed(100 * seed + max_n)
    candidates, references = cases._corpus(g, 5 + 3 * seed, max_refs=1 + seed % 3, lengths=(2, 25),
                                           keep=0.5 + 0.05 * seed)
    assert ref["bleu"](candidates, references, max_n) == pytest.approx(
        sacrebleu_score(candidates, references, max_n), rel=1e-12, abs=1e-12)


EDGE_CASES = {
    "no match at all": ([["x", "y", "z"]], [[["a", "b", "c"]]], 4),
    "shorter than the reference (BP < 1)": ([["the", "cat"]], [["the cat is on the mat".split()]], 2),
    "longer than the reference": (["the cat is on the mat today and tomorrow".split()],
                                  [["the cat is on the mat".split()]], 4),
    "as long as the reference": (["the cat is on a mat".split()], [["the cat is on the mat".split()]], 2),
    "multiple references": (["the cat sat on the mat".split()],
                            [["the cat is on the mat".split(), "there is a cat on the mat".split()]], 2),
    "multiple references, closest length 11 of 3, 11, 7, 15": (
        [list("abcdefghij")], [[list("abc"), list("abcdefghijk"), list("abcdefg"), list("abcdefghijklmno")]], 2),
    "a tie of reference lengths: the shorter": ([list("abcdefghij")], [[list("abcdefghijk"), list("abcdefghi")]], 2),
    "clipping: the the the the (Papineni)": ([["the"] * 7],
                                            [["the cat is on the mat".split(), "there is a cat on the mat".split()]], 1),
    "clipping: the the the the at BLEU-2": ([["the"] * 4 + ["cat"]], [["the the cat sat".split()]], 2),
    "clipping by the larger count of one reference": ([["the"] * 4], [[["the", "a"] * 2, ["the"] * 3 + ["a"]]], 1),
    "repeated bigrams": (["the cat the cat the cat on the mat".split()],
                         [["the cat is on the mat".split(), "the cat the dog on the mat".split()]], 3),
    "unigrams only": ([["mat", "the", "on", "cat"]], [["the cat on the mat".split()]], 4),
    "no 4-grams in the candidates": ([["the", "cat", "sat"]], [[["the", "cat", "sat"]]], 4),
    "an empty candidate among others": ([[], ["a", "b", "c"]], [[["a"]], [["a", "b", "c", "d"]]], 2),
    "every candidate empty": ([[], []], [[["a", "b"]], [["c"]]], 2),
    "the lecture's Jane pair, BLEU-2": (["Jane visited Africa last September .".split()],
                                        [["Jane visits Africa in September .".split()]], 2),
    "the lecture's Jane pair, BLEU-4": (["Jane visited Africa last September .".split()],
                                        [["Jane visits Africa in September .".split()]], 4),
}


@pytest.mark.parametrize("name", EDGE_CASES)
def test_bleu_matches_sacrebleu_on_edge_cases(ref, name):
    candidates, references, max_n = EDGE_CASES[name]
    assert ref["bleu"](candidates, references, max_n) == pytest.approx(
        sacrebleu_score(candidates, references, max_n), rel=1e-12, abs=1e-12)


def test_bleu_of_an_empty_corpus_is_zero(ref):
    """sacreBLEU refuses an empty corpus; the docstring says 0.0."""
    assert ref["bleu"]([], []) == 0.0


def test_every_hidden_bleu_case_matches_sacrebleu(ref):
    g = torch.Generator().manual_seed(case_seed("04_seq2seq", "bleu"))
    checked = 0
    for case in cases.bleu(g):
        candidates, references = case["args"]
        if not candidates:
            continue
        max_n = case.get("kwargs", {}).get("max_n", 4)
        assert ref["bleu"](*case["args"], **case.get("kwargs", {})) == pytest.approx(
            sacrebleu_score(candidates, references, max_n), rel=1e-12, abs=1e-12), case["id"]
        checked += 1
    assert checked >= 20


def test_the_visible_tests_worked_examples_are_sacrebleus_numbers():
    human, machine = "Jane visits Africa in September .".split(), "Jane visited Africa last September .".split()
    assert sacrebleu_score([machine], [[human]], 2) == pytest.approx(100 * math.sqrt(4 / 6 / 5))
    mat, cat = "the cat is on the mat".split(), "there is a cat on the mat".split()
    assert sacrebleu_score([["the"] * 7], [[mat, cat]], 1) == pytest.approx(100 * 2 / 7)
    assert sacrebleu_score([["the", "cat"]], [[mat, cat]], 2) == pytest.approx(100 * math.exp(-2))
    assert sacrebleu_score([["the", "cat", "sat", "on", "mat"]], [[["the", "cat", "sat"], "the cat sat on the mat".split()]],
                           2) == pytest.approx(100 * math.exp(1 - 6 / 5) * math.sqrt(3 / 4))
    assert sacrebleu_score([["the", "cat", "on", "mat"]], [[["the", "cat", "sat"], "the cat on the mat".split()]],
                           2) == pytest.approx(100 * math.sqrt(2 / 3))
    assert sacrebleu_score([machine, mat], [[human], [mat]], 2) == pytest.approx(100 * math.sqrt(0.5))


# --------------------------------------------------------------------------- encoder_forward


def padded(lengths, vocab, width=None, pad_id=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = torch.full((len(lengths), width or max(lengths)), pad_id, dtype=torch.long)
    for b, n in enumerate(lengths):
        out[b, :n] = cases._ids(g, n, vocab, pad_id)
    return out


def packed_run(rnn, embedding, src, pad_id=0):
    lengths = (src != pad_id).sum(1)
    packed = pack_padded_sequence(embedding(src), lengths, batch_first=True, enforce_sorted=False)
    out, h = rnn(packed)
    outputs, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
    return outputs, h[0]


@pytest.mark.parametrize("lengths, width", [((6, 3, 1), None), ((1,), None), ((4,), 9), ((5, 5, 5), None),
                                            ((1, 1, 1, 1), None), ((12, 2, 7, 30, 1), None)])
@pytest.mark.parametrize("kind", ["gru", "rnn"])
def test_encoder_matches_nn_gru_and_nn_rnn_over_packed_sequences(ref, lengths, width, kind):
    torch.manual_seed(sum(lengths))
    V, E, H = 15, 4, 6
    embedding = nn.Embedding(V, E, dtype=F64)
    cell = (nn.GRUCell if kind == "gru" else nn.RNNCell)(E, H, dtype=F64)
    rnn = (nn.GRU if kind == "gru" else nn.RNN)(E, H, batch_first=True, dtype=F64)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(rnn, name + "_l0").copy_(getattr(cell, name))
    src = padded(lengths, V, width, seed=len(lengths))
    outputs, h_last = ref["encoder_forward"](embedding, cell, src)
    want, h_n = packed_run(rnn, embedding, src)
    torch.testing.assert_close(outputs, want)
    torch.testing.assert_close(h_last, h_n)
    # the gradients agree too, through the loop and through the packed sequence
    weights = list(cell.parameters()) + [embedding.weight]
    got = torch.autograd.grad(outputs.sum() + h_last.square().sum(), weights)
    loss = want.sum() + h_n.square().sum()
    expected = torch.autograd.grad(loss, list(rnn.parameters()) + [embedding.weight])
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)


def test_encoder_with_another_pad_id_and_built_layers(ref):
    g = torch.Generator().manual_seed(4)
    weights = [torch.randn(18, 4, generator=g, dtype=F64), torch.randn(18, 6, generator=g, dtype=F64),
               torch.randn(18, generator=g, dtype=F64), torch.randn(18, generator=g, dtype=F64)]
    cell = recurrent_cell(*weights)
    embedding = embedding_layer(torch.randn(9, 4, generator=g, dtype=F64))
    gru = nn.GRU(4, 6, batch_first=True, dtype=F64)
    with torch.no_grad():
        for name, w in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), weights):
            getattr(gru, name).copy_(w)
    src = padded((3, 6, 1), 9, pad_id=7, seed=2)
    assert (src == 0).any(), "0 is a real token here"
    outputs, h_last = ref["encoder_forward"](embedding, cell, src, pad_id=7)
    want, h_n = packed_run(gru, embedding, src, pad_id=7)
    torch.testing.assert_close(outputs, want)
    torch.testing.assert_close(h_last, h_n)


# --------------------------------------------------------------------------- the toy model


def tiny(seed=0, vocab=12, embed=4, hidden=5, pad_id=0, dtype=F64):
    kwargs = cases._model_kwargs(torch.Generator().manual_seed(seed), vocab, embed, hidden, pad_id)
    return TinySeq2Seq(**{k: v.to(dtype) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()})


def gru_cell(x, h, w_ih, w_hh, b_ih, b_hh):
    """One GRU step from its equations (PyTorch's gate order r, z, n)."""
    r_i, z_i, n_i = (x @ w_ih.T + b_ih).chunk(3, -1)
    r_h, z_h, n_h = (h @ w_hh.T + b_hh).chunk(3, -1)
    r, z = torch.sigmoid(r_i + r_h), torch.sigmoid(z_i + z_h)
    n = torch.tanh(n_i + r * n_h)
    return (1 - z) * n + z * h


def test_tiny_seq2seq_follows_its_equations():
    model = tiny(seed=3)
    src = padded((5, 2, 3), 12, seed=5)
    memory, state = model.encode(src)
    E, enc, dec = model.embedding.weight, model.encoder, model.decoder
    with torch.no_grad():
        for b in range(src.size(0)):
            h = torch.zeros(model.hidden_size, dtype=F64)
            n = int((src[b] != PAD).sum())
            for s in range(n):
                h = gru_cell(E[src[b, s]], h, enc.weight_ih_l0, enc.weight_hh_l0, enc.bias_ih_l0, enc.bias_hh_l0)
                torch.testing.assert_close(memory[b, s], h)
            assert (memory[b, n:] == 0).all()
            torch.testing.assert_close(state[b], h)
        prev = torch.tensor([BOS, 5, 7])
        logits, (s, c) = model.decode_step(prev, state, memory, src != PAD)
        want_s = gru_cell(torch.cat([E[prev], state], -1), state, dec.weight_ih, dec.weight_hh, dec.bias_ih, dec.bias_hh)
        torch.testing.assert_close(s, want_s)
        torch.testing.assert_close(c, state)
        torch.testing.assert_close(logits, torch.cat([want_s, state], -1) @ model.readout.weight.T + model.readout.bias)
        logits2, (s2, c2) = model.decode_step(prev, (s, c), memory, src != PAD)
        torch.testing.assert_close(s2, gru_cell(torch.cat([E[prev], c], -1), s, dec.weight_ih, dec.weight_hh,
                                                dec.bias_ih, dec.bias_hh))
    with pytest.raises(TypeError, match="no forward"):
        model(src)


def test_tiny_seq2seq_works_in_both_precisions_and_depends_on_the_source():
    for dtype in (torch.float32, F64):
        model = tiny(seed=1, dtype=dtype)
        a, b = padded((4,), 12, seed=1), padded((4,), 12, seed=2)
        assert not torch.equal(a, b)
        la, _ = model.decode_step(torch.tensor([BOS]), model.encode(a)[1], None, None)
        lb, _ = model.decode_step(torch.tensor([BOS]), model.encode(b)[1], None, None)
        assert la.dtype == dtype and (la - lb).abs().max() > 1e-2
    # the same weights in both precisions agree
    torch.testing.assert_close(tiny(seed=1).encode(a)[1].float(), tiny(seed=1, dtype=torch.float32).encode(a)[1])


# --------------------------------------------------------------------------- teacher_forcing_loss


def teacher_forced_logits(model: TinySeq2Seq, src, tgt_in):
    """(B, T, V): the decoder run over the whole target in one nn.GRU call, with the model's weights."""
    _, c = model.encode(src)
    dec = model.decoder
    gru = nn.GRU(dec.input_size, dec.hidden_size, batch_first=True, dtype=c.dtype)
    gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0 = (dec.weight_ih, dec.weight_hh,
                                                                          dec.bias_ih, dec.bias_hh)
    context = c[:, None].expand(-1, tgt_in.size(1), -1)
    out, _ = gru(torch.cat([model.embedding(tgt_in), context], -1), c[None].contiguous())
    return model.readout(torch.cat([out, context], -1))


def targets(lengths, vocab, width=None, pad_id=0, seed=0):
    return cases._targets(torch.Generator().manual_seed(seed), lengths, vocab, pad_id, width)


@pytest.mark.parametrize("src_lengths, tgt_lengths, width", [((5, 3, 4), (4, 6, 2), None), ((4,), (5,), None),
                                                             ((3, 2, 4), (0, 0, 0), None), ((6, 6), (4, 4), None),
                                                             ((4, 12, 2), (1, 15, 3), 20)])
@pytest.mark.parametrize("pad_id", [0, 11])
def test_teacher_forcing_loss_matches_one_gru_call_and_cross_entropy(ref, src_lengths, tgt_lengths, width, pad_id):
    model = tiny(seed=len(src_lengths), vocab=12, pad_id=pad_id)
    src = padded(src_lengths, 12, pad_id=pad_id, seed=1)
    tgt = targets(tgt_lengths, 12, width, pad_id=pad_id, seed=2)
    loss = ref["teacher_forcing_loss"](model, src, tgt, pad_id=pad_id)
    logits = teacher_forced_logits(model, src, tgt[:, :-1])
    want = F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt[:, 1:].reshape(-1), ignore_index=pad_id)
    assert loss.dim() == 0
    torch.testing.assert_close(loss, want)
    # the per-token mean written out
    log_p = torch.log_softmax(logits, -1)
    terms = [-log_p[b, t, tgt[b, t + 1]] for b in range(tgt.size(0)) for t in range(tgt.size(1) - 1)
             if tgt[b, t + 1] != pad_id]
    assert len(terms) == sum(tgt_lengths) + len(tgt_lengths)  # each row's words and its <eos>
    torch.testing.assert_close(loss, torch.stack(terms).mean())
    weights = list(model.parameters())
    for got, expected in zip(torch.autograd.grad(loss, weights, allow_unused=True),
                             torch.autograd.grad(want, weights, allow_unused=True)):
        if expected is None:
            assert got is None or not got.any()
        else:
            torch.testing.assert_close(got, expected)


def test_teacher_forcing_loss_matches_the_course_seq2seq(ref):
    torch.manual_seed(0)
    model = Seq2Seq(40, embed=8, hidden=12, dropout=0.0).double().eval()
    src = padded((5, 2, 7, 1), 40, seed=3)
    tgt = targets((3, 9, 1, 5), 40, seed=4)
    loss = ref["teacher_forcing_loss"](model, src, tgt)
    want = loss_per_token(model, src, tgt)
    torch.testing.assert_close(loss, want)
    weights = list(model.parameters())
    for got, expected in zip(torch.autograd.grad(loss, weights), torch.autograd.grad(want, weights)):
        torch.testing.assert_close(got, expected)


# --------------------------------------------------------------------------- greedy_decode


def check_greedy(model, src, max_len, out):
    """Every emitted token is the argmax after the decoder has read <bos> and the tokens before it (each
    prefix re-run from scratch with the batched oracle), and the list stops as the docstring says."""
    assert isinstance(out, list) and all(type(t) is int for t in out)
    assert len(out) <= max_len and EOS not in out[:-1]
    assert len(out) == max_len or out[-1] == EOS
    with torch.no_grad():
        for t in range(len(out)):
            prefix = torch.tensor([[BOS] + out[:t]])
            logits = teacher_forced_logits(model, src[None], prefix)[0, -1]
            assert int(logits.argmax()) == out[t], f"step {t + 1}"


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("max_len", [0, 1, 3, 25])
def test_greedy_decode_takes_the_argmax_of_every_prefix(ref, seed, max_len):
    kwargs = cases._decoder_kwargs(torch.Generator().manual_seed(seed), 14, 5, 6)
    model = TinySeq2Seq(**{k: v.double() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()})
    src = padded((3 + seed,), 14, seed=seed)[0]
    check_greedy(model, src, max_len, ref["greedy_decode"](model, src, max_len))


def test_greedy_decode_stops_at_eos_and_at_max_len(ref):
    g = torch.Generator().manual_seed(0)
    kwargs, src = cases._decodable(g, 10, 4, 5, 4, 10, stop=(1, 1), eos_bias=25.0)
    model = TinySeq2Seq(**{k: v.double() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()})
    assert ref["greedy_decode"](model, src, 10) == [EOS]
    kwargs, src = cases._decodable(g, 16, 6, 8, 6, 12, stop=None, eos_bias=-25.0)
    model = TinySeq2Seq(**{k: v.double() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()})
    out = ref["greedy_decode"](model, src, 12)
    assert len(out) == 12 and EOS not in out
    check_greedy(model, src, 12, out)


def test_greedy_decode_matches_seq2seq_greedy(ref):
    torch.manual_seed(1)
    model = Seq2Seq(30, embed=8, hidden=16, dropout=0.0).double().eval()
    for seed in range(5):
        src = padded((2 + 3 * seed,), 30, seed=seed)[0]
        for max_len in (1, 4, 40):
            assert ref["greedy_decode"](model, src, max_len) == model.greedy(src[None], max_len)[0].tolist()


def test_hidden_greedy_cases_are_untied_and_decoded_alike_in_both_precisions(ref):
    g = torch.Generator().manual_seed(case_seed("04_seq2seq", "greedy_decode"))
    stopped = set()
    for case in cases.greedy_decode(g):
        spec, src, max_len = case["args"]
        out, gap = cases._greedy_path(spec["kwargs"], src, max_len, F64)
        assert gap >= cases.GREEDY_GAP, case["id"]
        assert cases._greedy_path(spec["kwargs"], src, max_len, torch.float32)[0] == out, case["id"]
        model = TinySeq2Seq(**{k: v.double() if isinstance(v, torch.Tensor) else v for k, v in spec["kwargs"].items()})
        assert ref["greedy_decode"](model, src, max_len) == out, case["id"]
        check_greedy(model, src, max_len, out)
        stopped.add("eos first" if out == [EOS] else "eos" if out and out[-1] == EOS else "max_len")
    assert stopped == {"eos first", "eos", "max_len"}
