"""Hidden cases for 06_beam_search: seeded inputs the student never sees, edge cases included.

Every input varies on its own: first-order models (``TableStepFunction``) and models that read the
whole prefix (``RecurrentStepFunction``, where a prefix without its <bos>, or one token short, gets
other probabilities), the lecture's Jane example (``jane_model``), vocabularies of 2 to 9 tokens,
<bos> and <eos> at other ids than 0 and 1, float32 and float64. The objective: both penalties,
numbers and tensors, broadcasting, T = 1 and alpha = 0. The log-probability: sentences of 0 to 12
tokens, with and without <eos>, repeated tokens, the bos id among the tokens. The search: B = 1
(greedy), small beams, beams that cover the space (exhaustive search), alpha that changes the
ranking, max_len = 1, B > V, a model that never stops and one that stops at once. The error
analysis: dev sets with every label, pairs whose label alpha changes, no error (nan), an empty dev
set, exact ties (a uniform model: "model").

The search's answer must not depend on the precision: every model here is drawn again until, in a
trusted float64 search (``_search``), the candidates on either side of every cut and the ranked
results are at least ``GAP`` apart (``tests/test_oracles_06.py`` checks that the reference's ids
survive noise of 1e-4 on every log-probability, in float32). The Jane model has exact ties among
its unlisted words; its cases (B <= 2) never keep one to the end, which the same test checks. The
error analysis's scores are at least ``GAP`` apart, except for the ties made on purpose.
"""
import math

import torch

from autograder.checks import BUILD, prepare

F64 = torch.float64
CPU = torch.device("cpu")
GAP = 1e-3  # the least margin at a cut of the search, between ranked results, between two scores compared
JANE = {BUILD: "coursekit.toy_models:jane_model", "kwargs": {}}


# --------------------------------------------------------------------------- models


def _table(g, vocab, scale=2.5, eos=None, eos_shift=0.0):
    """A TableStepFunction: random scores for P(next | last token), <eos>'s column shifted."""
    scores = torch.randn(vocab, vocab, generator=g, dtype=F64) * scale
    if eos is not None:
        scores[:, eos] += eos_shift
    return {BUILD: "coursekit.toy_models:TableStepFunction", "kwargs": {"log_probs": scores.float()}}


def _recurrent(g, vocab, embed=4, hidden=6, eos=None, eos_shift=0.0, readout=2.0):
    """A RecurrentStepFunction with random weights (stored in float32, as the student gets them)."""
    def randn(*shape, k=1.0):
        return torch.randn(*shape, generator=g, dtype=F64) * k

    weights = dict(embedding=randn(vocab, embed), weight_in=randn(hidden, embed, k=1.5 / math.sqrt(embed)),
                   weight_hh=randn(hidden, hidden, k=1.2 / math.sqrt(hidden)),
                   readout=randn(vocab, hidden, k=readout), bias=randn(vocab, k=0.5))
    if eos is not None:
        weights["bias"][eos] += eos_shift
    return {BUILD: "coursekit.toy_models:RecurrentStepFunction",
            "kwargs": {k: v.float() for k, v in weights.items()}}


def _build(spec, dtype=F64):
    """The step function a spec names, made here on the CPU (trusted)."""
    return prepare(spec, CPU, dtype)


def _log_prob(step_fn, bos, tokens) -> float:
    """log P(tokens | bos), each prefix fed on its own, in float64."""
    ids = [bos, *tokens]
    return math.fsum(float(step_fn(torch.tensor([ids[:t]]))[0, ids[t]]) for t in range(1, len(ids)))


