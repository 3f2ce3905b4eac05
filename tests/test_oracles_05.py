"""Chapter 05's reference solution against independent oracles: PyTorch built-ins (scaled dot-product
attention, cosine similarity), the definitions written as loops over positions in float64, the GRU's
equations written out, finite differences, and the chapter's own model (coursekit.attention) holding the
same weights; and the grading of the decoder step with the helpers it builds on broken."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from autograder.reference import load_reference

D = torch.float64


@pytest.fixture(scope="module")
def ref():
    return load_reference("05_attention")


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D)


def padding_mask(lengths, s):
    return torch.arange(s)[None, :] < torch.tensor(lengths)[:, None]


def loop_scores(f, s, a):
    """(B, S) from score(s_b, a_bj) computed one pair at a time, in Python floats."""
    return torch.tensor([[float(f(s[b], a[b, j])) for j in range(a.shape[1])] for b in range(a.shape[0])], dtype=D)


def softmax_by_loop(scores, mask):
    """The softmax of each row over its real tokens, one exp at a time (math.fsum), 0 at the padding."""
    out = torch.zeros_like(scores)
    for b in range(scores.shape[0]):
        real = [j for j in range(scores.shape[1]) if mask[b, j]]
        top = max(float(scores[b, j]) for j in real)
        total = math.fsum(math.exp(float(scores[b, j]) - top) for j in real)
        for j in real:
            out[b, j] = math.exp(float(scores[b, j]) - top) / total
    return out


# --------------------------------------------------------------------------- scores without parameters


@pytest.mark.parametrize("batch, s, h", [(1, 1, 1), (3, 5, 4), (2, 9, 16), (4, 6, 6)])
def test_dot_scores_match_loops_and_torch_attention(ref, batch, s, h):
    q, a = randn(batch, h, seed=1), randn(batch, s, h, seed=2)
    dot = ref["dot_score"](q, a)
    torch.testing.assert_close(dot, loop_scores(lambda x, y: x @ y, q, a))
    torch.testing.assert_close(ref["scaled_dot_score"](q, a), dot / math.sqrt(h))
    mask = padding_mask([max(1, s - i) for i in range(batch)], s)
    eye = torch.eye(s, dtype=D).expand(batch, s, s)
    for scores, scale in ((dot, 1.0), (ref["scaled_dot_score"](q, a), None)):
        weights = F.scaled_dot_product_attention(q[:, None], a, eye, attn_mask=mask[:, None], scale=scale).squeeze(1)
        torch.testing.assert_close(ref["attention_weights"](scores, mask), weights)
        # the whole attention of one query: the context vector of those weights is torch's output
        output = F.scaled_dot_product_attention(q[:, None], a, a, attn_mask=mask[:, None], scale=scale).squeeze(1)
        torch.testing.assert_close(ref["context_vector"](ref["attention_weights"](scores, mask), a), output)


@pytest.mark.parametrize("beta", [1.0, 0.3, 7, "per row"])
def test_cosine_score_matches_torch(ref, beta):
    q, a = randn(4, 5, seed=3), randn(4, 6, 5, seed=4) * 10 ** randn(4, 6, 1, seed=5)
    betas = torch.tensor([0.5, 1.0, 2.0, 9.0], dtype=D) if beta == "per row" else beta
    want = (betas[:, None] if beta == "per row" else beta) * F.cosine_similarity(q[:, None], a, dim=-1)
    torch.testing.assert_close(ref["cosine_score"](q, a, betas), want)
    assert (ref["cosine_score"](q, a).abs() <= 1 + 1e-12).all()
    parallel_and_opposite = torch.stack([3 * q, -q], dim=1)
    torch.testing.assert_close(ref["cosine_score"](q, parallel_and_opposite), torch.tensor([[1.0, -1.0]] * 4, dtype=D))


# --------------------------------------------------------------------------- learned scores


def module(ref, name, seed, **init):
    torch.manual_seed(seed)
    return ref[name](**init).double().eval()


@pytest.mark.parametrize("h, k, batch, s", [(4, 6, 3, 5), (5, 5, 2, 4), (3, 2, 1, 1)])
def test_learned_scores_match_loops(ref, h, k, batch, s):
    q, a = randn(batch, h, seed=6), randn(batch, s, k, seed=7)
    with torch.no_grad():
        general = module(ref, "GeneralScore", 0, query_size=h, key_size=k)
        W = general.W.weight
        torch.testing.assert_close(general(q, a), loop_scores(lambda x, y: x @ W @ y, q, a))

        additive = module(ref, "AdditiveScore", 1, query_size=h, key_size=k, attention_size=7)
        W_a = torch.cat([additive.W.weight, additive.U.weight], dim=1)  # the lecture's v_aᵀ tanh(W_a [s; a_j])
        v, b = additive.v.weight[0], additive.U.bias
        want = loop_scores(lambda x, y: v @ torch.tanh(W_a @ torch.cat([x, y]) + b), q, a)
        torch.testing.assert_close(additive(q, a), want)

        location = module(ref, "LocationScore", 2, query_size=h, max_positions=9)
        full = torch.stack([location.W.weight @ q[i] + location.W.bias for i in range(batch)])  # (B, 9)
        torch.testing.assert_close(location(q, a), full[:, :s])
        torch.testing.assert_close(location(q, randn(batch, s, 3, seed=8)), full[:, :s])  # the content is ignored


def test_scores_are_the_chapters_score_functions(ref):
    """coursekit.attention.ScoreFunction, the scores the chapter trains, given the same weights."""
    from coursekit.attention import ScoreFunction

    q, a = randn(3, 8, seed=9), randn(3, 5, 8, seed=10)
    with torch.no_grad():
        for kind, ours in (("dot", ref["dot_score"]), ("scaled_dot", ref["scaled_dot_score"])):
            theirs = ScoreFunction(kind, 8, 8).double()
            torch.testing.assert_close(ours(q, a), theirs(q, a, theirs.project_keys(a)))

        torch.manual_seed(0)
        theirs = ScoreFunction("general", 8, 8).double()
        general = module(ref, "GeneralScore", 0, query_size=8, key_size=8)
        general.W.weight.copy_(theirs.w_k.weight)
        torch.testing.assert_close(general(q, a), theirs(q, a, theirs.project_keys(a)))

        theirs = ScoreFunction("additive", 8, 8, attention=12).double()
        additive = module(ref, "AdditiveScore", 0, query_size=8, key_size=8, attention_size=12)
        additive.load_state_dict({"W.weight": theirs.w_q.weight, "U.weight": theirs.w_k.weight,
                                  "U.bias": theirs.w_k.bias, "v.weight": theirs.v.weight})
        torch.testing.assert_close(additive(q, a), theirs(q, a, theirs.project_keys(a)))

        theirs = ScoreFunction("location", 8, 8).double()
        location = module(ref, "LocationScore", 0, query_size=8, max_positions=theirs.w_l.out_features)
        location.load_state_dict({"W.weight": theirs.w_l.weight, "W.bias": theirs.w_l.bias})
        torch.testing.assert_close(location(q, a), theirs(q, a, None))

        theirs = ScoreFunction("cosine", 8, 8).double()  # β cos(W_q q + b, k): the identity makes it ours
        theirs.w_q.weight.copy_(torch.eye(8))
        theirs.w_q.bias.zero_()
        torch.testing.assert_close(ref["cosine_score"](q, a, float(theirs.log_beta.exp())), theirs(q, a, None))


# --------------------------------------------------------------------------- weights and context


@pytest.mark.parametrize("shift", [0.0, 1000.0, -1000.0])
def test_attention_weights_match_a_softmax_by_loop(ref, shift):
    scores = randn(5, 8, seed=11) * 3 + shift
    mask = padding_mask([8, 5, 3, 1, 6], 8)
    mask[1] = torch.tensor([False, True, False, True, True, False, False, True])  # not a prefix
    scores[~mask] += 2000.0  # the padding scores highest
    weights = ref["attention_weights"](scores, mask)
    torch.testing.assert_close(weights, softmax_by_loop(scores, mask))
    assert (weights[~mask] == 0).all() and torch.isfinite(weights).all()
    torch.testing.assert_close(ref["attention_weights"](scores), softmax_by_loop(scores, torch.ones_like(mask)))


def test_attention_weights_gradients_match_finite_differences(ref):
    scores = randn(3, 5, seed=12).requires_grad_()
    mask = padding_mask([5, 2, 4], 5)
    assert torch.autograd.gradcheck(lambda e: ref["attention_weights"](e, mask), (scores,))


def test_context_vector_is_the_weighted_sum(ref):
    weights = torch.softmax(randn(4, 6, seed=13), dim=-1)
    a = randn(4, 6, 3, seed=14)
    want = torch.stack([sum(weights[b, j] * a[b, j] for j in range(6)) for b in range(4)])
    torch.testing.assert_close(ref["context_vector"](weights, a), want)
    picks = [1, 5, 0, 2]
    torch.testing.assert_close(ref["context_vector"](torch.eye(6, dtype=D)[picks], a), a[torch.arange(4), picks])


# --------------------------------------------------------------------------- the decoder step


def gru_by_hand(x, h, cell):
    """PyTorch's GRU cell, its equations written out: gates r, z and the candidate n, in that order."""
    gi = x @ cell.weight_ih.T + cell.bias_ih
    gh = h @ cell.weight_hh.T + cell.bias_hh
    (i_r, i_z, i_n), (h_r, h_z, h_n) = gi.chunk(3, -1), gh.chunk(3, -1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


@pytest.mark.parametrize("sizes", [(3, 4, 6, 5, 7), (5, 5, 5, 5, 5), (2, 6, 3, 9, 1)])
def test_decoder_step_matches_the_equations(ref, sizes):
    e, h, k, att, v = sizes
    step = module(ref, "AttentionDecoderStep", 3, embed_size=e, hidden_size=h, annotation_size=k,
                  attention_size=att, vocab_size=v)
    y, s_prev, a = randn(4, e, seed=15), randn(4, h, seed=16), randn(4, 6, k, seed=17)
    mask = padding_mask([6, 4, 1, 3], 6)
    with torch.no_grad():
        logits, s, alpha = step(y, s_prev, a, mask)
        sc = step.score
        scores = loop_scores(lambda x, y_: sc.v.weight[0] @ torch.tanh(sc.W.weight @ x + sc.U.weight @ y_ + sc.U.bias),
                             s_prev, a)
        want_alpha = softmax_by_loop(scores, mask)
        c = torch.stack([sum(want_alpha[b, j] * a[b, j] for j in range(6)) for b in range(4)])
        want_s = gru_by_hand(torch.cat([y, c], -1), s_prev, step.cell)
        want_logits = torch.cat([want_s, c], -1) @ step.output.weight.T + step.output.bias
    torch.testing.assert_close(alpha, want_alpha)
    torch.testing.assert_close(s, want_s)
    torch.testing.assert_close(logits, want_logits)


def test_decoder_step_is_the_chapters_model(ref):
    """coursekit.attention.AttentionSeq2Seq, the model the chapter trains, takes the same step with the same
    weights: its output layer, tied to the embedding, is our output layer with W_o = E W_z, b_o = E b_z."""
    from coursekit.attention import AttentionSeq2Seq

    torch.manual_seed(0)
    model = AttentionSeq2Seq(vocab_size=11, embed=6, hidden=8, score="additive").double().eval()
    att = model.score.w_q.out_features
    step = module(ref, "AttentionDecoderStep", 4, embed_size=6, hidden_size=8, annotation_size=8,
                  attention_size=att, vocab_size=11)
    E = model.embedding.weight
    step.load_state_dict({
        "score.W.weight": model.score.w_q.weight, "score.U.weight": model.score.w_k.weight,
        "score.U.bias": model.score.w_k.bias, "score.v.weight": model.score.v.weight,
        **{f"cell.{n}": p for n, p in model.decoder.named_parameters()},
        "output.weight": E @ model.to_embedding.weight, "output.bias": E @ model.to_embedding.bias})
    src = torch.tensor([[5, 7, 3, 9, 4, 2], [6, 3, 8, 2, 0, 0], [4, 2, 0, 0, 0, 0]])
    prev = torch.tensor([3, 7, 1])
    with torch.no_grad():
        memory, s_prev = model.encode(src)
        mask = src != model.pad_id
        annotations = memory[..., :model.hidden]
        logits, s, alpha = step(model.embedding(prev), s_prev, annotations, mask)
        their_logits, their_s = model.decode_step(prev, s_prev, memory, mask)
        _, their_alpha = model.attend(s_prev, memory, mask)
    torch.testing.assert_close(alpha, their_alpha)
    torch.testing.assert_close(s, their_s)
    torch.testing.assert_close(logits, their_logits)


def test_decoder_step_is_graded_with_stand_ins_for_the_helpers(expected_dir):
    """Broken AdditiveScore, attention_weights and context_vector must not also cost the decoder step's points:
    its hidden check swaps in the test cell's independent versions, and puts the student's back afterwards."""
    from autograder.checks import check_against_reference
    from submissions import hidden_substitutes, solution_sources, student_namespace

    answers = solution_sources("05_attention")
    namespace = student_namespace("05_attention", {k: answers[k] for k in ("learned_scores", "decoder_step")})

    def broken(*args, **kwargs):
        raise NotImplementedError()

    class BrokenScore(namespace["AdditiveScore"]):
        def forward(self, s, annotations):
            return -super().forward(s, annotations)

    namespace.update(attention_weights=broken, context_vector=broken, AdditiveScore=BrokenScore)
    step = namespace["AttentionDecoderStep"]
    check_against_reference("05_attention", "AttentionDecoderStep", step,
                            substitutes=hidden_substitutes("05_attention", "AttentionDecoderStep", namespace))
    assert namespace["attention_weights"] is broken and namespace["AdditiveScore"] is BrokenScore
    with pytest.raises(AssertionError, match="AttentionDecoderStep, hidden case"):
        check_against_reference("05_attention", "AttentionDecoderStep", step)  # without the stand-ins it fails
