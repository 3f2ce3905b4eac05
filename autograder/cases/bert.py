"""Hidden cases for 09_bert: seeded inputs the student never sees, edge cases included.

Masking: batches of [CLS] ... [SEP] [PAD]... sequences and of packed pairs, in the course's vocabulary and in
bert-base-uncased's ([CLS] = 101, [MASK] = 103, ordinary pieces from 999, 30,522 of them), with special masks that
are not a rule on the ids (words the caller protects, an [UNK] that is not special). The student's float32 u is kept
GAP away from every threshold (rate, 0.8, 0.9) and u[..., 2] * (vocab_size - first_ordinary) at least FRACTION away
from a whole number, so that float32 and float64 arithmetic decide alike (``clear_uniforms``;
tests/test_oracles_09.py checks it); every ordinary case holds chosen positions of the three kinds and special
positions drawn below the rate (which must stay). The cases on the thresholds are float64 (the student receives
float64 u), with u exactly at the rate, at 0.8, at 0.9 and at 0. Rate 0 (with u = 0 exactly) and 1, every position
special, B = 1, T = 1, int32 ids, and the ids observed after the call (they must be left as they were).

Next-sentence pairs: documents of strings or of id lists, empty documents and documents of one sentence among the
others, every pair IsNext or NotNext, draws that reach the first and the last of the other sentences; u[i, 0] kept
GAP from 0.5 and u[i, 1] * len(others) FRACTION from a whole number, except in a float64 case on the boundaries.
Packing: pairs of every length, empty sentences, other [CLS] and [SEP] ids.

The embeddings and the head are graded as modules in eval mode, with weights drawn here for coursekit.bert's
parameter names, which are the reference's (tests/test_oracles_09.py checks it). Embedding tables are N(0, 1), as
nn.Embedding draws them, with the [PAD] row zero, as padding_idx keeps it; layer-norm gains 1 + N(0, 0.2²) and biases
N(0, 0.2²). The sum of three unit-variance tables has a variance of about 3, so a layer norm's epsilon of 1e-5
(PyTorch's default) instead of BERT's 1e-12 moves the output by about 1e-5 · |x̂|: the cases allow ``NORM_TOL``
(1e-4), which that choice stays well within (tests/test_oracles_09.py measures it) and every mistake exceeds by
far. The head's pooler and output layer are N(0, 1/d) with biases N(0, 0.2²), on inputs N(0, 1): the tanh works in
its curved range.
"""
import torch

from autograder.cases import randn
from coursekit import bert as kit

F64 = torch.float64
GAP = 1e-4        # the least distance of a float32 uniform from a threshold it is compared with
FRACTION = 0.02   # the least distance of u * n from a whole number, where it is floored
NORM_TOL = 1e-4   # rtol and atol of the embeddings' cases (see above)
BERT_BASE = dict(mask_id=103, vocab_size=30522, first_ordinary=999)  # bert-base-uncased's ids
BERT_CLS, BERT_SEP, BERT_UNK = 101, 102, 100


# --------------------------------------------------------------------------- uniforms


def _away(u: torch.Tensor, threshold: float) -> torch.Tensor:
    """``u`` with every value closer than GAP to ``threshold`` moved 2 GAP to one side (inside [0, 1))."""
    shift = 2 * GAP if threshold + 2 * GAP < 1 else -2 * GAP
    return torch.where((u - threshold).abs() < GAP, threshold + shift, u)


def _floor_safe(u: torch.Tensor, n) -> torch.Tensor:
    """``u`` in [0, 1) moved so that u * n lies at least FRACTION from a whole number (n a number or a tensor)."""
    scaled = u * n
    whole = scaled.floor()
    return (whole + FRACTION + (1 - 2 * FRACTION) * (scaled - whole)) / n


def clear_uniforms(g, batch, size, rate, n) -> torch.Tensor:
    """(B, T, 3) float32 uniforms for masking with ``rate`` and ``n`` ordinary pieces, clear of every boundary."""
    u = torch.rand(batch, size, 3, generator=g, dtype=F64)
    u[..., 0] = _away(u[..., 0], rate)
    u[..., 1] = _away(_away(u[..., 1], 0.8), 0.9)
    u[..., 2] = _floor_safe(u[..., 2], n)
    return u.float()