def _search(step_fn, bos, eos, width, max_len, alpha=0.0):
    """A trusted beam search (Python lists, one prefix at a time, float64): the ranked results
    [(tokens, score, log P)] and the least margin at a cut (the k-th kept candidate over the best
    dropped one) and between consecutive results."""
    beam, finished, gap = [([bos], 0.0)], [], math.inf
    for _ in range(max_len):
        candidates = []
        for ids, lp in beam:
            row = step_fn(torch.tensor([ids]))[0].double().tolist()
            candidates += [(lp + p, ids + [v]) for v, p in enumerate(row)]
        candidates.sort(key=lambda c: -c[0])
        k = width - len(finished)
        if len(candidates) > k:
            gap = min(gap, candidates[k - 1][0] - candidates[k][0])
        if any(not math.isfinite(lp) for lp, _ in candidates[:k]):
            gap = -math.inf  # a candidate of probability 0 kept: not a case for this exercise
        beam = []
        for lp, ids in candidates[:k]:
            (finished if ids[-1] == eos else beam).append((ids, lp))
        if not beam:
            break
    finished += beam
    ranked = sorted(((ids[1:], lp / len(ids[1:]) ** alpha, lp) for ids, lp in finished), key=lambda r: -r[1])
    for a, b in zip(ranked, ranked[1:]):
        gap = min(gap, a[1] - b[1])
    return ranked, gap


def _untied(g, make, bos, eos, width, max_len, alpha=0.0, accept=lambda ranked: True):
    """A model from ``make(g)`` whose search (at this width, max_len, alpha) is clear of ties by GAP
    and whose results ``accept`` likes: drawn again until it is."""
    for _ in range(3000):
        spec = make(g)
        ranked, gap = _search(_build(spec), bos, eos, width, max_len, alpha)
        if gap >= GAP and accept(ranked):
            return spec
    raise RuntimeError("no untied model found: loosen GAP or the condition")


def _ends(eos):
    return lambda tokens: tokens[-1:] == [eos]


# --------------------------------------------------------------------------- length_normalised_score


def length_normalised_score(g):
    def lengths(*shape, high=12, dtype=torch.long):  # shape () for a 0-d tensor
        return torch.randint(1, high + 1, shape, generator=g, dtype=dtype)

    def log_probs(*shape):
        return -30 * torch.rand(shape, generator=g, dtype=F64).float() - 0.01

    for penalty in ("average", "gnmt"):
        def case(note, args, kwargs=None, **kw):
            return dict(id=f"{penalty}: {note}", group=penalty, args=args,
                        kwargs={**(kwargs or {}), "penalty": penalty}, **kw)
        yield case("a float, T = 5, alpha = 0.7", [-7.3, 5, 0.7])
        yield case("a float, T = 3, alpha = 0.6", [-4.25, 3, 0.6])
        yield case("T = 1, alpha = 0.7", [-2.2, 1, 0.7])
        yield case("alpha = 0: log P unchanged", [-11.5, 9, 0.0])
        yield case("alpha = 1", [-11.5, 9, 1.0])
        yield case("alpha = 2, T = 14", [-20.0, 14, 2.0])
        yield case("a (6,) tensor of log P, a (6,) long tensor of lengths 1 to 12, alpha = 0.7",
                   [log_probs(6), lengths(6), 0.7])
        yield case("a (5,) tensor of log P and the int length 4, alpha = 0.5", [log_probs(5), 4, 0.5])
        yield case("broadcasting: (3, 1) log P against (4,) int32 lengths, alpha = 0.8",
                   [log_probs(3, 1), lengths(4, dtype=torch.int32), 0.8])
        yield case("a 0-d tensor of log P and a 0-d length tensor, alpha = 0.7", [log_probs(), lengths(), 0.7])
        yield case("float64 log P and lengths up to 40, alpha = 0.65", [log_probs(8), lengths(8, high=40), 0.65],
                   dtype=torch.float64)
    yield dict(id="penalty left out (average), alpha as a keyword", group="average", args=[-6.5, 7],
               kwargs=dict(alpha=0.7))
    yield dict(id="penalty given positionally ('gnmt')", group="gnmt", args=[-6.5, 7, 0.7, "gnmt"])


# --------------------------------------------------------------------------- sequence_log_prob


def _tokens(g, n, vocab, avoid=(), end=None):
    allowed = [i for i in range(vocab) if i not in avoid]
    ids = [allowed[int(i)] for i in torch.randint(len(allowed), (n,), generator=g)]
    return ids + ([end] if end is not None else [])


