"""Hidden cases for 05_attention: seeded inputs the student never sees, edge cases included.

Every input varies on its own: the decoder state is not one of the annotations, sources in one batch have
different lengths, the padding holds annotations and scores that are not zero (a step that forgets the mask
reads them), and the sizes differ from one another (B, S, H, K, A, E, V), with cases where two are equal on
purpose, where a broadcast along the wrong axis would pass unnoticed (B == S, S == K).
"""
import torch

STEP_RETURNS = ["logits", "new state", "weights"]


def _randn(g, *shape, scale=1.0):
    return torch.randn(*shape, generator=g) * scale


def _prefix_mask(lengths, s):
    """(B, S) bool: True at the first lengths[b] positions of row b (right padding)."""
    return torch.arange(s)[None, :] < torch.as_tensor(lengths)[:, None]


def _scattered_mask(g, batch, s):
    """(B, S) bool with True anywhere (left padding, holes), at least one per row, not a prefix."""
    mask = torch.rand(batch, s, generator=g) > 0.5
    mask[torch.arange(batch), torch.randint(0, s, (batch,), generator=g)] = True
    mask[0, 0], mask[0, -1] = False, True  # the first row is certainly not right-padded
    return mask


def _state_and_annotations(g, batch, s, h, k):
    return _randn(g, batch, h), _randn(g, batch, s, k)


# --------------------------------------------------------------------------- scores without parameters


def dot_score(g):
    def case(**kw):
        return dict(group="dot", **kw)
    for batch, s, h in ((3, 5, 4), (2, 9, 16), (1, 7, 3), (4, 1, 5), (3, 4, 1)):
        yield case(id=f"B={batch}, S={s}, H=K={h}", args=list(_state_and_annotations(g, batch, s, h, h)))
    yield case(id="as many source positions as features (B=2, S=K=6)",
               args=list(_state_and_annotations(g, 2, 6, 6, 6)))
    yield case(id="float64 inputs (B=3, S=5, H=K=4)", args=list(_state_and_annotations(g, 3, 5, 4, 4)),
               dtype=torch.float64)


def scaled_dot_score(g):
    def case(**kw):
        return dict(group="scaled dot", **kw)
    for batch, s, h in ((3, 5, 4), (2, 3, 64), (1, 7, 9), (4, 1, 5), (3, 6, 1)):
        yield case(id=f"B={batch}, S={s}, H=K={h}", args=list(_state_and_annotations(g, batch, s, h, h)))
    yield case(id="as many source positions as features (B=2, S=K=6)",
               args=list(_state_and_annotations(g, 2, 6, 6, 6)))
    yield case(id="float64 inputs (B=3, S=8, H=K=16)", args=list(_state_and_annotations(g, 3, 8, 16, 16)),
               dtype=torch.float64)


def cosine_score(g):
    def case(**kw):
        return dict(group="cosine", **kw)
    yield case(id="beta left out (1.0), B=3, S=5, H=K=4", args=list(_state_and_annotations(g, 3, 5, 4, 4)))
    yield case(id="beta=3.0 as a keyword, B=2, S=6, H=K=3", args=list(_state_and_annotations(g, 2, 6, 3, 3)),
               kwargs=dict(beta=3.0))
    yield case(id="beta=0.5 given positionally, B=4, S=3, H=K=8",
               args=[*_state_and_annotations(g, 4, 3, 8, 8), 0.5])
    s, a = _state_and_annotations(g, 3, 5, 4, 4)
    yield case(id="beta a (B,) tensor, one sharpness per row (B=3, S=5)",
               args=[s, a, 0.5 + 4 * torch.rand(3, generator=g)])
    s, a = _state_and_annotations(g, 4, 4, 6, 6)
    yield case(id="beta a (B,) tensor with B == S == 4: one beta per row, not per position",
               args=[s, a, 0.5 + 4 * torch.rand(4, generator=g)])
    s, a = _state_and_annotations(g, 3, 6, 5, 5)
    lengths = 10 ** (4 * torch.rand(3, 6, 1, generator=g) - 2)  # annotations 0.01 to 100 long
    yield case(id="vectors of very different lengths (a state 50 long, annotations 0.01 to 100)",
               args=[50 * s, a * lengths, 2.0])
    s = _randn(g, 2, 4)
    a = torch.stack([2 * s, -0.5 * s, _randn(g, 2, 4), 7 * s], dim=1)  # (2, 4, 4)
    yield case(id="annotations parallel to the state (cos 1) and opposite to it (cos -1)", args=[s, a, 1.5])
    yield case(id="one sentence of one word (B=1, S=1, H=K=3)", args=list(_state_and_annotations(g, 1, 1, 3, 3)))
    s, a = _state_and_annotations(g, 3, 7, 5, 5)
    yield case(id="float64 inputs and a (B,) beta", args=[s, a, 0.5 + 4 * torch.rand(3, generator=g)],
               dtype=torch.float64)


# --------------------------------------------------------------------------- scores with learned parameters


