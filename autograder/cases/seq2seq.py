"""Hidden cases for 04_seq2seq: seeded inputs the student never sees, edge cases included.

Every input varies on its own. BLEU: corpora of noisy translations with one to three references of
different lengths per sentence, every order from 1 to 4, candidates shorter and longer than their
references, ties between reference lengths, repeated words, and the corpora whose score is 0. The
encoder: rows of every length in one batch, a row of one token, no padding, another pad id (with 0 a
real token), an RNN cell instead of a GRU cell, the pad id's embedding an ordinary vector. The loss
and the decoder: a ``TinySeq2Seq`` built alike on both sides, targets of very different lengths and
trailing all-pad columns; the decoder's argmax kept at least ``GREEDY_GAP`` clear of the runner-up
at every step (checked here in float64 and float32), and sentences that stop at the first step,
never stop, or stop exactly at ``max_len``.
"""
import math

import torch

from autograder.checks import BUILD
from coursekit.toy_models import TinySeq2Seq
from coursekit.translation import BOS, EOS

F64 = torch.float64

# --------------------------------------------------------------------------- bleu

WORDS = ("the cat dog sat on mat a is there was in house red big small ran to my friend saw it and "
         "with day old man woman came back home went we they").split()


def _choice(g, seq):
    return seq[int(torch.randint(len(seq), (), generator=g))]


def _sentence(g, n):
    return [_choice(g, WORDS) for _ in range(n)]


def _noisy(g, sentence, keep=0.8):
    """A copy of ``sentence`` with words kept, substituted, dropped or inserted at random."""
    out = []
    for word in sentence:
        u = float(torch.rand((), generator=g))
        if u < keep:
            out.append(word)
        elif u < keep + (1 - keep) / 2:
            out.append(_choice(g, WORDS))
        elif u < keep + 3 * (1 - keep) / 4:
            continue
        else:
            out += [word, _choice(g, WORDS)]
    return out


def _corpus(g, sentences, max_refs=3, lengths=(5, 20), keep=0.8):
    """(candidates, references): each candidate and its 1..max_refs references noisy copies of one sentence."""
    candidates, references = [], []
    for _ in range(sentences):
        meaning = _sentence(g, int(torch.randint(lengths[0], lengths[1] + 1, (), generator=g)))
        refs = int(torch.randint(1, max_refs + 1, (), generator=g))
        candidates.append(_noisy(g, meaning, keep))
        references.append([_noisy(g, meaning, 0.9) for _ in range(refs)])
    return candidates, references