def sequence_log_prob(g):
    jane = _build(JANE)
    words = lambda sentence: [jane.ids[w] for w in sentence.split()]  # noqa: E731

    yield dict(id="first-order model, V=6, 4 tokens and <eos>", group="first-order model",
               args=[_table(g, 6), 0, _tokens(g, 4, 6, avoid=(0, 1), end=1)])
    yield dict(id="first-order model, V=8, bos=3, 8 tokens without <eos>, some repeated", group="first-order model",
               args=[_table(g, 8), 3, [5, 5, 2, 7, 7, 7, 0, 4]])
    yield dict(id="first-order model, V=5, the bos id among the tokens", group="first-order model",
               args=[_table(g, 5), 0, [2, 0, 3, 0, 1]])
    yield dict(id="first-order model, V=7, bos=1, a token at the start and the end", group="first-order model",
               args=[_table(g, 7), 1, [4, 2, 6, 4]])
    yield dict(id="first-order model in float64, V=6, 6 tokens", group="first-order model",
               args=[_table(g, 6), 0, _tokens(g, 5, 6, avoid=(0, 1), end=1)], dtype=torch.float64)

    yield dict(id="whole-prefix model, V=7, 5 tokens and <eos>", group="whole-prefix model",
               args=[_recurrent(g, 7, 4, 5), 0, _tokens(g, 5, 7, avoid=(0, 1), end=1)])
    yield dict(id="whole-prefix model, V=5, bos=2, 4 tokens", group="whole-prefix model",
               args=[_recurrent(g, 5, 3, 6), 2, _tokens(g, 4, 5)])
    yield dict(id="whole-prefix model, V=9, 12 tokens, one repeated four times", group="whole-prefix model",
               args=[_recurrent(g, 9, 5, 7), 0, [3, 3, 3, 3, 8, 2, 6, 6, 4, 7, 5, 1]])
    yield dict(id="whole-prefix model in float64, V=6, bos=5", group="whole-prefix model",
               args=[_recurrent(g, 6), 5, _tokens(g, 6, 6, avoid=(5,), end=0)], dtype=torch.float64)
    yield dict(id="the lecture's model: 'jane visits africa in september <eos>'", group="whole-prefix model",
               args=[JANE, 0, words("jane visits africa in september <eos>")])
    yield dict(id="the lecture's model: 'jane is going to be visiting africa'", group="whole-prefix model",
               args=[JANE, 0, words("jane is going to be visiting africa")])

    yield dict(id="an empty sentence (first-order model)", group="edge cases", args=[_table(g, 5), 0, []])
    yield dict(id="an empty sentence (whole-prefix model)", group="edge cases", args=[_recurrent(g, 6), 1, []])
    yield dict(id="one token, <eos>", group="edge cases", args=[_recurrent(g, 6), 0, [1]])
    yield dict(id="one token, not <eos> (first-order model, bos=4)", group="edge cases",
               args=[_table(g, 6), 4, [2]])
    yield dict(id="two tokens, the same (whole-prefix model, V=4)", group="edge cases",
               args=[_recurrent(g, 4, 3, 4), 0, [3, 3]])
    yield dict(id="a vocabulary of two tokens, bos=1", group="edge cases", args=[_table(g, 2), 1, [1, 0, 1]])


# --------------------------------------------------------------------------- beam_search