# --------------------------------------------------------------------------- mask_tokens


def _sequences(g, batch, size, low, high, cls=kit.CLS, sep=kit.SEP, pad=kit.PAD, pairs=False):
    """(ids, special), (B, T): [CLS] pieces [SEP] (pairs: [CLS] a [SEP] b [SEP]) [PAD]..., rows of different
    lengths (the first one full), pieces in [low, high); special at [CLS], [SEP] and [PAD]."""
    ids = torch.randint(low, high, (batch, size), generator=g)
    lengths = torch.randint(min(3 if not pairs else 5, size), size + 1, (batch,), generator=g)
    lengths[0] = size
    for b, n in enumerate(lengths.tolist()):
        ids[b, 0] = cls
        ids[b, n - 1] = sep
        if pairs and n >= 5:
            ids[b, int(torch.randint(2, n - 2, (), generator=g))] = sep
        ids[b, n:] = pad
    return ids, (ids == cls) | (ids == sep) | (ids == pad)


def _every_kind(u, special, rate):
    """Make sure the case shows each branch: three ordinary positions chosen, one of each kind ([MASK], random,
    kept), and a special position drawn below the rate."""
    u = u.clone()
    ordinary = (~special).flatten().nonzero().flatten()
    for position, what in zip(ordinary[torch.linspace(0, len(ordinary) - 1, 3).long()].tolist(), (0.4, 0.85, 0.95)):
        u.view(-1, 3)[position, 0] = rate / 2
        u.view(-1, 3)[position, 1] = what
    first_special = special.flatten().nonzero().flatten()
    if len(first_special):
        u.view(-1, 3)[first_special[0], 0] = rate / 2
    return u


