"""Chapter 06's reference solution against independent oracles: the objective against its formula
number by number, the log-probability against the models' equations run once over the whole
sentence (teacher forcing) and the lecture's products of probabilities, the beam search against
exhaustive search (itertools.product) when the beam covers the space, against greedy decoding at
B = 1 and against a second implementation (the cases' trusted search, Python lists) on random
models; the hidden cases proven clear of ties (the reference's ids survive noise on every
log-probability, in float32); the error analysis against its definition; and the grading of
beam_search and blame with the functions they build on broken."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from autograder.cases import beam_search as cases
from autograder.checks import BUILD, prepare
from autograder.expected import case_seed
from autograder.reference import load_reference
from coursekit.toy_models import RecurrentStepFunction, TableStepFunction, jane_model

F64 = torch.float64
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def ref():
    return load_reference("06_beam_search")


def table(vocab, seed, scale=2.5):
    g = torch.Generator().manual_seed(seed)
    return TableStepFunction(torch.randn(vocab, vocab, generator=g, dtype=F64) * scale)


def recurrent(vocab, seed, embed=4, hidden=5):
    g = torch.Generator().manual_seed(seed)
    return RecurrentStepFunction(*(torch.randn(*s, generator=g, dtype=F64) * k for s, k in (
        ((vocab, embed), 1.0), ((hidden, embed), 0.7), ((hidden, hidden), 0.5), ((vocab, hidden), 2.0),
        ((vocab,), 0.5))))


def teacher_forced(step: RecurrentStepFunction, bos, tokens) -> float:
    """log P(tokens) from the recurrent model's equations run once over <bos> y_1 … y_{T-1}."""
    h = torch.zeros(step.weight_hh.size(0), dtype=F64)
    total = 0.0
    for previous, token in zip([bos, *tokens[:-1]], tokens):
        h = torch.tanh(step.weight_in @ step.embedding[previous] + step.weight_hh @ h)
        total += float(torch.log_softmax(step.readout @ h + step.bias, dim=0)[token])
    return total


def exhaustive(log_prob, vocab, eos, max_len, alpha):
    """Every sentence a search can return (ending at its first eos, or max_len long), best first."""
    sentences = [list(s) for n in range(1, max_len + 1) for s in itertools.product(range(vocab), repeat=n)
                 if eos not in s[:-1] and (s[-1] == eos or n == max_len)]
    scored = [(log_prob(s) / len(s) ** alpha, s) for s in sentences]
    return sorted(scored, key=lambda pair: -pair[0])


# --------------------------------------------------------------------------- length_normalised_score


@pytest.mark.parametrize("penalty", ["average", "gnmt"])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.7, 1.0, 2.0])
def test_the_objective_is_its_formula(ref, penalty, alpha):
    f = ref["length_normalised_score"]
    lp = lambda t: t if penalty == "average" else (5 + t) / 6  # noqa: E731
    for length in (1, 2, 3, 7, 20):
        assert f(-4.2, length, alpha, penalty) == pytest.approx(-4.2 / math.pow(lp(length), alpha), rel=1e-12)
        assert isinstance(f(-4.2, length, alpha, penalty), float)
    log_p = -10 * torch.rand(3, 5, dtype=F64)
    lengths = torch.randint(1, 30, (5,))
    got = f(log_p, lengths, alpha, penalty)
    want = torch.tensor([[float(log_p[i, j]) / math.pow(lp(int(lengths[j])), alpha) for j in range(5)]
                         for i in range(3)], dtype=F64)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)


def test_the_objective_at_one_token_and_alpha_zero_and_its_errors(ref):
    f = ref["length_normalised_score"]
    assert f(-3.0, 1, 0.7, "gnmt") == -3.0 and f(-3.0, 1, 0.7) == -3.0 and f(-3.0, 12, 0.0) == -3.0
    with pytest.raises(ValueError):
        f(-3.0, 2, 0.5, "GNMT")


# --------------------------------------------------------------------------- sequence_log_prob