def beam_search(g):
    def case(group, note, model, bos, eos, width, max_len, alpha=None, positional=False, **kw):
        args, kwargs = [model, bos, eos, width, max_len], {}
        if alpha is not None and positional:
            args.append(alpha)
        elif alpha is not None:
            kwargs["alpha"] = alpha
        return dict(id=f"B={width}, max_len={max_len}" + (f", alpha={alpha}" if alpha else "") + f": {note}",
                    group=group, args=args, kwargs=kwargs, **kw)

    def table(vocab, **kw):
        return lambda g: _table(g, vocab, **kw)

    def recurrent(vocab, **kw):
        return lambda g: _recurrent(g, vocab, **kw)

    def early(eos, max_len):  # some hypothesis finishes with <eos> before the last step
        return lambda ranked: any(t[-1] == eos and len(t) < max_len for t, _, _ in ranked)

    def mixed(eos, max_len, width):  # the beam fills, finishes early, and truncates
        return lambda ranked: (len(ranked) == width and early(eos, max_len)(ranked)
                               and any(t[-1] != eos for t, _, _ in ranked))

    def reranked(ranked):  # alpha changes the order of the results
        return [t for t, _, _ in ranked] != [t for t, _, _ in sorted(ranked, key=lambda r: -r[2])]

    group = "greedy (B = 1)"
    yield case(group, "first-order model, V=6, stops at <eos>",
               _untied(g, table(6), 0, 1, 1, 7, accept=lambda r: r[0][0][-1] == 1 and len(r[0][0]) >= 3),
               0, 1, 1, 7)
    yield case(group, "first-order model, V=8, never stops: truncated",
               _untied(g, table(8, eos=1, eos_shift=-3.0), 0, 1, 1, 5,
                       accept=lambda r: r[0][0][-1] != 1 and len(set(r[0][0])) >= 3),
               0, 1, 1, 5)
    yield case(group, "whole-prefix model, V=7, stops at <eos>",
               _untied(g, recurrent(7), 0, 1, 1, 8, accept=lambda r: r[0][0][-1] == 1 and len(r[0][0]) >= 3),
               0, 1, 1, 8)
    yield case(group, "whole-prefix model, V=5, bos=4, eos=2",
               _untied(g, recurrent(5), 4, 2, 1, 6, accept=lambda r: len(set(r[0][0])) >= 3), 4, 2, 1, 6)
    yield case(group, "whole-prefix model, V=6, alpha=0.7 (one result, normalised)",
               _untied(g, recurrent(6), 0, 1, 1, 6, 0.7, accept=lambda r: len(set(r[0][0])) >= 3), 0, 1, 1, 6, 0.7)
    yield case(group, "the lecture's model: 'jane is going to be visiting africa in september'", JANE, 0, 1, 1, 15)
    yield case(group, "the lecture's model, cut at 'jane is going to be'", JANE, 0, 1, 1, 5)

    group = "small beams"
    for vocab, width, max_len, make, note in ((6, 2, 5, table, "first-order model, V=6"),
                                              (8, 3, 6, table, "first-order model, V=8"),
                                              (7, 3, 6, recurrent, "whole-prefix model, V=7"),
                                              (8, 5, 4, recurrent, "whole-prefix model, V=8"),
                                              (5, 4, 6, table, "first-order model, V=5")):
        yield case(group, note, _untied(g, make(vocab, eos=1, eos_shift=1.0), 0, 1, width, max_len,
                                        accept=mixed(1, max_len, width)), 0, 1, width, max_len)
    yield case(group, "whole-prefix model, V=6, bos=2, eos=5",
               _untied(g, recurrent(6, eos=5, eos_shift=1.0), 2, 5, 4, 5, accept=mixed(5, 5, 4)), 2, 5, 4, 5)
    yield case(group, "the lecture's model: 'jane is visiting africa in september' first", JANE, 0, 1, 2, 15)

    group = "exhaustive (B covers the space)"
    # (A first-order model ties sentences that visit the same transitions in another order, such as
    # <bos> <bos> a and <bos> a <bos>: its exhaustive cases stop at two tokens, or have no other token.)
    for vocab, max_len, make, note, alpha in ((5, 2, table, "first-order model, V=5", None),
                                              (8, 2, table, "first-order model, V=8", None),
                                              (2, 5, table, "first-order model, V=2: only <bos> and <eos>", None),
                                              (3, 4, recurrent, "whole-prefix model, V=3", None),
                                              (4, 3, recurrent, "whole-prefix model, V=4", None),
                                              (3, 3, recurrent, "whole-prefix model, V=3", 0.5)):
        width = vocab ** max_len
        yield case(group, note, _untied(g, make(vocab), 0, 1, width, max_len, alpha or 0.0), 0, 1, width,
                   max_len, alpha)
    yield case(group, "a beam wider than the space, B=40 > V^max_len=16, V=4", _untied(g, table(4), 0, 1, 40, 2),
               0, 1, 40, 2)

    group = "length normalisation (alpha > 0)"
    for vocab, width, max_len, alpha, make, note, ids in (
            (6, 3, 6, 0.7, table, "first-order model, V=6", (0, 1)),
            (7, 4, 6, 1.0, recurrent, "whole-prefix model, V=7", (0, 1)),
            (6, 3, 5, 0.5, recurrent, "whole-prefix model, V=6", (0, 1)),
            (8, 5, 4, 0.7, table, "first-order model, V=8, bos=7, eos=3", (7, 3))):
        bos, eos = ids
        yield case(group, note + ": alpha changes the ranking",
                   _untied(g, make(vocab, eos=eos, eos_shift=1.0), bos, eos, width, max_len, alpha,
                           accept=lambda r, eos=eos, max_len=max_len: reranked(r) and early(eos, max_len)(r)),
                   bos, eos, width, max_len, alpha)
    yield case(group, "whole-prefix model, V=5, alpha given positionally",
               _untied(g, recurrent(5, eos=1, eos_shift=1.0), 0, 1, 3, 5, 0.8, accept=reranked),
               0, 1, 3, 5, 0.8, positional=True)
    yield case(group, "the lecture's model: the longer translation first", JANE, 0, 1, 2, 15, 0.7)

    group = "edge cases"
    yield case(group, "max_len=1: one step, V=6", _untied(g, table(6), 0, 1, 3, 1), 0, 1, 3, 1)
    yield case(group, "a beam wider than the vocabulary, B=6 > V=4", _untied(g, table(4), 0, 1, 6, 3), 0, 1, 6, 3)
    yield case(group, "bos=5, eos=0 (whole-prefix model, V=6)",
               _untied(g, recurrent(6, eos=0, eos_shift=1.0), 5, 0, 3, 5, accept=early(0, 5)), 5, 0, 3, 5)
    yield case(group, "<eos> unlikely: every hypothesis truncated at max_len",
               _untied(g, table(5, eos=1, eos_shift=-6.0), 0, 1, 3, 4,
                       accept=lambda r: all(t[-1] != 1 for t, _, _ in r)), 0, 1, 3, 4)
    yield case(group, "<eos> likely at once: '<eos>' alone is a result (whole-prefix model, V=6)",
               _untied(g, recurrent(6, eos=1, eos_shift=3.0), 0, 1, 3, 5, accept=lambda r: [1] in [t for t, _, _ in r]
                       and any(len(t) > 1 for t, _, _ in r)), 0, 1, 3, 5)
    yield case(group, "float64 model, B=3 (whole-prefix model, V=7)",
               _untied(g, recurrent(7, eos=1, eos_shift=1.0), 0, 1, 3, 5, accept=early(1, 5)), 0, 1, 3, 5,
               dtype=torch.float64)