def mask_tokens(g):
    def case(group, note, ids, special, u, *, keywords=None, **kw):
        args = [ids, special, u]
        return dict(id=f"B={ids.size(0)}, T={ids.size(1)}: {note}", group=group, args=args,
                    kwargs=keywords or {}, returns=["inputs", "labels"], **kw)

    n = 50 - 5
    group = "ordinary cases"
    ids, special = _sequences(g, 4, 12, 5, 50)
    yield case(group, "sentences of different lengths, V=50", ids, special,
               _every_kind(clear_uniforms(g, 4, 12, 0.15, n), special, 0.15), keywords=dict(vocab_size=50))
    ids, special = _sequences(g, 5, 16, 5, 200, pairs=True)
    yield case(group, "packed pairs [CLS] a [SEP] b [SEP], V=200, rate=0.3", ids, special,
               _every_kind(clear_uniforms(g, 5, 16, 0.3, 195), special, 0.3), keywords=dict(rate=0.3, vocab_size=200))
    ids, special = _sequences(g, 64, 128, 5, kit.VOCAB_SIZE)
    yield case(group, "the course's vocabulary, rate, mask_id, vocab_size and first_ordinary left to their defaults",
               ids, special, _every_kind(clear_uniforms(g, 64, 128, 0.15, kit.VOCAB_SIZE - 5), special, 0.15))
    ids, special = _sequences(g, 3, 10, 5, 30)
    u = _every_kind(clear_uniforms(g, 3, 10, 0.5, 25), special, 0.5)
    yield dict(case(group, "every argument given as a keyword, V=30, rate=0.5", ids, special, u), args=[],
               kwargs=dict(ids=ids, special=special, u=u, rate=0.5, mask_id=kit.MASK, vocab_size=30, first_ordinary=5))

    group = "edge cases"
    ids, _ = _sequences(g, 3, 8, 5, 50)
    yield case(group, "every position special: nothing changes", ids, torch.ones(3, 8, dtype=torch.bool),
               clear_uniforms(g, 3, 8, 0.15, n) * 0.1, keywords=dict(vocab_size=50))
    ids, special = _sequences(g, 4, 9, 5, 50)
    u = clear_uniforms(g, 4, 9, 0.0, n)
    u[:, :3, 0] = 0.0
    yield case(group, "rate=0, u[..., 0] = 0 at some positions: nothing is chosen", ids, special, u,
               keywords=dict(rate=0.0, vocab_size=50))
    ids, special = _sequences(g, 4, 9, 5, 50)
    yield case(group, "rate=1: every position that is not special is chosen", ids, special,
               clear_uniforms(g, 4, 9, 1.0, n), keywords=dict(rate=1.0, vocab_size=50))
    yield case(group, "one piece (T=1), chosen, [MASK]", torch.tensor([[17]]), torch.tensor([[False]]),
               torch.tensor([[[0.01, 0.3, 0.5]]]), keywords=dict(vocab_size=50))
    ids, special = _sequences(g, 1, 20, 5, 50)
    yield case(group, "one sequence (B=1), T=20, rate=0.4", ids, special,
               _every_kind(clear_uniforms(g, 1, 20, 0.4, n), special, 0.4), keywords=dict(rate=0.4, vocab_size=50))
    ids, special = _sequences(g, 3, 11, 5, 60)
    yield case(group, "int32 ids", ids.int(), special, _every_kind(clear_uniforms(g, 3, 11, 0.3, 55), special, 0.3),
               keywords=dict(rate=0.3, vocab_size=60))
    ids, special = _sequences(g, 3, 10, 5, 50)
    yield case(group, "the ids are left as they were", ids, special,
               _every_kind(clear_uniforms(g, 3, 10, 0.4, n), special, 0.4), keywords=dict(rate=0.4, vocab_size=50),
               observe=["return", "args"])

    group = "on the thresholds"
    ids = torch.tensor([[kit.CLS, 10, 11, 12, 13, 14, 15, 16, 17, kit.SEP]])
    u = torch.tensor([[[0.0, 0.0, 0.0],               # [CLS]: special, even at u = 0
                       [0.15, 0.0, 0.5],              # u0 = rate exactly: not chosen
                       [0.15 - 2 ** -40, 0.0, 0.5],   # just below the rate: chosen, [MASK]
                       [0.0, 0.8, 0.0],               # u1 = 0.8 exactly: a random piece; u2 = 0: the first, 5
                       [0.0, 0.8 - 2 ** -40, 0.5],    # just below 0.8: [MASK]
                       [0.0, 0.9, 0.5],               # u1 = 0.9 exactly: kept
                       [0.0, 0.9 - 2 ** -40, 0.5],    # just below 0.9: random, 5 + floor(0.5 * 32) = 21
                       [0.0, 0.85, 20 / 32],          # u2 * 32 = 20 exactly: 5 + 20
                       [0.0, 0.85, 1 - 2 ** -40],     # u2 just below 1: the last piece, 36
                       [0.0, 0.0, 0.0]]], dtype=F64)  # [SEP]
    yield case(group, "float64 u exactly at rate=0.15, 0.8, 0.9 and 0, and just below them, V=37", ids,
               ids <= kit.MASK, u, keywords=dict(vocab_size=37), dtype=F64)
    ids, special = _sequences(g, 4, 12, 5, 37)
    u = torch.rand(4, 12, 3, generator=g, dtype=F64)
    u[..., 0] = torch.where(torch.rand(4, 12, generator=g) < 0.5, 0.25, u[..., 0] * 0.25)
    u[..., 1] = torch.tensor([0.0, 0.5, 0.8, 0.9], dtype=F64)[torch.randint(4, (4, 12), generator=g)]
    u[..., 2] = torch.randint(32, (4, 12), generator=g) / 32.0
    yield case(group, "float64 u, rate=0.25: half the u0 exactly 0.25, u1 in {0, 0.5, 0.8, 0.9}, u2 * 32 whole, V=37",
               ids, special, u, keywords=dict(rate=0.25, vocab_size=37), dtype=F64)

    group = "other vocabularies"
    ids, special = _sequences(g, 4, 14, 999, 30522, cls=BERT_CLS, sep=BERT_SEP, pad=0, pairs=True)
    ids[1:3, 4] = BERT_UNK  # [UNK] is not special: it may be chosen
    yield case(group, "bert-base-uncased's ids: [CLS]=101, [SEP]=102, [MASK]=103, ordinary pieces 999 ... 30521",
               ids, special, _every_kind(clear_uniforms(g, 4, 14, 0.3, 30522 - 999), special, 0.3),
               keywords=dict(rate=0.3, **BERT_BASE))
    ids, special = _sequences(g, 4, 12, 5, 60)
    special = special | (ids % 7 == 0)  # words the caller protects
    ids[:, 2] = kit.UNK
    special[:, 2] = False               # and an [UNK] that may be chosen
    u = _every_kind(clear_uniforms(g, 4, 12, 0.5, 55), special, 0.5)
    u[:, 2, 0] = 0.1
    u[..., 0] = torch.where(special, 0.1, u[..., 0])  # every special position drawn below the rate
    yield case(group, "special marks words the caller protects, and an [UNK] is not special", ids, special, u,
               keywords=dict(rate=0.5, vocab_size=60))
    ids, special = _sequences(g, 3, 8, 5, 6)
    yield case(group, "vocab_size=6: one ordinary piece, the random one is always 5", ids, special,
               _every_kind(clear_uniforms(g, 3, 8, 0.5, 1), special, 0.5), keywords=dict(rate=0.5, vocab_size=6))
    ids, special = _sequences(g, 3, 10, 4, 40, cls=0, sep=1, pad=3)
    yield case(group, "[CLS]=0, [SEP]=1, [MASK]=2, [PAD]=3, first_ordinary=4, V=40 (another layout)", ids, special,
               _every_kind(clear_uniforms(g, 3, 10, 0.4, 36), special, 0.4),
               keywords=dict(rate=0.4, mask_id=2, vocab_size=40, first_ordinary=4))