def bleu(g):
    for sentences, max_refs, max_n in ((8, 1, 4), (12, 3, 4), (20, 2, 4), (10, 3, 3), (15, 2, 2), (9, 3, 1)):
        candidates, references = _corpus(g, sentences, max_refs)
        refs = "one reference each" if max_refs == 1 else f"1 to {max_refs} references each"
        yield dict(id=f"{sentences} noisy translations, {refs}, max_n={max_n}", group="corpora",
                   args=[candidates, references], kwargs=dict(max_n=max_n))
    candidates, references = _corpus(g, 40, 3, lengths=(3, 30), keep=0.6)
    yield dict(id="40 sentences of 3 to 30 words, loose translations, max_n left out (4)", group="corpora",
               args=[candidates, references])

    candidates, references = _corpus(g, 10, 1)
    short = [c[:max(1, len(c) * 2 // 3)] for c in candidates]
    yield dict(id="candidates a third shorter than their references: the brevity penalty", group="lengths",
               args=[short, references])
    long = [c + _sentence(g, 3) for c in candidates]
    yield dict(id="candidates longer than their references: no penalty", group="lengths", args=[long, references])
    meanings = [_sentence(g, 12) for _ in range(6)]
    candidates = [m[:7] + _sentence(g, 3) for m in meanings]  # 10 words
    references = [[m[:3], m[:11], m[:7], m + _sentence(g, 3)] for m in meanings]  # 3, 11, 7, 15 words
    yield dict(id="four references of 3, 11, 7 and 15 words for candidates of 10: the closest is 11",
               group="lengths", args=[candidates, references], kwargs=dict(max_n=2))
    references = [[m[:11], m[:9]] for m in meanings]  # 11 and 9 words, both one away from 10
    yield dict(id="references of 11 and 9 words for candidates of 10: a tie, the shorter counts",
               group="lengths", args=[candidates, references], kwargs=dict(max_n=2))
    candidates, references = _corpus(g, 5, 1)
    same = [[_choice(g, WORDS) if i % 5 == 2 else w for i, w in enumerate(r[0])] for r in references]
    yield dict(id="candidates exactly as long as their references (c = r)", group="lengths",
               args=[same, references])
    candidates, references = _corpus(g, 6, 2)
    candidates[2] = []
    yield dict(id="one empty candidate among six", group="lengths", args=[candidates, references])

    yield dict(id="'the the the the the the the' against two references (Papineni et al.), max_n=1",
               group="clipping", args=[[["the"] * 7], [["the cat is on the mat".split(),
                                                        "there is a cat on the mat".split()]]],
               kwargs=dict(max_n=1))
    yield dict(id="a repeated word, clipped by the larger of its counts in two references, max_n=2",
               group="clipping", args=[[["the", "cat", "the", "the", "cat", "the"]],
                                       [["the cat sat on the mat".split(), "a cat and the dog and the cat".split()]]],
               kwargs=dict(max_n=2))
    candidates, references = _corpus(g, 8, 2)
    candidates[1] = ["the"] * 6 + candidates[1]
    candidates[4] = candidates[4][:4] * 3
    yield dict(id="8 translations, two of them repeating words and phrases", group="clipping",
               args=[candidates, references])
    yield dict(id="a repeated bigram: 'the cat the cat the cat on the mat', max_n=3", group="clipping",
               args=[["the cat the cat the cat on the mat".split()],
                     [["the cat is on the mat".split(), "the cat the dog on the mat".split()]]],
               kwargs=dict(max_n=3))

    candidates, references = _corpus(g, 4, 2)
    yield dict(id="no word of any candidate in its references", group="zero BLEU and empty corpora",
               args=[[["zzz"] * len(c) for c in candidates], references])
    yield dict(id="unigrams match, bigrams never do: 0.0 at max_n=4", group="zero BLEU and empty corpora",
               args=[[["mat", "the", "on", "cat"], ["home", "went", "we"]],
                     [["the cat on the mat".split()], ["we went home".split()]]])
    yield dict(id="candidates of 3 words: no 4-grams at all", group="zero BLEU and empty corpora",
               args=[[["the", "cat", "sat"], ["on", "the", "mat"]], [[["the", "cat", "sat"]], [["on", "the", "mat"]]]])
    yield dict(id="an empty corpus", group="zero BLEU and empty corpora", args=[[], []])
    yield dict(id="every candidate empty", group="zero BLEU and empty corpora",
               args=[[[], []], [[["the", "cat"]], [["a", "dog", "ran"]]]], kwargs=dict(max_n=2))


# --------------------------------------------------------------------------- encoder_forward


def _embedding(g, vocab, embed, scale=1.0):
    return {BUILD: "coursekit.toy_models:embedding_layer",
            "kwargs": {"weight": torch.randn(vocab, embed, generator=g) * scale}}


def _cell(g, embed, hidden, kind="gru", scale=1.0):
    rows = (3 if kind == "gru" else 1) * hidden
    s = scale / math.sqrt(hidden)
    return {BUILD: "coursekit.toy_models:recurrent_cell",
            "kwargs": {"weight_ih": torch.randn(rows, embed, generator=g) * s,
                       "weight_hh": torch.randn(rows, hidden, generator=g) * s,
                       "bias_ih": torch.randn(rows, generator=g) * s,
                       "bias_hh": torch.randn(rows, generator=g) * s, "kind": kind}}


def _ids(g, n, vocab, pad_id=0, low=1):
    """n random token ids in [low, vocab), none of them pad_id; with a pad id other than 0, the id 0
    is a real token, and one of them."""
    allowed = [i for i in range(vocab) if i != pad_id and (i >= low or i == 0 != pad_id)]
    ids = torch.tensor(allowed)[torch.randint(len(allowed), (n,), generator=g)]
    if pad_id != 0 and n > 1:
        ids[int(torch.randint(n, (), generator=g))] = 0
    return ids


def _padded(g, lengths, vocab, pad_id=0, width=None, low=1):
    """(B, S) long, row b holding lengths[b] random ids, right-padded with pad_id."""
    width = width or max(lengths)
    out = torch.full((len(lengths), width), pad_id, dtype=torch.long)
    for b, n in enumerate(lengths):
        out[b, :n] = _ids(g, n, vocab, pad_id, low)
    return out


def encoder_forward(g):
    def case(**kw):
        return dict(returns=["outputs", "h_last"], **kw)

    for lengths, vocab, embed, hidden in (((6, 3, 1), 12, 4, 5), ((8, 2, 5, 8, 1), 20, 6, 3),
                                          ((4, 7, 10, 2), 30, 3, 8), ((25, 12), 15, 5, 4)):
        yield case(id=f"rows of lengths {lengths}, V={vocab}, E={embed}, H={hidden}", group="batches",
                   args=[_embedding(g, vocab, embed), _cell(g, embed, hidden, scale=2.0), _padded(g, lengths, vocab)])
    yield case(id="lengths (5, 1, 3), pad_id given as a keyword", group="batches",
               args=[_embedding(g, 10, 4), _cell(g, 4, 6, scale=2.0), _padded(g, (5, 1, 3), 10)],
               kwargs=dict(pad_id=0))

    yield case(id="no padding: B=3, S=5", group="edge cases",
               args=[_embedding(g, 9, 4), _cell(g, 4, 5, scale=2.0), _padded(g, (5, 5, 5), 9)])
    yield case(id="one sentence (B=1) without padding, S=7", group="edge cases",
               args=[_embedding(g, 11, 3), _cell(g, 3, 4, scale=2.0), _padded(g, (7,), 11)])
    yield case(id="one sentence (B=1) of 2 tokens padded to 6", group="edge cases",
               args=[_embedding(g, 11, 3), _cell(g, 3, 4, scale=2.0), _padded(g, (2,), 11, width=6)])
    yield case(id="one token per row (S=1), B=4", group="edge cases",
               args=[_embedding(g, 8, 5), _cell(g, 5, 3, scale=2.0), _padded(g, (1, 1, 1, 1), 8)])
    yield case(id="float64 inputs: rows of lengths (4, 2, 6)", group="edge cases", dtype=F64,
               args=[_embedding(g, 10, 4), _cell(g, 4, 5, scale=2.0), _padded(g, (4, 2, 6), 10)])

    yield case(id="an RNN cell (nn.RNNCell) instead of a GRU cell: lengths (5, 2, 4)", group="other cells and pad ids",
               args=[_embedding(g, 10, 4), _cell(g, 4, 6, kind="rnn", scale=1.5), _padded(g, (5, 2, 4), 10)])
    yield case(id="pad_id=7, and 0 a real token: lengths (3, 6, 1)", group="other cells and pad ids",
               args=[_embedding(g, 9, 4), _cell(g, 4, 5, scale=2.0), _padded(g, (3, 6, 1), 9, pad_id=7)],
               kwargs=dict(pad_id=7))
    yield case(id="large embeddings and weights: saturated gates, lengths (6, 4, 9)", group="other cells and pad ids",
               args=[_embedding(g, 12, 5, scale=4.0), _cell(g, 5, 4, scale=6.0), _padded(g, (6, 4, 9), 12)])


# --------------------------------------------------------------------------- the translation model


def _model_kwargs(g, vocab, embed, hidden, pad_id=0, scale=1.5):
    """The weights of a TinySeq2Seq, every matrix drawn on its own."""
    s = scale / math.sqrt(hidden)

    def randn(*shape, k=s):
        return torch.randn(*shape, generator=g, dtype=F64) * k

    weights = dict(embedding=randn(vocab, embed, k=1.0),
                encoder_weight_ih=randn(3 * hidden, embed), encoder_weight_hh=randn(3 * hidden, hidden),
                encoder_bias_ih=randn(3 * hidden), encoder_bias_hh=randn(3 * hidden),
                decoder_weight_ih=randn(3 * hidden, embed + hidden), decoder_weight_hh=randn(3 * hidden, hidden),
                decoder_bias_ih=randn(3 * hidden), decoder_bias_hh=randn(3 * hidden),
                readout_weight=randn(vocab, 2 * hidden, k=2 * scale / math.sqrt(2 * hidden)),
                readout_bias=randn(vocab, k=0.5))
    return dict({k: v.float() for k, v in weights.items()}, pad_id=pad_id)  # stored as the student gets them


def _model(kwargs):
    return {BUILD: "coursekit.toy_models:TinySeq2Seq", "kwargs": kwargs}


def _targets(g, lengths, vocab, pad_id=0, width=None, low=3):
    """(B, T) long: row b is <bos>, lengths[b] random ids, <eos>, then pad_id."""
    width = width or max(lengths) + 2
    out = torch.full((len(lengths), width), pad_id, dtype=torch.long)
    for b, n in enumerate(lengths):
        out[b, 0], out[b, n + 1] = BOS, EOS
        out[b, 1:n + 1] = _ids(g, n, vocab, pad_id, low)
    return out


def teacher_forcing_loss(g):
    def case(vocab, embed, hidden, src_lengths, tgt_lengths, pad_id=0, width=None, **kw):
        args = [_model(_model_kwargs(g, vocab, embed, hidden, pad_id)), _padded(g, src_lengths, vocab, pad_id),
                _targets(g, tgt_lengths, vocab, pad_id, width)]
        return dict(args=args, **kw)

    for vocab, embed, hidden, src, tgt in ((12, 4, 5, (5, 3, 4), (4, 6, 2)), (20, 6, 3, (2, 7, 7, 4), (5, 1, 8, 3)),
                                           (30, 5, 8, (9, 4, 6, 3, 8, 2), (7, 7, 2, 9, 4, 5))):
        yield case(vocab, embed, hidden, src, tgt, id=f"B={len(src)}, V={vocab}, E={embed}, H={hidden}, "
                   f"target lengths {tgt}", group="batches")
    yield case(10, 4, 4, (3, 5), (3, 2), id="pad_id=0 given as a keyword", group="batches", kwargs=dict(pad_id=0))

    yield case(15, 4, 6, (4, 12, 2), (1, 15, 3), id="targets of 1, 15 and 3 words: the mean is per token",
               group="padding")
    yield case(12, 3, 5, (5, 2), (2, 4), width=10, id="four trailing columns of padding in every row",
               group="padding")
    yield case(18, 5, 4, (1, 9, 3, 6), (12, 1, 6, 2), id="sources of 1 to 9 tokens, targets of 1 to 12 words",
               group="padding")

    yield case(9, 3, 4, (4,), (5,), id="one sentence pair (B=1)", group="edge cases")
    yield case(10, 4, 5, (3, 2, 4), (0, 0, 0), id="empty targets: '<bos> <eos>' only (T=2)", group="edge cases")
    yield case(14, 4, 3, (6, 6), (4, 4), id="no padding in the targets or the sources", group="edge cases")
    yield case(11, 4, 5, (3, 6, 2), (5, 2, 7), id="float64 inputs", group="edge cases", dtype=F64)

    for vocab, src, tgt in ((12, (3, 5, 2), (4, 1, 6)), (16, (6, 2), (2, 7))):
        pad = vocab - 1
        yield case(vocab, 4, 5, src, tgt, pad_id=pad, kwargs=dict(pad_id=pad), group="another pad id",
                   id=f"pad_id={pad} (the model's too), 0 a real token, target lengths {tgt}")


# --------------------------------------------------------------------------- greedy_decode

GREEDY_GAP = 0.2  # the least margin of the argmax over the runner-up, at every step of the greedy path


def _greedy_path(kwargs, src, max_len, dtype):
    """The greedy tokens and the smallest top-1 margin along the way, computed here (trusted)."""
    model = TinySeq2Seq(**{k: v.to(dtype) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()})
    with torch.no_grad():
        memory, state = model.encode(src[None])
        prev, out, gap = torch.tensor([BOS]), [], math.inf
        for _ in range(max_len):
            logits, state = model.decode_step(prev, state, memory, src[None] != model.pad_id)
            top = logits[0].topk(2).values
            gap = min(gap, float(top[0] - top[1]))
            prev = logits.argmax(-1)
            out.append(int(prev))
            if out[-1] == EOS:
                break
    return out, gap


def _decoder_kwargs(g, vocab, embed, hidden, eos_bias=0.0):
    """A TinySeq2Seq whose readout leans on the decoder's state more than on c (random decoders
    otherwise repeat one token), and that never emits <pad> or <bos>, as a trained one would not."""
    kwargs = _model_kwargs(g, vocab, embed, hidden, scale=2.0)
    kwargs["readout_weight"][:, :hidden] *= 3.0  # the s_t columns
    kwargs["readout_weight"][:, hidden:] *= 0.6  # the c columns
    kwargs["readout_bias"][:BOS + 1] -= 10.0
    kwargs["readout_bias"][EOS] += eos_bias
    return kwargs


def _decodable(g, vocab, embed, hidden, src_len, max_len, stop, eos_bias=0.0, ends_in_eos=True, distinct=0):
    """(model kwargs, src) whose greedy output stops as asked: ``stop`` = (first, last) step at which
    <eos> may come (1-based), or None for never within ``max_len``; untied by GREEDY_GAP throughout,
    the same in float32, and with at least ``distinct`` different tokens besides <eos>."""
    for _ in range(2000):
        kwargs = _decoder_kwargs(g, vocab, embed, hidden, eos_bias)
        src = _ids(g, src_len, vocab, low=4)
        if ends_in_eos:
            src[-1] = EOS
        out, gap = _greedy_path(kwargs, src, max_len, F64)
        if gap < GREEDY_GAP or len(set(out) - {EOS}) < distinct:
            continue
        ended = out[-1] == EOS
        if (stop is None and not ended) or (stop is not None and ended and stop[0] <= len(out) <= stop[1]):
            if _greedy_path(kwargs, src, max_len, torch.float32)[0] == out:
                return kwargs, src
    raise RuntimeError("no decodable model found: loosen GREEDY_GAP or the stopping rule")


def greedy_decode(g):
    def case(kwargs, src, max_len, **kw):
        return dict(args=[_model(kwargs), src, max_len], **kw)

    for vocab, embed, hidden, src_len, max_len in ((10, 4, 6, 5, 15), (16, 6, 8, 8, 20), (12, 3, 8, 3, 12)):
        kwargs, src = _decodable(g, vocab, embed, hidden, src_len, max_len, stop=(5, max_len - 2), distinct=3)
        yield case(kwargs, src, max_len, group="sentences",
                   id=f"V={vocab}, E={embed}, H={hidden}, a source of {src_len}: <eos> before max_len={max_len}")
    kwargs, src = _decodable(g, 16, 6, 8, 6, 25, stop=(4, 23), distinct=3)
    yield case(kwargs, src, 25, group="sentences", id="one model, two sources: the first, of 6 tokens")
    first, _ = _greedy_path(kwargs, src, 25, F64)
    for _ in range(2000):
        other = _ids(g, 9, 16, low=4)
        other[-1] = EOS
        out, gap = _greedy_path(kwargs, other, 25, F64)
        if gap >= GREEDY_GAP and out != first and len(set(out) - {EOS}) >= 2 \
                and _greedy_path(kwargs, other, 25, torch.float32)[0] == out:
            break
    else:
        raise RuntimeError("no second source with another, untied translation")
    yield case(kwargs, other, 25, group="sentences", id="one model, two sources: the second, of 9 tokens")

    kwargs, src = _decodable(g, 10, 4, 5, 4, 10, stop=(1, 1), eos_bias=25.0)
    yield case(kwargs, src, 10, group="stopping", id="<eos> at the first step: [<eos>]")
    kwargs, src = _decodable(g, 16, 6, 8, 6, 12, stop=None, eos_bias=-25.0, distinct=3)
    yield case(kwargs, src, 12, group="stopping", id="never <eos>: max_len=12 tokens")
    kwargs, src = _decodable(g, 16, 6, 8, 5, 30, stop=(5, 20), distinct=3)
    length = len(_greedy_path(kwargs, src, 30, F64)[0])
    yield case(kwargs, src, length, group="stopping", id="<eos> exactly at the last step max_len allows")
    yield case(kwargs, src, length - 1, group="stopping", id="max_len one short of the <eos>: cut before it")
    yield case(kwargs, src, 0, group="stopping", id="max_len=0: []")
    yield case(kwargs, src, 1, group="stopping", id="max_len=1: the first token only")

    kwargs, src = _decodable(g, 12, 4, 6, 1, 12, stop=(3, 10), distinct=2)
    yield case(kwargs, src, 12, group="sources", id="a source of one token, <eos>")
    kwargs, src = _decodable(g, 14, 5, 6, 6, 15, stop=(3, 13), ends_in_eos=False, distinct=2)
    yield case(kwargs, src, 15, group="sources", id="a source without <eos> at its end")
    kwargs, src = _decodable(g, 16, 6, 8, 30, 20, stop=(3, 18), distinct=2)
    yield case(kwargs, src, 20, group="sources", id="a source of 30 tokens")


CASES = {
    "bleu": bleu,
    "encoder_forward": encoder_forward,
    "teacher_forcing_loss": teacher_forcing_loss,
    "greedy_decode": greedy_decode,
}