# --------------------------------------------------------------------------- blame


def _sample(g, step_fn, bos, eos, max_len):
    """A sentence drawn from the model (ancestral sampling), ended with <eos> at max_len."""
    ids = [bos]
    for _ in range(max_len - 1):
        p = step_fn(torch.tensor([ids]))[0].double().exp()
        ids.append(int(torch.multinomial(p, 1, generator=g)))
        if ids[-1] == eos:
            return ids[1:]
    return ids[1:] + [eos]


def _dev_set(g, spec, bos, eos, size, alpha, flips=0, max_len=6):
    """(references, hypotheses): references drawn from the model; hypotheses the reference itself,
    another draw, or what the trusted search finds (B = 1 or 2), so that every label comes up. Each
    pair's two scores are GAP apart at alpha and at 0; ``flips`` pairs are ones whose label alpha
    changes."""
    model = _build(spec)

    def score(tokens, a):
        return _log_prob(model, bos, tokens) / len(tokens) ** a

    def label(ref, hyp, a):
        return "none" if ref == hyp else "search" if score(ref, a) > score(hyp, a) else "model"

    searched = {w: _search(model, bos, eos, w, max_len)[0][0][0] for w in (1, 2)}
    for _ in range(5000):
        references, hypotheses = [], []
        while len(references) < size:
            ref = _sample(g, model, bos, eos, max_len)
            kind = int(torch.randint(4, (), generator=g))
            hyp = list(ref) if kind == 0 else searched[kind] if kind < 3 else _sample(g, model, bos, eos, max_len)
            if ref != hyp and min(abs(score(ref, a) - score(hyp, a)) for a in {0.0, alpha}) < GAP:
                continue
            if len(references) < flips and label(ref, hyp, alpha) == label(ref, hyp, 0.0):
                continue
            references.append(ref)
            hypotheses.append(hyp)
        labels = [label(r, h, alpha) for r, h in zip(references, hypotheses)]
        if {"none", "search", "model"} <= set(labels) and len(set(map(tuple, references))) >= size * 2 // 3:
            order = torch.randperm(size, generator=g).tolist()
            return [references[i] for i in order], [hypotheses[i] for i in order]
    raise RuntimeError("no dev set with every label")