def GeneralScore(g):
    def case(h, k, batch, s, **kw):
        return dict(kind="module", group="general", id=f"H={h}, K={k}, B={batch}, S={s}" + kw.pop("note", ""),
                    init=dict(query_size=h, key_size=k), args=list(_state_and_annotations(g, batch, s, h, k)), **kw)
    yield case(4, 6, 3, 5)
    yield case(5, 5, 2, 4, note=" (a square W, not symmetric)")
    yield case(6, 3, 1, 7)
    yield case(3, 2, 4, 1)
    yield case(4, 4, 3, 6, dtype=torch.float64, note=", float64")


def AdditiveScore(g):
    def case(h, k, att, batch, s, scale=1.0, **kw):
        state, annotations = _state_and_annotations(g, batch, s, h, k)
        return dict(kind="module", group="additive", id=f"H={h}, K={k}, A={att}, B={batch}, S={s}" + kw.pop("note", ""),
                    init=dict(query_size=h, key_size=k, attention_size=att), args=[state * scale, annotations * scale],
                    **kw)
    yield case(4, 6, 5, 3, 7)
    yield case(3, 3, 8, 2, 4)
    yield case(5, 2, 3, 4, 4, note=" (B == S: W s must be added along the source positions)")
    yield case(4, 4, 6, 1, 5, note=" (one sentence)")
    yield case(3, 5, 4, 3, 1, note=" (a source of one word)")
    yield case(4, 3, 6, 2, 5, scale=10.0, note=", large inputs: tanh saturates")
    yield case(4, 6, 5, 3, 6, dtype=torch.float64, note=", float64")


def LocationScore(g):
    def case(h, positions, batch, s, k, **kw):
        return dict(kind="module", group="location",
                    id=f"H={h}, max_positions={positions}, B={batch}, S={s}, K={k}" + kw.pop("note", ""),
                    init=dict(query_size=h, max_positions=positions),
                    args=list(_state_and_annotations(g, batch, s, h, k)), **kw)
    yield case(4, 10, 3, 6, 5)
    yield case(3, 8, 2, 8, 3, note=" (S == max_positions)")
    yield case(5, 6, 2, 1, 4, note=" (a source of one word)")
    yield case(2, 12, 1, 5, 2, note=" (one sentence)")
    yield case(4, 10, 3, 7, 6, dtype=torch.float64, note=", float64")


# --------------------------------------------------------------------------- weights, context


def attention_weights(g):
    yield dict(id="no padding (an all-True mask), B=3, S=6", group="masks",
               args=[_randn(g, 3, 6, scale=3.0), torch.ones(3, 6, dtype=torch.bool)])
    yield dict(id="rows of different lengths (B=5, S=8: lengths 8, 5, 3, 1, 6)", group="masks",
               args=[_randn(g, 5, 8, scale=3.0), _prefix_mask([8, 5, 3, 1, 6], 8)])
    yield dict(id="padding on the left and holes: True anywhere, not a prefix (B=4, S=7)", group="masks",
               args=[_randn(g, 4, 7, scale=3.0), _scattered_mask(g, 4, 7)])
    yield dict(id="long sources (B=3, S=40, lengths 40, 23, 9)", group="masks",
               args=[_randn(g, 3, 40, scale=3.0), _prefix_mask([40, 23, 9], 40)])
    yield dict(id="float64 scores, rows of different lengths (B=4, S=6)", group="masks", dtype=torch.float64,
               args=[_randn(g, 4, 6, scale=3.0), _prefix_mask([6, 2, 4, 1], 6)])

    yield dict(id="mask left out: no padding (B=2, S=5)", group="edge cases", args=[_randn(g, 2, 5, scale=3.0)])
    yield dict(id="mask=None given explicitly (B=3, S=4)", group="edge cases", args=[_randn(g, 3, 4, scale=3.0)],
               kwargs=dict(mask=None))
    yield dict(id="one real token per row, at different positions: its weight is exactly 1", group="edge cases",
               args=[_randn(g, 4, 6, scale=3.0), torch.eye(6, dtype=torch.bool)[[0, 5, 2, 3]]])
    yield dict(id="a source of one word (S=1)", group="edge cases",
               args=[_randn(g, 3, 1, scale=3.0), torch.ones(3, 1, dtype=torch.bool)])
    yield dict(id="one sentence (B=1, S=9, length 6)", group="edge cases",
               args=[_randn(g, 1, 9, scale=3.0), _prefix_mask([6], 9)])

    yield dict(id="scores near +1000 (exp overflows unless the row maximum is subtracted)", group="large scores",
               args=[1000 + _randn(g, 3, 7, scale=2.0), _prefix_mask([7, 4, 2], 7)])
    yield dict(id="scores near -1000 (exp underflows to 0 at every position)", group="large scores",
               args=[-1000 + _randn(g, 3, 7, scale=2.0), _prefix_mask([7, 5, 1], 7)])
    scores, mask = _randn(g, 4, 6, scale=2.0), _prefix_mask([6, 3, 2, 4], 6)
    yield dict(id="the padding holds the largest scores, 1000 above the real tokens: mask before the softmax",
               group="large scores", args=[scores.masked_fill(~mask, 1000.0), mask])
    yield dict(id="scores spread over thousands (a weight of almost 1, others tiny)", group="large scores",
               args=[_randn(g, 3, 8, scale=2000.0), _prefix_mask([8, 6, 3], 8)])


