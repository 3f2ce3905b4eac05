"""Chapter 06's beam search over real translation models (coursekit.beam): exhaustive search when the
beam covers the space, greedy decoding at B = 1, log-probabilities equal to teacher forcing, and the
shipped measurements reproducible from the shipped checkpoint."""
import itertools
import math

import pytest
import torch

from coursekit import beam
from coursekit import seq2seq as s2s
from coursekit import translation as tr
from coursekit.attention import AttentionSeq2Seq

V = 6  # every id a tiny model can emit: <pad> <bos> <eos> <unk> and two words
SOURCE = [4, 5, 4]


def tiny(kind: str) -> s2s.Translator:
    torch.manual_seed(3)
    if kind == "attention":
        return AttentionSeq2Seq(V, embed=4, hidden=6, dropout=0.0).eval()
    return s2s.Seq2Seq(V, embed=4, hidden=6, dropout=0.0).eval()


def teacher_forced_log_prob(model, source, tokens) -> float:
    """log P(tokens | source) from the model's forward pass (all steps at once), token by token."""
    src = tr.pad([source])
    tgt_in = torch.tensor([[tr.BOS] + tokens[:-1]])
    log_p = torch.log_softmax(model(src, tgt_in), dim=-1)[0]  # (T, V)
    return float(sum(log_p[t, y] for t, y in enumerate(tokens)))


def exhaustive(model, source, max_len, alpha, penalty="average"):
    """Every sequence the search could return (ends at its first <eos>, or is max_len long), scored."""
    seqs = set()
    for n in range(1, max_len + 1):
        for seq in itertools.product(range(V), repeat=n):
            if tr.EOS in seq[:-1] or (seq[-1] != tr.EOS and n < max_len):
                continue
            seqs.add(seq)
    scored = [(teacher_forced_log_prob(model, source, list(s)), list(s)) for s in seqs]
    return sorted(((lp / beam.length_penalty(len(s), alpha, penalty), s) for lp, s in scored), reverse=True)


@pytest.mark.parametrize("kind", ["seq2seq", "attention"])
@pytest.mark.parametrize("alpha,penalty", [(0.0, "average"), (1.0, "average"), (0.7, "gnmt")])
def test_a_beam_that_covers_the_space_is_exhaustive_search(kind, alpha, penalty):
    model, max_len = tiny(kind), 3
    oracle = exhaustive(model, SOURCE, max_len, alpha, penalty)
    width = V ** max_len
    found = beam.beam_search(model, SOURCE, width, max_len, alpha, penalty)
    assert [h.tokens for h in found] == [s for _, s in oracle[:width]]
    for h, (score, _) in zip(found, oracle):
        assert math.isclose(h.score, score, rel_tol=1e-4, abs_tol=1e-5)


@pytest.mark.parametrize("kind", ["seq2seq", "attention"])
def test_a_narrow_beam_finds_at_most_what_exhaustive_search_finds(kind):
    model = tiny(kind)
    best = exhaustive(model, SOURCE, 3, 0.0)[0][0]
    for width in (1, 2, 5):
        found = beam.beam_search(model, SOURCE, width, 3)
        assert len(found) == width and found[0].score <= best + 1e-5
        assert [h.score for h in found] == sorted((h.score for h in found), reverse=True)


def test_a_beam_of_one_is_greedy_decoding():
    model, _ = s2s.load("bible", model=beam.MODEL)
    for pair in tr.split("val")[:8]:
        source = tr.token_ids(pair.src)[0]
        [h] = beam.beam_search(model, source, 1, max_len=120)
        greedy = model.greedy(tr.pad([source]), max_len=120)[0].tolist()
        assert h.tokens == greedy[:len(h.tokens)] and h.finished


def test_scores_are_the_models_log_probabilities():
    model, _ = s2s.load("bible", model=beam.MODEL)
    pairs = tr.split("val")[:4]
    sources = tr.token_ids([p.src for p in pairs])
    for source in sources:
        found = beam.beam_search(model, source, 3, alpha=0.6)
        assert len(found) == 3
        targets = [h.tokens[:-1] if h.finished else h.tokens for h in found]
        batched = beam.sequence_log_probs(model, [source] * 3, targets)
        for h, lp in zip(found, batched):
            assert math.isclose(h.log_prob, teacher_forced_log_prob(model, source, h.tokens), abs_tol=2e-3)
            if h.finished:
                assert math.isclose(h.log_prob, lp, abs_tol=2e-3)
            assert math.isclose(h.score, h.log_prob / len(h.tokens) ** 0.6, rel_tol=1e-9)


