"""Chapter 05's attention model (coursekit.attention): every score function in a model that steps and
teacher-forces alike, ignores padding, and weighs the source as the formulas say; and its size next to
chapter 04's model."""
import math

import pytest
import torch
import torch.nn.functional as F

from coursekit import seq2seq as s2s
from coursekit import translation as tr
from coursekit.attention import SCORES, AttentionSeq2Seq, ScoreFunction

SRC = tr.pad([[5, 9, 7, 11], [6, 8], [13]])  # (3, 5), right-padded with 0
TGT = tr.pad([[20, 21, 22], [23], [24, 25]], bos=True)


def model(score):
    torch.manual_seed(0)
    return AttentionSeq2Seq(50, embed=8, hidden=12, dropout=0.0, score=score).double().eval()


@pytest.mark.parametrize("score", SCORES)
def test_teacher_forcing_equals_stepping_the_decoder(score):
    m = model(score)
    logits = m(SRC, TGT[:, :-1])
    memory, s = m.encode(SRC)
    for t in range(TGT.size(1) - 1):
        step, s = m.decode_step(TGT[:, t], s, memory, SRC != tr.PAD)
        torch.testing.assert_close(logits[:, t], step)


@pytest.mark.parametrize("score", SCORES)
def test_weights_are_a_distribution_over_the_real_source_tokens(score):
    weights = model(score).alignment(SRC, TGT[:, :-1])  # (3, 4, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4, dtype=weights.dtype))
    real = (SRC != tr.PAD).unsqueeze(1).expand_as(weights)
    assert (weights[~real] == 0).all(), "no weight on padding"


@pytest.mark.parametrize("score", SCORES)
def test_padding_changes_nothing(score):
    m = model(score)
    alone = SRC[1:2, :3]  # the second sentence without its padding
    torch.testing.assert_close(m(alone, TGT[1:2, :-1]), m(SRC, TGT[:, :-1])[1:2])


def test_scores_follow_their_formulas():
    torch.manual_seed(1)
    q, keys = torch.randn(2, 6, dtype=torch.float64), torch.randn(2, 4, 6, dtype=torch.float64)
    loop = lambda f: torch.stack([torch.stack([f(q[b], keys[b, j]) for j in range(4)]) for b in range(2)]).detach()
    for kind, formula in {"dot": lambda a, k: a @ k, "scaled_dot": lambda a, k: a @ k / math.sqrt(6)}.items():
        f = ScoreFunction(kind, 6, 6).double()
        torch.testing.assert_close(f(q, keys, f.project_keys(keys)), loop(formula))
    f = ScoreFunction("general", 6, 6).double()
    W = f.w_k.weight  # (H, K)
    torch.testing.assert_close(f(q, keys, f.project_keys(keys)), loop(lambda a, k: a @ (W @ k)))
    f = ScoreFunction("additive", 6, 6, attention=5).double()
    torch.testing.assert_close(f(q, keys, f.project_keys(keys)), loop(
        lambda a, k: f.v.weight[0] @ torch.tanh(f.w_q.weight @ a + f.w_k.weight @ k + f.w_k.bias)))
    f = ScoreFunction("cosine", 6, 6).double()
    torch.testing.assert_close(f(q, keys, None), loop(
        lambda a, k: f.log_beta.exp() * F.cosine_similarity(f.w_q(a), k, dim=0)))
    f = ScoreFunction("location", 6, 6).double()
    assert torch.equal(f(q, keys, None), f(q, torch.randn_like(keys), None)), "location ignores the keys"


def test_dot_scores_need_queries_and_keys_of_one_size():
    with pytest.raises(ValueError, match="one size"):
        ScoreFunction("dot", 6, 8)


def test_the_compared_models_have_parameters_within_ten_percent():
    vocab = tr.tokenizer().get_vocab_size()
    base = s2s.n_parameters(s2s.TrainConfig().model(vocab))
    for score in SCORES:
        n = s2s.n_parameters(s2s.TrainConfig(score=score).model(vocab))
        assert abs(n - base) / base <= 0.10, f"{score}: {n:,} parameters against {base:,}"


@pytest.mark.parametrize("score", ["additive", "dot"])
def test_greedy_steps_follow_greedy_decoding_and_record_the_weights_used(score):
    m = model(score)
    steps = s2s.greedy_steps(m, [5, 9, 7], k=3, max_len=6)
    ids = [st["id"] for st in steps]
    assert ids == [i for i in m.greedy(tr.pad([[5, 9, 7]]), 6)[0].tolist() if i != tr.PAD]
    # teacher-forcing the model's own output gives back the weights recorded at each step
    again = m.alignment(tr.pad([[5, 9, 7]]), torch.tensor([[tr.BOS] + ids[:-1]]))[0]
    torch.testing.assert_close(torch.tensor([st["alpha"] for st in steps], dtype=again.dtype), again)