def _distributions(g, batch, s, mask=None):
    scores = _randn(g, batch, s, scale=2.0)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)


def context_vector(g):
    yield dict(id="B=3, S=5, K=4", group="ordinary", args=[_distributions(g, 3, 5), _randn(g, 3, 5, 4)])
    mask = _prefix_mask([6, 4, 1, 3], 6)
    yield dict(id="weights that are 0 at the padding (B=4, S=6, K=3)", group="ordinary",
               args=[_distributions(g, 4, 6, mask), _randn(g, 4, 6, 3)])
    yield dict(id="as many source positions as features (B=2, S=K=5)", group="ordinary",
               args=[_distributions(g, 2, 5), _randn(g, 2, 5, 5)])
    yield dict(id="float64 inputs (B=3, S=4, K=6)", group="ordinary", dtype=torch.float64,
               args=[_distributions(g, 3, 4), _randn(g, 3, 4, 6)])

    yield dict(id="all the weight on one word: the context is its annotation (B=3, S=4, K=2)", group="edge cases",
               args=[torch.eye(4)[[2, 0, 3]], _randn(g, 3, 4, 2)])
    yield dict(id="a source of one word (S=1): c = a_1", group="edge cases",
               args=[torch.ones(3, 1), _randn(g, 3, 1, 5)])
    yield dict(id="one sentence (B=1, S=7, K=2)", group="edge cases",
               args=[_distributions(g, 1, 7), _randn(g, 1, 7, 2)])
    yield dict(id="annotations of one feature (K=1), B=4, S=3", group="edge cases",
               args=[_distributions(g, 4, 3), _randn(g, 4, 3, 1)])
    yield dict(id="uniform weights: the mean of the annotations (B=2, S=8, K=3)", group="edge cases",
               args=[torch.full((2, 8), 1 / 8), _randn(g, 2, 8, 3)])


# --------------------------------------------------------------------------- the decoder step


def AttentionDecoderStep(g):
    """The grader draws the weights of the reference's own layers: score.W, score.U, score.v, cell, output."""
    def case(sizes, batch, s, mask, group, note="", **kw):
        e, h, k, att, v = sizes
        return dict(kind="module", returns=STEP_RETURNS, group=group,
                    id=f"E={e}, H={h}, K={k}, A={att}, V={v}, B={batch}, S={s}" + note,
                    init=dict(embed_size=e, hidden_size=h, annotation_size=k, attention_size=att, vocab_size=v),
                    args=[_randn(g, batch, e), _randn(g, batch, h), _randn(g, batch, s, k), mask], **kw)
    full = lambda b, s: torch.ones(b, s, dtype=torch.bool)  # noqa: E731
    yield case((3, 4, 6, 5, 7), 3, 5, full(3, 5), "steps", ", no padding")
    yield case((5, 6, 4, 8, 10), 2, 8, full(2, 8), "steps", ", no padding")
    yield case((3, 4, 6, 5, 7), 3, 6, _prefix_mask([6, 4, 5], 6), "steps", ", float64", dtype=torch.float64)

    yield case((4, 5, 3, 6, 9), 4, 7, _prefix_mask([7, 5, 2, 4], 7), "padding", ", rows of different lengths")
    yield case((3, 4, 5, 4, 6), 3, 6, _scattered_mask(g, 3, 6), "padding", ", padding on the left and holes")
    yield case((2, 3, 4, 5, 8), 3, 5, torch.eye(5, dtype=torch.bool)[[4, 0, 2]], "padding",
               ", one real token per row")

    yield case((3, 4, 6, 5, 7), 1, 6, _prefix_mask([4], 6), "edge cases", ", one sentence")
    yield case((3, 5, 4, 6, 7), 3, 1, full(3, 1), "edge cases", ", a source of one word")
    yield case((4, 4, 4, 4, 4), 2, 4, _prefix_mask([4, 3], 4), "edge cases",
               ", every size equal, as in the chapter's model (E = H = K)")
    yield case((3, 4, 6, 5, 1), 2, 5, _prefix_mask([5, 2], 5), "edge cases", ", a vocabulary of one word")


CASES = {
    "dot_score": dot_score,
    "scaled_dot_score": scaled_dot_score,
    "cosine_score": cosine_score,
    "GeneralScore": GeneralScore,
    "AdditiveScore": AdditiveScore,
    "LocationScore": LocationScore,
    "attention_weights": attention_weights,
    "context_vector": context_vector,
    "AttentionDecoderStep": AttentionDecoderStep,
}