def blame(g):
    returns = ["labels", "search share"]
    jane = _build(JANE)
    words = lambda sentence: [jane.ids[w] for w in sentence.split()] + [jane.eos]  # noqa: E731
    visiting, visits = words("jane is visiting africa in september"), words("jane visits africa in september")
    going = words("jane is going to be visiting africa in september")

    def case(group, note, spec, bos, dev, alpha=None, **kw):
        kwargs = {} if alpha is None else dict(alpha=alpha)
        return dict(id=note + (f", alpha={alpha}" if alpha is not None else ""), group=group, returns=returns,
                    args=[spec, bos, *dev], kwargs=kwargs, **kw)

    group = "raw log-probabilities (alpha = 0)"
    spec = _table(g, 8, scale=1.5)
    yield case(group, "first-order model, V=8, 10 sentences, alpha left out", spec, 0, _dev_set(g, spec, 0, 1, 10, 0.0))
    spec = _recurrent(g, 7, readout=0.8, eos=1, eos_shift=-1.0)
    yield case(group, "whole-prefix model, V=7, 12 sentences", spec, 0, _dev_set(g, spec, 0, 1, 12, 0.0), 0.0)
    spec = _recurrent(g, 6, readout=0.8, eos=2, eos_shift=-1.0)
    yield case(group, "whole-prefix model, V=6, bos=4, eos=2, 8 sentences", spec, 4,
               _dev_set(g, spec, 4, 2, 8, 0.0))
    yield case(group, "the lecture's model, 5 sentences", JANE, 0,
               ([visiting, visits, going, visiting, going], [going, visiting, visiting, visiting, going]))

    group = "length normalisation (alpha > 0)"
    for vocab, size, alpha, make, ids in ((8, 10, 0.7, _table, (0, 1)), (7, 9, 1.0, _recurrent, (0, 1)),
                                          (5, 8, 0.5, _recurrent, (3, 0))):
        bos, eos = ids
        spec = make(g, vocab) if make is _table else make(g, vocab, readout=0.8, eos=eos, eos_shift=-1.0)
        kind = "first-order" if make is _table else "whole-prefix"
        yield case(group, f"{kind} model, V={vocab}, bos={bos}, eos={eos}, {size} sentences, two that alpha "
                   "changes", spec, bos, _dev_set(g, spec, bos, eos, size, alpha, flips=2), alpha)
    yield case(group, "the lecture's model, 5 sentences", JANE, 0,
               ([visiting, visits, going, visiting, going], [going, visiting, visiting, visiting, going]), 0.7)

    group = "edge cases"
    spec = _recurrent(g, 6, readout=0.8, eos=1, eos_shift=-1.0)
    refs = [_sample(g, _build(spec), 0, 1, 6) for _ in range(4)]
    yield case(group, "every hypothesis right: no error, share nan", spec, 0, (refs, [list(r) for r in refs]))
    yield case(group, "an empty dev set", spec, 0, ([], []))
    uniform = {BUILD: "coursekit.toy_models:TableStepFunction", "kwargs": {"log_probs": torch.zeros(5, 5)}}
    yield case(group, "a uniform model: translations of one length tie, and a tie is the model's fault", uniform, 0,
               ([[2, 3, 1], [4, 4, 1], [2, 2, 2, 1], [3, 1]], [[3, 2, 1], [4, 1], [2, 3, 4, 1], [3, 1]]))
    yield case(group, "a uniform model, alpha=0.7: the ties stay ties", uniform, 0,
               ([[2, 3, 1], [4, 2, 3, 1]], [[3, 2, 1], [2, 2, 2, 1]]), 0.7)
    yield case(group, "one sentence, the search's fault", JANE, 0, ([visiting], [going]))
    yield case(group, "hypotheses truncated without <eos>", spec, 0,
               ([[2, 3, 1], [4, 1], [5, 5, 1]], [[2, 3, 2], [4, 4], [5, 5, 1]]))


CASES = {
    "length_normalised_score": length_normalised_score,
    "sequence_log_prob": sequence_log_prob,
    "beam_search": beam_search,
    "blame": blame,
}