# --------------------------------------------------------------------------- make_nsp_pairs


def _documents(g, sizes, ids=False):
    """Documents of the given numbers of sentences: strings "d3 s1 ..." (unique) or lists of ids."""
    if ids:
        return [[torch.randint(5, 500, (int(torch.randint(1, 8, (), generator=g)),), generator=g).tolist()
                 for _ in range(n)] for n in sizes]
    return [[f"d{d} s{s} " + " ".join(f"w{int(w)}" for w in torch.randint(0, 99, (3,), generator=g))
             for s in range(n)] for d, n in enumerate(sizes)]


def _others_sizes(documents):
    """len(others) for each pair, in order."""
    total = sum(map(len, documents))
    return [total - len(doc) for doc in documents for _ in range(max(len(doc) - 1, 0))]


def nsp_uniforms(g, documents, is_next=None):
    """(N, 2) float32 uniforms: u[i, 0] GAP from 0.5 (all below it if is_next, all above if is_next is False, else
    some of each when N > 1), u[i, 1] * len(others) FRACTION from a whole number."""
    sizes = torch.tensor(_others_sizes(documents), dtype=F64)
    u = torch.rand(len(sizes), 2, generator=g, dtype=F64)
    if is_next is not None:
        u[:, 0] = u[:, 0] * 0.5 + (0.0 if is_next else 0.5)
    elif len(u) > 1 and len(set((u[:, 0] < 0.5).tolist())) == 1:  # both kinds of pair, where there are two
        u[0, 0] = 1 - u[0, 0]
    u[:, 0] = _away(u[:, 0], 0.5)
    u[:, 1] = _floor_safe(u[:, 1], sizes)
    return u.float()


