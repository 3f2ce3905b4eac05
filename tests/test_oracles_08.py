"""Chapter 08's reference solution against independent oracles: PyTorch's nn.TransformerEncoderLayer,
nn.TransformerDecoderLayer and nn.Transformer holding the same weights (both norm orders, every kind of mask,
several sizes, float64), the shift as Python lists, greedy decoding as a loop over one sentence at a time and as
the chapter's model's own decoder; the chapter's model (coursekit.transformer) against the reference with the same
weights, so that the book and the exercise agree; the test cell's stand-ins against the reference's blocks; the
hidden cases proven to say what they say (shared prefixes, clear of ties under noise, in float32); and the grading
of Transformer.forward with the blocks it builds on broken."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from autograder.cases import transformer as cases
from autograder.checks import BUILD, prepare
from autograder.expected import case_seed
from autograder.reference import load_reference
from coursekit import transformer as kit
from coursekit.toy_models import TinyTransformer

A = "08_transformer"
D = torch.float64
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def ref():
    return load_reference(A)


def randn(*shape, seed=0, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D) * scale


def randomised(module, seed):
    """``module`` in float64 and eval mode, every parameter drawn at random (layer-norm gains around 1)."""
    g = torch.Generator().manual_seed(seed)
    module = module.double().eval()
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=g, dtype=D) * p.shape[-1] ** -0.5)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g, dtype=D))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=D))
    return module


def padding(lengths, size):
    """(B, S) bool, True at the real tokens."""
    return torch.arange(size)[None, :] < torch.tensor(lengths)[:, None]


def copy_attention(theirs: nn.MultiheadAttention, mine):
    theirs.in_proj_weight.copy_(torch.cat([mine.W_q.weight, mine.W_k.weight, mine.W_v.weight]))
    theirs.in_proj_bias.copy_(torch.cat([mine.W_q.bias, mine.W_k.bias, mine.W_v.bias]))
    theirs.out_proj.weight.copy_(mine.W_o.weight)
    theirs.out_proj.bias.copy_(mine.W_o.bias)


def copy_layer(theirs, block, attentions, norms):
    """PyTorch's layer ``theirs`` given the weights of ``block``: attentions and norms as (theirs, mine) names."""
    with torch.no_grad():
        for their_name, my_name in attentions:
            copy_attention(getattr(theirs, their_name), getattr(block, my_name))
        theirs.linear1.load_state_dict(block.feed_forward[0].state_dict())
        theirs.linear2.load_state_dict(block.feed_forward[3].state_dict())
        for their_name, my_name in norms:
            getattr(theirs, their_name).load_state_dict(getattr(block, my_name).state_dict())
    return theirs.eval()


def encoder_twin(block, d_model, heads, d_ff, norm_first):
    twin = nn.TransformerEncoderLayer(d_model, heads, d_ff, dropout=0.0, batch_first=True, norm_first=norm_first,
                                      dtype=D)
    return copy_layer(twin, block, [("self_attn", "attention")], [("norm1", "norm1"), ("norm2", "norm2")])


def decoder_twin(block, d_model, heads, d_ff, norm_first):
    twin = nn.TransformerDecoderLayer(d_model, heads, d_ff, dropout=0.0, batch_first=True, norm_first=norm_first,
                                      dtype=D)
    return copy_layer(twin, block, [("self_attn", "self_attention"), ("multihead_attn", "cross_attention")],
                      [("norm1", "norm1"), ("norm2", "norm2"), ("norm3", "norm3")])


SIZES = [(8, 1, 16, 1, 1), (16, 4, 32, 3, 6), (24, 3, 12, 2, 9), (32, 8, 64, 1, 4)]  # d_model, heads, d_ff, B, S


# --------------------------------------------------------------------------- shift_right