def test_the_trace_is_the_tree_of_the_search():
    model = tiny("attention")
    steps: list[beam.Step] = []
    found = beam.beam_search(model, SOURCE, 4, max_len=5, trace=steps)
    live, ended = [[]], []
    for step in steps:
        kept = [(live[p] + [t], done) for p, t, done in zip(step.parents, step.tokens, step.finished)]
        ended += [seq for seq, done in kept if done]
        live = [seq for seq, done in kept if not done]
        assert len(step.tokens) == 4 - (len(ended) - sum(step.finished))  # the beam narrows as hypotheses end
    assert sorted(map(tuple, ended + live)) == sorted(tuple(h.tokens) for h in found)


def test_length_penalties():
    assert beam.length_penalty(7, 0.0) == 1 and beam.length_penalty(7, 1.0) == 7
    assert beam.length_penalty(1, 0.8, "gnmt") == 1 and math.isclose(beam.length_penalty(13, 1.0, "gnmt"), 3.0)
    with pytest.raises(ValueError):
        beam.length_penalty(3, 0.5, "other")


# ---------------------------------------------------------------------------- the shipped measurements

def test_the_sweep_covers_every_setting():
    rows = beam.read_table(beam.SWEEP_PATH)
    assert [(r["beam_width"], r["alpha"], r["penalty"]) for r in rows] == beam.sweep_settings()
    assert all(len(tr.split("val")) > 1000 and 0 < r["bleu"] < 100 for r in rows)


def test_a_beam_of_one_on_the_test_set_reproduces_chapter_05s_greedy_outputs():
    greedy = s2s.read_outputs("bible", beam.MODEL)
    shipped = beam.read_table(beam.TEST_OUTPUTS_PATH)
    assert len(shipped) == len(greedy) == len(tr.split("test"))
    same = sum(a["greedy"] == b["hypothesis"] for a, b in zip(shipped, greedy))
    assert same >= 0.995 * len(greedy), "B = 1 is greedy (the beam's max_len, 2 S + 10, cuts a few runaway outputs)"
    refs = [p.tgt for p in tr.split("test")]
    test = beam.read_table(beam.TEST_PATH)
    for row, column in zip(test, ("greedy", "beam")):
        assert math.isclose(tr.bleu([r[column] for r in shipped], refs).score, row["bleu"], abs_tol=1e-3)


def test_the_error_analysis_labels_follow_from_its_scores():
    rows = beam.read_table(beam.ERRORS_PATH)
    dev = tr.split("val")
    assert {(r["beam_width"], r["alpha"]) for r in rows} == {(b, a) for b in beam.BLAME_WIDTHS
                                                            for a in (0.0, beam.SWEEP_ALPHA)}
    for r in rows:
        ref = r["reference_log_prob"] / r["reference_tokens"] ** r["alpha"]
        hyp = r["hypothesis_log_prob"] / r["hypothesis_tokens"] ** r["alpha"]
        if r["label"] != "none":
            assert r["label"] == ("search" if ref > hyp else "model"), r
        assert 0 <= r["sentence"] < len(dev)


def test_the_shipped_examples_come_from_the_shipped_checkpoint():
    model, _ = s2s.load("bible", model=beam.MODEL)
    width, alpha = beam.EXAMPLE_SETTING
    rows = [r for r in beam.read_table(beam.ERRORS_PATH) if (r["beam_width"], r["alpha"]) == (width, alpha)]
    dev = tr.split("val")
    for r in rows[:5]:
        [best, *_] = beam.beam_search(model, tr.token_ids(dev[r["sentence"]].src)[0], width, alpha=alpha)
        assert beam.text(best) == r["hypothesis"]
        assert math.isclose(best.log_prob, r["hypothesis_log_prob"], abs_tol=1e-3)