@pytest.mark.parametrize("seed", range(5))
def test_log_prob_is_teacher_forcing(ref, seed):
    step = recurrent(7, seed)
    g = torch.Generator().manual_seed(100 + seed)
    for n in (1, 2, 5, 9):
        tokens = torch.randint(7, (n,), generator=g).tolist()
        bos = seed % 7
        assert ref["sequence_log_prob"](step, bos, tokens) == pytest.approx(teacher_forced(step, bos, tokens),
                                                                            rel=1e-12)
    assert ref["sequence_log_prob"](step, 0, []) == 0.0


def test_log_prob_of_a_first_order_model_reads_its_table(ref):
    step = table(6, 3)
    tokens = [4, 4, 0, 2, 1, 5]
    want = sum(float(step.log_probs[a, b]) for a, b in zip([3, *tokens], tokens))
    assert ref["sequence_log_prob"](step, 3, tokens) == pytest.approx(want, rel=1e-12)


def test_the_lecture_example_is_as_the_lecture_says(ref):
    jane = jane_model()
    ids = lambda s: [jane.ids[w] for w in s.split()] + [jane.eos]  # noqa: E731
    visiting = ids("jane is visiting africa in september")
    going = ids("jane is going to be visiting africa in september")
    p_visiting = math.exp(ref["sequence_log_prob"](jane, 0, visiting))
    p_going = math.exp(ref["sequence_log_prob"](jane, 0, going))
    assert p_visiting == pytest.approx(0.9 * 0.8 * 0.4 * 0.95 * 0.9 * 0.95 * 0.95)
    assert round(p_visiting, 4) == 0.2222 and round(p_going, 4) == 0.2138
    greedy = ref["beam_search"](jane, 0, 1, 1, 20)
    assert [t for t, _ in greedy] == [going]
    for width in (2, 3, 4):  # B >= 2 finds the more probable translation
        assert ref["beam_search"](jane, 0, 1, width, 20)[0][0] == visiting
    assert ref["beam_search"](jane, 0, 1, 2, 20, alpha=0.7)[0][0] == going  # normalised: the longer


# --------------------------------------------------------------------------- beam_search