def make_nsp_pairs(g):
    def case(group, note, documents, u=None, **kw):
        u = nsp_uniforms(g, documents) if u is None else u
        return dict(id=f"{len(documents)} documents of {[len(d) for d in documents]} sentences: {note}",
                    group=group, args=[documents, u], **kw)

    group = "pairs"
    yield case(group, "strings", _documents(g, [3, 1, 4]))
    yield case(group, "two documents", _documents(g, [5, 2]))
    yield case(group, "sentences as lists of ids", _documents(g, [4, 3, 2], ids=True))
    yield case(group, "an empty document, and documents of one sentence, among the others",
               _documents(g, [2, 0, 1, 4, 0, 3]))
    yield case(group, "twelve documents", _documents(g, torch.randint(0, 9, (12,), generator=g).tolist()))

    group = "NotNext draws"
    documents = _documents(g, [4, 2, 5, 1])
    yield case(group, "every pair NotNext", documents, nsp_uniforms(g, documents, is_next=False))
    documents = _documents(g, [3, 3])
    u = nsp_uniforms(g, documents, is_next=False)
    u[:, 1] = torch.tensor([0.01, 0.99, 0.4, 0.7])  # others have 3 sentences: the first, the last, 1 and 2
    yield case(group, "every pair NotNext, drawing the first and the last of the others", documents, u)
    documents = _documents(g, [6, 1, 1, 1], ids=True)
    yield case(group, "one long document, the others one sentence each, lists of ids", documents,
               nsp_uniforms(g, documents, is_next=False))

    group = "edge cases"
    documents = _documents(g, [4, 3])
    yield case(group, "every pair IsNext", documents, nsp_uniforms(g, documents, is_next=True))
    yield case(group, "no sentence has a next one: no pairs", _documents(g, [1, 1, 0, 1]), torch.zeros(0, 2))
    documents = _documents(g, [1, 2])
    yield case(group, "a single pair, in the last document", documents)
    documents = _documents(g, [3, 2, 2])  # the pairs' others: 4, 4, 5 and 5 sentences
    u = torch.tensor([[0.5, 0.0], [0.5 - 2 ** -40, 0.3], [0.75, 0.5], [0.5, 1 - 2 ** -40]], dtype=F64)
    yield case(group, "float64 u on the boundaries: u0 = 0.5 is NotNext, u1 = 0 the first other sentence, u1 "
               "just below 1 the last", documents, u, dtype=F64)


def pack_pair(g):
    def case(group, note, a, b, **kw):
        return dict(id=f"len(a)={len(a)}, len(b)={len(b)}: {note}", group=group, args=[a, b], **kw)

    def pieces(n, low=5, high=8000):
        return torch.randint(low, high, (n,), generator=g).tolist()

    group = "packing"
    yield case(group, "two sentences", pieces(5), pieces(7))
    yield case(group, "a longer first sentence", pieces(11), pieces(2))
    yield case(group, "one piece each", pieces(1), pieces(1))
    yield case(group, "an empty first sentence", [], pieces(4))
    yield case(group, "an empty second sentence", pieces(4), [])
    yield case(group, "both empty", [], [])
    yield case(group, "a long pair (60 + 60 pieces)", pieces(60), pieces(60))

    group = "packing with other ids"
    yield case(group, "bert-base-uncased's [CLS]=101, [SEP]=102, as keywords", pieces(6, 999, 30522),
               pieces(3, 999, 30522), kwargs=dict(cls_id=BERT_CLS, sep_id=BERT_SEP))
    a, b = pieces(3), pieces(5)
    yield dict(case(group, "cls_id=0, sep_id=1, given positionally", a, b), args=[a, b, 0, 1])
    yield case(group, "[SEP]'s id also among the pieces", [3, 7, 3], [3], kwargs=dict(cls_id=3, sep_id=3))


# --------------------------------------------------------------------------- BertEmbeddings


def _embedding_weights(g, vocab, d, positions, segments):
    token = randn(g, vocab, d)
    token[kit.PAD] = 0.0
    return {"token.weight": token, "position.weight": randn(g, positions, d),
            "segment.weight": randn(g, segments, d), "norm.weight": randn(g, d, scale=0.2, shift=1.0),
            "norm.bias": randn(g, d, scale=0.2)}


def _pairs(g, batch, size, vocab, segments=2):
    """(ids, segment ids), (B, T): packed pairs [CLS] a [SEP] b [SEP] [PAD]...: segment 0 up to the first [SEP],
    1 after it up to the last, 0 at the padding; with more segment types, the later ones at random."""
    ids = torch.randint(5, vocab, (batch, size), generator=g)
    seg = torch.zeros(batch, size, dtype=torch.long)
    lengths = torch.randint(min(5, size), size + 1, (batch,), generator=g)
    lengths[0] = size
    for b, n in enumerate(lengths.tolist()):
        cut = int(torch.randint(2, n - 2, (), generator=g)) if n >= 5 else n - 1
        ids[b, 0], ids[b, cut], ids[b, n - 1] = kit.CLS, kit.SEP, kit.SEP
        seg[b, cut + 1:n] = 1 if segments == 2 else torch.randint(1, segments, (), generator=g)
        ids[b, n:] = kit.PAD
    return ids, seg