@pytest.mark.parametrize("dtype", [torch.long, torch.int32, torch.int16, torch.uint8])
def test_shift_right_is_the_list_version(ref, dtype):
    g = torch.Generator().manual_seed(int(dtype.itemsize))
    for batch, t in ((1, 1), (3, 1), (1, 7), (4, 9), (6, 3)):
        targets = torch.randint(0, 100, (batch, t), generator=g).to(dtype)
        before = targets.clone()
        for bos in (0, 1, 7):
            got = ref["shift_right"](targets, bos)
            want = torch.tensor([[bos] + row[:-1] for row in targets.tolist()], dtype=dtype)
            assert got.dtype == dtype and torch.equal(got, want)
        assert torch.equal(targets, before), "the targets are left as they were"


def test_shift_right_makes_the_course_s_decoder_input(ref):
    """coursekit's translation batches hold <bos> y <eos>: their decoder input, tgt[:, :-1], is shift_right of
    the targets, tgt[:, 1:]."""
    from coursekit import translation as tr

    tgt = tr.pad([[5, 6, 7], [9]], bos=True)  # <bos> y <eos> <pad>...
    assert torch.equal(ref["shift_right"](tgt[:, 1:], tr.BOS), tgt[:, :-1])


# --------------------------------------------------------------------------- the blocks


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("d_model, heads, d_ff, batch, size", SIZES)
def test_encoder_block_is_torch_s_encoder_layer(ref, norm_first, d_model, heads, d_ff, batch, size):
    block = randomised(ref["EncoderBlock"](d_model, heads, d_ff, 0.1, norm_first), seed=d_model + size)
    twin = encoder_twin(block, d_model, heads, d_ff, norm_first)
    x = randn(batch, size, d_model, seed=1)
    keep = padding([max(1, size - 2 * b) for b in range(batch)], size)
    per_query = (randn(batch, heads, size, size, seed=2) > 0) | torch.eye(size, dtype=torch.bool)
    with torch.no_grad():
        torch.testing.assert_close(block(x), twin(x))
        torch.testing.assert_close(block(x, keep[:, None, None, :]), twin(x, src_key_padding_mask=~keep))
        torch.testing.assert_close(block(x, per_query), twin(x, src_mask=~per_query.reshape(-1, size, size)))


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("d_model, heads, d_ff, batch, size", SIZES)
def test_decoder_block_is_torch_s_decoder_layer(ref, norm_first, d_model, heads, d_ff, batch, size):
    block = randomised(ref["DecoderBlock"](d_model, heads, d_ff, 0.1, norm_first), seed=d_model + size)
    twin = decoder_twin(block, d_model, heads, d_ff, norm_first)
    t = size + 2
    y, memory = randn(batch, t, d_model, seed=3), randn(batch, size, d_model, seed=4, scale=0.8) + 0.3
    keep = padding([max(1, size - b) for b in range(batch)], size)
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    cross = (randn(batch, heads, t, size, seed=5) > 0) | (torch.arange(size) == 0)
    with torch.no_grad():
        torch.testing.assert_close(block(y, memory), twin(y, memory))
        torch.testing.assert_close(block(y, memory, causal, keep[:, None, None, :]),
                                   twin(y, memory, tgt_mask=nn.Transformer.generate_square_subsequent_mask(t, dtype=D),
                                        memory_key_padding_mask=~keep))
        torch.testing.assert_close(block(y, memory, causal, cross),
                                   twin(y, memory, tgt_mask=~causal, memory_mask=~cross.reshape(-1, t, size)))


def torch_transformer(model, d_model, heads, layers, d_ff, norm_first):
    """nn.Transformer holding the weights of the reference's model (its final norms dropped when post-norm, where
    the course's model has none)."""
    twin = nn.Transformer(d_model, heads, layers, layers, d_ff, dropout=0.0, batch_first=True, norm_first=norm_first,
                          dtype=D)
    for theirs, mine in zip(twin.encoder.layers, model.encoder):
        copy_layer(theirs, mine, [("self_attn", "attention")], [("norm1", "norm1"), ("norm2", "norm2")])
    for theirs, mine in zip(twin.decoder.layers, model.decoder):
        copy_layer(theirs, mine, [("self_attn", "self_attention"), ("multihead_attn", "cross_attention")],
                   [("norm1", "norm1"), ("norm2", "norm2"), ("norm3", "norm3")])
    if norm_first:
        twin.encoder.norm.load_state_dict(model.encoder_norm.state_dict())
        twin.decoder.norm.load_state_dict(model.decoder_norm.state_dict())
    else:
        twin.encoder.norm = twin.decoder.norm = None
    return twin.eval()


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("vocab, d_model, heads, layers, d_ff, pad_id", [(11, 8, 2, 1, 16, 0), (20, 16, 4, 2, 32, 0),
                                                                        (17, 24, 3, 3, 48, 4)])