@pytest.mark.parametrize("vocab, max_len", [(2, 4), (3, 3), (4, 3), (3, 4), (5, 2)])
@pytest.mark.parametrize("alpha", [0.0, 0.7, 1.0])
def test_a_beam_that_covers_the_space_is_exhaustive_search(ref, vocab, max_len, alpha):
    step = recurrent(vocab, 10 * vocab + max_len)
    want = exhaustive(lambda s: teacher_forced(step, 0, s), vocab, 1, max_len, alpha)
    for width in (vocab ** max_len, vocab ** max_len + 7):
        got = ref["beam_search"](step, 0, 1, width, max_len, alpha)
        assert [t for t, _ in got] == [s for _, s in want]
        for (_, score), (want_score, _) in zip(got, want):
            assert score == pytest.approx(want_score, rel=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_beam_width_one_is_greedy_decoding(ref, seed):
    step = recurrent(6, 50 + seed)
    ids, log_p = [2], 0.0
    for _ in range(7):
        row = step(torch.tensor([ids]))[0]
        ids.append(int(row.argmax()))
        log_p += float(row.max())
        if ids[-1] == 4:
            break
    (tokens, score), = ref["beam_search"](step, 2, 4, 1, 7)
    assert tokens == ids[1:] and score == pytest.approx(log_p, rel=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_beam_search_agrees_with_a_second_implementation(ref, seed):
    """The cases' trusted search (Python lists, one prefix at a time) on random models, beams and ids."""
    g = torch.Generator().manual_seed(seed)
    vocab = int(torch.randint(3, 9, (), generator=g))
    bos, eos = torch.randperm(vocab, generator=g)[:2].tolist()
    width, max_len = int(torch.randint(1, 6, (), generator=g)), int(torch.randint(1, 7, (), generator=g))
    alpha = [0.0, 0.5, 1.0][seed % 3]
    step = recurrent(vocab, 200 + seed) if seed % 2 else table(vocab, 200 + seed)
    want, gap = cases._search(step, bos, eos, width, max_len, alpha)
    got = ref["beam_search"](step, bos, eos, width, max_len, alpha)
    if gap < 1e-9:
        pytest.skip("a tie: either answer is right")
    assert [t for t, _ in got] == [t for t, _, _ in want]
    assert [s for _, s in got] == pytest.approx([s for _, s, _ in want], rel=1e-10)
    # what every result is: finished at its first eos or max_len long, scored by its log P
    for tokens, score in got:
        assert eos not in tokens[:-1] and (tokens[-1] == eos or len(tokens) == max_len)
        log_p = ref["sequence_log_prob"](step, bos, tokens)
        assert score == pytest.approx(log_p / len(tokens) ** alpha, rel=1e-10)


def test_the_beam_narrows_as_in_the_worked_example(ref):
    """The notebook's example: the beam of 2 keeps '<eos>' and 'a', then only one continuation of 'a'."""
    p = torch.tensor([[0.0, 0.5, 0.3, 0.2], [0.25] * 4, [0.0, 0.4, 0.35, 0.25], [0.0, 0.98, 0.01, 0.01]],
                     dtype=F64)
    step = TableStepFunction(p.log())
    calls = []

    def counting(prefixes):
        calls.append(prefixes.tolist())
        return step(prefixes)

    got = ref["beam_search"](counting, 0, 1, 2, 3)
    assert [t for t, _ in got] == [[1], [2, 1]]
    assert calls == [[[0]], [[0, 2]]]  # step 2 extends one live hypothesis: the beam narrowed
    assert [t for t, _ in ref["beam_search"](step, 0, 1, 3, 3)] == [[1], [3, 1], [2, 1]]


class Noisy:
    """A step function whose log-probabilities are shifted by noise in [-size, size], a fixed draw
    per (seed, prefix): a search whose answer survives it is clear of ties."""

    def __init__(self, step_fn, seed, size=1e-4):
        self.step_fn, self.seed, self.size = step_fn, seed, size

    def __call__(self, prefixes):
        out = self.step_fn(prefixes)
        noise = []
        for row in prefixes.tolist():
            g = torch.Generator().manual_seed(hash((self.seed, *row)) % 2 ** 62)
            noise.append((2 * torch.rand(out.size(1), generator=g, dtype=F64) - 1) * self.size)
        return out + torch.stack(noise).to(out)


def hidden(name):
    g = torch.Generator().manual_seed(case_seed("06_beam_search", name))
    return list(cases.CASES[name](g))


def test_the_hidden_beam_cases_are_clear_of_ties(ref):
    """Every hidden case of beam_search: the reference's ids in float64 are those of the float32
    search with noise of 1e-4 on every log-probability, for several draws of the noise (the Jane
    model's tied words included: its beams of 2 never keep one to the end)."""
    for case in hidden("beam_search"):
        args64 = prepare(case["args"], CPU, F64)
        model, bos, eos, width, max_len, *rest = args64
        alpha = case["kwargs"].get("alpha", rest[0] if rest else 0.0)
        want = [t for t, _ in ref["beam_search"](*args64, **case["kwargs"])]
        for seed in range(12):
            args32 = prepare(case["args"], CPU, torch.float32)
            args32[0] = Noisy(args32[0], seed)
            got = [t for t, _ in ref["beam_search"](*args32, **case["kwargs"])]
            assert got == want, f"{case['id']}: noise changed the answer (seed {seed})"
        if case["args"][0][BUILD].endswith("jane_model"):
            continue
        _, gap = cases._search(model, bos, eos, width, max_len, alpha)
        assert gap >= cases.GAP, case["id"]


def test_the_hidden_beam_cases_cover_what_they_say(ref):
    by_group = {}
    for case in hidden("beam_search"):
        by_group.setdefault(case["group"], []).append(case)
        model, bos, eos, width, max_len, *rest = prepare(case["args"], CPU, F64)
        alpha = case["kwargs"].get("alpha", rest[0] if rest else 0.0)
        got = ref["beam_search"](model, bos, eos, width, max_len, alpha)
        assert 1 <= len(got) <= width
        if case["group"] == "exhaustive (B covers the space)":
            assert width >= model.vocab_size ** max_len
        if case["group"] == "length normalisation (alpha > 0)":
            raw = sorted(got, key=lambda pair: pair[1] * len(pair[0]) ** alpha, reverse=True)
            assert alpha > 0 and ([t for t, _ in raw] != [t for t, _ in got] or "lecture" in case["id"])
    assert set(by_group) == {"greedy (B = 1)", "small beams", "exhaustive (B covers the space)",
                             "length normalisation (alpha > 0)", "edge cases"}
    assert all(c["args"][3] == 1 for c in by_group["greedy (B = 1)"])
    assert all(c["args"][3] <= 2 for cs in by_group.values() for c in cs if c["args"][0][BUILD].endswith("jane_model"))


# --------------------------------------------------------------------------- blame


def oracle_blame(step, bos, references, hypotheses, alpha=0.0):
    def score(y):
        log_p = sum(float(step(torch.tensor([[bos, *y[:t]]]))[0, y[t]]) for t in range(len(y)))
        return log_p / len(y) ** alpha
    labels = ["none" if r == h else "search" if score(r) > score(h) else "model"
              for r, h in zip(references, hypotheses)]
    errors = [label for label in labels if label != "none"]
    return labels, (errors.count("search") / len(errors) if errors else math.nan)


def test_the_hidden_blame_cases_are_clear_of_ties_and_flip_with_alpha(ref):
    """Every pair of a hidden case: its two scores GAP apart (exact ties only in the uniform model's
    cases, made on purpose), the labels and share those of the definition, and in each case with
    alpha > 0 a pair whose label alpha changes."""
    for case in hidden("blame"):
        step, bos, references, hypotheses = prepare(case["args"], CPU, F64)
        alpha = case["kwargs"].get("alpha", 0.0)
        labels, share = ref["blame"](step, bos, references, hypotheses, alpha)
        want_labels, want_share = oracle_blame(step, bos, references, hypotheses, alpha)
        assert list(labels) == want_labels, case["id"]
        assert (math.isnan(share) and math.isnan(want_share)) or share == pytest.approx(want_share), case["id"]
        uniform = "uniform" in case["id"]
        flips = 0
        for r, h in zip(references, hypotheses):
            if r == h:
                continue
            for a in {0.0, alpha}:
                gap = abs(cases._log_prob(step, bos, r) / len(r) ** a - cases._log_prob(step, bos, h) / len(h) ** a)
                assert gap >= cases.GAP or (uniform and gap == 0 and len(r) == len(h)), case["id"]
            flips += oracle_blame(step, bos, [r], [h], alpha)[0] != oracle_blame(step, bos, [r], [h], 0.0)[0]
        if case["group"] == "length normalisation (alpha > 0)":
            assert flips >= 1, case["id"]
    groups = {c["group"] for c in hidden("blame")}
    assert groups == {"raw log-probabilities (alpha = 0)", "length normalisation (alpha > 0)", "edge cases"}


def test_a_tie_is_the_models_fault_in_both_precisions(ref):
    """The uniform model's ties are exact in float32 too (every log-probability the same number)."""
    for dtype in (torch.float32, F64):
        step = TableStepFunction(torch.zeros(5, 5, dtype=dtype))
        labels, share = ref["blame"](step, 0, [[2, 3, 1], [4, 2, 3, 1]], [[3, 2, 1], [2, 2, 2, 1]], 0.7)
        assert labels == ["model", "model"] and share == 0.0


# --------------------------------------------------------------------------- stand-ins in the hidden checks


def test_beam_search_and_blame_are_graded_with_stand_ins_for_the_functions_they_use(expected_dir):
    """Broken length_normalised_score and sequence_log_prob must not also cost beam_search's and
    blame's points: their hidden checks swap in the test cells' independent versions, and put the
    student's back afterwards."""
    from autograder.checks import check_against_reference
    from submissions import hidden_substitutes, solution_sources, student_namespace

    answers = solution_sources("06_beam_search")
    namespace = student_namespace("06_beam_search", {k: answers[k] for k in ("beam", "blame")})

    def broken(*args, **kwargs):
        raise NotImplementedError()

    namespace.update(length_normalised_score=broken, sequence_log_prob=broken)
    for name in ("beam_search", "blame"):
        check_against_reference("06_beam_search", name, namespace[name],
                                substitutes=hidden_substitutes("06_beam_search", name, namespace))
        assert namespace["length_normalised_score"] is broken and namespace["sequence_log_prob"] is broken
        with pytest.raises(AssertionError, match=f"{name}, hidden case"):
            check_against_reference("06_beam_search", name, namespace[name])  # without the stand-ins it fails