def BertEmbeddings(g):
    def case(group, note, vocab, d, positions, args, kwargs=None, segments=2, defaults=False):
        init = dict(vocab_size=vocab, d_model=d, max_positions=positions, segments=segments, dropout=0.1, eps=1e-12)
        state = _embedding_weights(g, vocab, d, positions, segments)
        if defaults:
            init = dict(vocab_size=vocab, d_model=d)
        ids = args[0]
        return dict(id=f"V={vocab}, d_model={d}, max_positions={positions}, B={ids.size(0)}, T={ids.size(1)}: {note}",
                    group=group, kind="module", init=init, state_dict=state, args=args, kwargs=kwargs or {},
                    rtol=NORM_TOL, atol=NORM_TOL)

    group = "segments given"
    ids, seg = _pairs(g, 3, 12, 60)
    yield case(group, "packed pairs, segments 0 then 1, 0 at the padding", 60, 16, 32, [ids, seg])
    ids, seg = _pairs(g, 4, 9, 40)
    yield case(group, "segments as a keyword", 40, 8, 16, [ids], dict(segments=seg))
    ids, seg = _pairs(g, 3, 10, 30)
    seg[1] = 1
    yield case(group, "a row all in segment 1", 30, 16, 10, [ids, seg])
    ids, seg = _pairs(g, 3, 8, 50, segments=3)
    yield case(group, "three segment types (segments=3)", 50, 12, 8, [ids, seg], segments=3)

    group = "no segments"
    ids, _ = _pairs(g, 3, 11, 60)
    yield case(group, "segments left out: all 0", 60, 16, 32, [ids])
    ids, _ = _pairs(g, 2, 7, 25)
    yield case(group, "segments=None given", 25, 8, 12, [ids], dict(segments=None))
    ids, _ = _pairs(g, 3, 9, 40)
    yield case(group, "segments given, all 0", 40, 16, 9, [ids, torch.zeros_like(ids)])

    group = "sizes"
    yield case(group, "one position (T=1)", 30, 16, 8, [torch.tensor([[kit.CLS], [7], [12]])])
    ids, seg = _pairs(g, 2, 10, 40)
    yield case(group, "T = max_positions = 10: every row of the position table", 40, 8, 10, [ids, seg])
    ids, seg = _pairs(g, 1, 13, 100)
    yield case(group, "one sequence (B=1), d_model=64", 100, 64, 16, [ids, seg])
    ids, seg = _pairs(g, 2, 6, 20)
    yield case(group, "max_positions, segments, dropout and eps left to their defaults (512, 2, 0.1, 1e-12)",
               20, 8, 512, [ids, seg], defaults=True)


# --------------------------------------------------------------------------- ClassificationHead


def _head_weights(g, d, labels):
    return {"pooler.weight": randn(g, d, d, scale=d ** -0.5), "pooler.bias": randn(g, d, scale=0.2),
            "out.weight": randn(g, labels, d, scale=d ** -0.5), "out.bias": randn(g, labels, scale=0.2)}


def ClassificationHead(g):
    def case(group, note, d, labels, batch, size, defaults=False):
        init = dict(d_model=d) if defaults else dict(d_model=d, labels=labels, dropout=0.1)
        return dict(id=f"d_model={d}, labels={labels}, B={batch}, T={size}: {note}", group=group, kind="module",
                    init=init, state_dict=_head_weights(g, d, labels), args=[randn(g, batch, size, d)])

    group = "ordinary cases"
    yield case(group, "two labels", 16, 2, 4, 7)
    yield case(group, "three labels", 32, 3, 2, 10)
    yield case(group, "five labels, small d_model", 8, 5, 6, 3)

    group = "sizes"
    yield case(group, "one position (T=1)", 16, 2, 3, 1)
    yield case(group, "one sentence (B=1)", 24, 4, 1, 9)
    yield case(group, "one label (a score)", 16, 1, 3, 5)
    yield case(group, "labels and dropout left to their defaults (2, 0.1)", 16, 2, 3, 6, defaults=True)


CASES = {
    "mask_tokens": mask_tokens,
    "make_nsp_pairs": make_nsp_pairs,
    "pack_pair": pack_pair,
    "BertEmbeddings": BertEmbeddings,
    "ClassificationHead": ClassificationHead,
}