def test_transformer_is_nn_transformer_with_tied_embeddings(ref, norm_first, vocab, d_model, heads, layers, d_ff,
                                                             pad_id):
    model = randomised(ref["Transformer"](vocab, d_model, heads, layers, d_ff, 0.1, norm_first, pad_id), seed=vocab)
    twin = torch_transformer(model, d_model, heads, layers, d_ff, norm_first)
    g = torch.Generator().manual_seed(vocab)
    src = torch.randint(0, vocab, (4, 7), generator=g)
    src[src == pad_id] = (pad_id + 1) % vocab
    for b, n in enumerate((7, 1, 4, 6)):
        src[b, n:] = pad_id
    tgt_in = torch.randint(0, vocab, (4, 5), generator=g)
    E = model.embedding.weight
    pe = torch.tensor([[math.sin(p / 10000 ** (i // 2 * 2 / d_model)) if i % 2 == 0
                        else math.cos(p / 10000 ** (i // 2 * 2 / d_model)) for i in range(d_model)]
                       for p in range(7)], dtype=D)
    with torch.no_grad():
        y = twin(E[src] * math.sqrt(d_model) + pe[:7], E[tgt_in] * math.sqrt(d_model) + pe[:5],
                 tgt_mask=nn.Transformer.generate_square_subsequent_mask(5, dtype=D),
                 src_key_padding_mask=src == pad_id, memory_key_padding_mask=src == pad_id)
        want = y @ E.T
        got = model(src, tgt_in)
    assert got.shape == (4, 5, vocab)
    torch.testing.assert_close(got, want)


def test_the_positions_are_chapter_07_s(ref):
    """The buffer the model adds (1024 of them) is the paper's formula, and the model's own, not a parameter."""
    model = ref["Transformer"](10, 16, 2, 1, 8)
    assert "positions" not in model.state_dict() and model.positions.shape == (1024, 16)
    torch.testing.assert_close(model.positions, kit.sinusoidal_positions(1024, 16))


# --------------------------------------------------------------------------- the chapter's model agrees


@pytest.mark.parametrize("norm_first", [True, False])
def test_the_chapter_s_blocks_and_model_are_the_reference_s(ref, norm_first):
    """coursekit.transformer (the book's model) and the exercise's reference: the same parameter names (the hidden
    cases draw their weights for coursekit's), and the same outputs with the same weights."""
    pairs = [(ref["EncoderBlock"](16, 4, 32, 0.1, norm_first), kit.EncoderBlock(16, 4, 32, 0.1, norm_first)),
             (ref["DecoderBlock"](16, 4, 32, 0.1, norm_first), kit.DecoderBlock(16, 4, 32, 0.1, norm_first)),
             (ref["Transformer"](15, 16, 4, 2, 32, 0.1, norm_first, 3), kit.Transformer(15, 16, 4, 2, 32, 0.1,
                                                                                      norm_first, 3))]
    x, memory = randn(3, 6, 16, seed=1), randn(3, 8, 16, seed=2)
    keep = padding([6, 2, 4], 6)[:, None, None, :]
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    src = torch.tensor([[5, 6, 7, 8, 2, 3, 3], [9, 2, 3, 3, 3, 3, 3], [4, 4, 11, 14, 12, 13, 2]])
    tgt_in = torch.tensor([[1, 5, 6, 7, 2], [1, 9, 2, 3, 3], [1, 4, 4, 0, 14]])
    for seed, (mine, chapter) in enumerate(pairs):
        mine = randomised(mine, seed)
        assert set(mine.state_dict()) == set(chapter.state_dict())
        chapter = chapter.double().eval()
        chapter.load_state_dict(mine.state_dict())
        with torch.no_grad():
            if isinstance(chapter, kit.EncoderBlock):
                torch.testing.assert_close(mine(x, keep), chapter(x, keep))
            elif isinstance(chapter, kit.DecoderBlock):
                cross = padding([8, 3, 5], 8)[:, None, None, :]
                torch.testing.assert_close(mine(x, memory, causal, cross), chapter(x, memory, causal, cross))
            else:
                torch.testing.assert_close(mine(src, tgt_in), chapter(src, tgt_in))
                ids = ref["greedy_decode"](chapter, src, 12, 1, 2, 3)
                assert torch.equal(ids, chapter.greedy(src, 12, 1, 2))


def test_the_test_cell_s_stand_ins_are_the_reference_s_blocks(ref):
    """TorchEncoderBlock and TorchDecoderBlock (nn.TransformerEncoderLayer / DecoderLayer inside), which the grader
    swaps in for the student's blocks when it grades Transformer.forward, compute what the reference's blocks do."""
    from submissions import hidden_substitutes

    stand_ins = hidden_substitutes(A, "Transformer", dict(ref))
    assert set(stand_ins) == {"EncoderBlock", "DecoderBlock"}
    x, memory = randn(3, 6, 16, seed=1), randn(3, 8, 16, seed=2)
    keep = padding([6, 2, 4], 8)[:, None, None, :]
    per_head = (randn(3, 4, 6, 6, seed=3) > 0) | torch.eye(6, dtype=torch.bool)
    for norm_first in (True, False):
        for kind, args in (("EncoderBlock", [(x,), (x, keep[..., :6]), (x, per_head)]),
                           ("DecoderBlock", [(x, memory), (x, memory, per_head, keep), (x, memory, None, keep)])):
            mine = randomised(ref[kind](16, 4, 32, 0.1, norm_first), seed=int(norm_first))
            theirs = stand_ins[kind](16, 4, 32, 0.1, norm_first).double().eval()
            theirs.load_state_dict(mine.state_dict())
            with torch.no_grad():
                for a in args:
                    torch.testing.assert_close(theirs(*a), mine(*a))


def test_transformer_is_graded_with_stand_ins_for_the_blocks(expected_dir):
    """Broken EncoderBlock and DecoderBlock must not also cost Transformer.forward's points."""
    from autograder.checks import check_against_reference
    from submissions import hidden_substitutes, solution_sources, student_namespace

    from wrong_answers.transformer import DECODER_INIT, ENCODER_INIT

    unanswered = "\n    def forward(self, *args, **kwargs):\n        raise NotImplementedError()\n"
    namespace = student_namespace(A, {"encoder": ENCODER_INIT + unanswered, "decoder": DECODER_INIT + unanswered,
                                      "model": solution_sources(A)["model"]})
    model = namespace["Transformer"]
    with pytest.raises(NotImplementedError):
        namespace["EncoderBlock"](8, 2, 8)(torch.zeros(1, 2, 8))
    check_against_reference(A, "Transformer", model, substitutes=hidden_substitutes(A, "Transformer", namespace))
    with pytest.raises(AssertionError, match="not implemented"):
        check_against_reference(A, "Transformer", model)  # without the stand-ins it fails


# --------------------------------------------------------------------------- greedy decoding


def greedy_by_loop(model, src, max_len, bos, eos, pad):
    """One sentence at a time: run the model on <bos> and the tokens so far, take the best last score."""
    rows = []
    with torch.no_grad():
        for b in range(src.size(0)):
            ids = [bos]
            for _ in range(max_len):
                ids.append(int(model(src[b:b + 1], torch.tensor([ids]))[0, -1].argmax()))
                if ids[-1] == eos:
                    break
            rows.append(ids[1:])
    length = max(map(len, rows))
    return torch.tensor([r + [pad] * (length - len(r)) for r in rows])


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_greedy_decode_is_the_loop_over_sentences(ref, norm_first, seed):
    vocab = 9 + seed
    model = randomised(kit.Transformer(vocab, 16, 2, 2, 32, norm_first=norm_first, pad_id=0), seed)
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(3, vocab, (4, 6), generator=g)
    for b, n in enumerate((6, 1, 3, 5)):
        src[b, n:] = 0
    bos, eos = [(1, 2), (2, 5), (0, 7), (1, 3)][seed]
    for max_len in (1, 2, 6, 20):
        got = ref["greedy_decode"](model, src, max_len, bos, eos, 0)
        assert got.dtype == torch.long
        assert torch.equal(got, greedy_by_loop(model, src, max_len, bos, eos, 0))


def test_greedy_decode_stops_when_every_row_is_done(ref):
    calls = []

    def model(src, tgt_in):  # row b says <eos> (2) after b + 1 tokens of 4
        calls.append(tgt_in.size(1))
        t = tgt_in.size(1)
        token = torch.where(torch.arange(src.size(0)) + 1 < t, torch.tensor(2), torch.tensor(4))
        return nn.functional.one_hot(token, 6).double()[:, None].expand(-1, t, -1)

    out = ref["greedy_decode"](model, torch.ones(3, 2, dtype=torch.long), 10, 1, 2, 0)
    assert out.tolist() == [[4, 2, 0, 0], [4, 4, 2, 0], [4, 4, 4, 2]] and calls == [1, 2, 3, 4]


def test_the_toy_model_is_the_chapter_s_model(ref):
    """TinyTransformer without its own output layer and bias is coursekit.transformer.Transformer, tied; either way
    no position reads the target after it."""
    chapter = randomised(kit.Transformer(12, 16, 4, 2, 32, pad_id=0), seed=9)
    tiny = TinyTransformer(chapter.state_dict(), heads=4, pad_id=0)
    src, tgt_in = torch.tensor([[5, 6, 2, 0], [7, 8, 9, 2]]), torch.tensor([[1, 5, 5, 9, 3], [1, 4, 11, 2, 0]])
    with torch.no_grad():
        torch.testing.assert_close(tiny(src, tgt_in), chapter(src, tgt_in))
        spec = cases._tiny(torch.Generator().manual_seed(0), 12, 16, 2, 2, 32, False, (0, 1, 2), -2.0, 0.5)
        model = prepare(spec, CPU, D)
        later = tgt_in.clone()
        later[:, 3:] = 6
        torch.testing.assert_close(model(src, later)[:, :3], model(src, tgt_in)[:, :3])


# --------------------------------------------------------------------------- the hidden cases


def hidden(name):
    g = torch.Generator().manual_seed(case_seed(A, name))
    return list(cases.CASES[name](g))


class Noisy(nn.Module):
    """A model whose scores are shifted by noise in [-size, size], a fixed draw per (seed, source, prefix): a
    decoder whose answer survives it is clear of ties."""

    def __init__(self, model, seed, size):
        super().__init__()
        self.model, self.seed, self.size = model, seed, size

    def forward(self, src, tgt_in):
        out = self.model(src, tgt_in)
        noise = torch.empty_like(out, dtype=D)
        for b in range(src.size(0)):
            for t in range(tgt_in.size(1)):
                key = hash((self.seed, *src[b].tolist(), -1, *tgt_in[b, :t + 1].tolist())) % 2 ** 62
                g = torch.Generator().manual_seed(key)
                noise[b, t] = (2 * torch.rand(out.size(-1), generator=g, dtype=D) - 1) * self.size
        return out + noise.to(out)


def test_the_hidden_greedy_cases_are_clear_of_ties(ref):
    """Every hidden case of greedy_decode: the reference's ids in float64 are those of the float32 model with noise
    of GAP / 4 on every score, for several draws of the noise; the trusted margin is at least GAP."""
    for case in hidden("greedy_decode"):
        model, src, max_len, *ids = prepare(case["args"], CPU, D)
        kwargs = case["kwargs"]
        want = ref["greedy_decode"](model, src, max_len, *ids, **kwargs)
        pad, bos, eos = (kwargs["pad_id"], kwargs["bos_id"], kwargs["eos_id"]) if kwargs else (ids[2], ids[0], ids[1])
        rows, margins = cases._greedy(model, src, max_len, bos, eos, pad)
        assert min(margins) >= cases.GAP, case["id"]
        assert want.tolist() == [r + [pad] * (want.size(1) - len(r)) for r in rows], case["id"]
        for seed in range(4):
            args32 = prepare(case["args"], CPU, torch.float32)
            args32[0] = Noisy(args32[0], seed, cases.GAP / 4)
            got = ref["greedy_decode"](*args32, **kwargs)
            assert torch.equal(got, want), f"{case['id']}: noise changed the answer (seed {seed})"


def test_the_hidden_greedy_cases_cover_what_they_say(ref):
    by_group = {}
    for case in hidden("greedy_decode"):
        model, src, max_len, *ids = prepare(case["args"], CPU, D)
        kwargs = case["kwargs"]
        eos = kwargs["eos_id"] if kwargs else ids[1]
        out = ref["greedy_decode"](model, src, max_len, *ids, **kwargs)
        ends = [(row == eos).nonzero()[0].item() + 1 if (row == eos).any() else None for row in out]
        by_group.setdefault(case["group"], []).append((case, out, ends))
        if "every row says <eos> at once" not in case["id"]:
            assert len({tuple(row) for row in out.tolist()}) == out.size(0), f"{case['id']}: the rows differ"
        else:
            assert out.tolist() == [[eos]] * out.size(0)
    assert set(by_group) == {"rows that end at different steps", "max_len reached", "one sentence (B = 1)",
                             "<eos> at the first step"}
    for case, out, ends in by_group["rows that end at different steps"]:
        assert None not in ends and len(set(ends)) == len(ends) and out.size(1) < case["args"][2]
    for case, out, ends in by_group["max_len reached"]:
        assert out.size(1) == case["args"][2]
        assert None in ends or "exactly" in case["id"]
    assert all(out.size(0) == 1 for _, out, _ in by_group["one sentence (B = 1)"])
    for case, out, ends in by_group["<eos> at the first step"]:
        assert 1 in ends and None not in ends


def test_the_no_look_ahead_cases_share_their_prefixes(ref):
    """The reference's outputs on the rows of a pair agree on the positions where the pair agrees, and differ after:
    the student's, within tolerance of them, agree too."""
    for name, shared_input in (("DecoderBlock", 0), ("Transformer", 1)):
        for case in hidden(name):
            if case["group"] != "no look-ahead":
                continue
            module = ref[name](**case["init"]).double().eval()
            module.load_state_dict(prepare(case["state_dict"], CPU, D), strict=False)
            args = prepare(case["args"], CPU, D)
            with torch.no_grad():
                out = module(*args, **prepare(case["kwargs"], CPU, D)) if "kwargs" in case else module(*args)
            target = args[shared_input]
            for a in range(0, target.size(0), 2):
                same = (target[a] == target[a + 1]).reshape(target.size(1), -1).all(-1)
                k = int(same.long().cumprod(0).sum())
                assert 1 <= k < target.size(1), case["id"]
                torch.testing.assert_close(out[a, :k], out[a + 1, :k])
                assert not torch.allclose(out[a, k:], out[a + 1, k:])


def test_the_module_cases_draw_weights_for_every_parameter_of_the_reference(ref):
    for name in ("EncoderBlock", "DecoderBlock", "Transformer"):
        for case in hidden(name):
            module = ref[name](**case["init"])
            assert set(case["state_dict"]) == set(dict(module.named_parameters())), case["id"]
