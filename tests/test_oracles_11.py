"""Chapter 11's reference solution against independent oracles: the patches as PyTorch's ``F.unfold`` and as the
docstring's formula entry by entry; the patch embedding as a ``Conv2d`` with stride = kernel = patch holding the same
weights; the ViT as ``F.unfold`` and PyTorch's own ``nn.TransformerEncoderLayer`` holding the weights of chapter 08's
blocks; rollout as a sum per entry in Python numbers; the chapter's modules (``coursekit.vit``) as the reference's with
the same weights and names, for which the hidden cases draw their weights; and the hidden cases proven to say what
they say (the class token and the positions matter in them, rows that do not sum to one need renormalising, float32
answers are well within the tolerance)."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from autograder.cases import vit as cases
from autograder.checks import call_case, compare_case, tolerance
from autograder.expected import draw_cases
from autograder.reference import load_reference
from coursekit import vit as kit

A = "11_vit"
D = torch.float64
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def ref():
    return load_reference(A)


def generated(name: str) -> list[dict]:
    """The hidden cases of ``name``, as the grader draws them (same seed), without their expected outputs."""
    return draw_cases(A, name)[0]


def expected(ref, name: str, case: dict):
    return call_case(ref[name], case, CPU, D)


# --------------------------------------------------------------------------- patchify

SHAPES = [((3, 1, 28, 28), 4), ((2, 1, 28, 28), 7), ((2, 3, 12, 12), 3), ((2, 2, 8, 12), 4), ((1, 3, 12, 8), 2),
          ((2, 3, 5, 7), 1), ((2, 2, 6, 6), 6), ((1, 1, 3, 15), 3)]


@pytest.mark.parametrize("shape, patch", SHAPES, ids=lambda v: str(v))
@pytest.mark.parametrize("dtype", [torch.float32, D])
def test_patchify_is_unfold_and_the_chapter_s(ref, shape, patch, dtype):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape) + patch), dtype=dtype)
    got = ref["patchify"](x, patch)
    assert got.dtype == dtype
    assert torch.equal(got, F.unfold(x, patch, stride=patch).transpose(1, 2))
    assert torch.equal(got, kit.patchify(x, patch))


def test_patchify_is_the_docstring_s_formula_entry_by_entry(ref):
    B, C, H, W, p = 2, 3, 6, 9, 3
    x = torch.randn(B, C, H, W, generator=torch.Generator().manual_seed(0), dtype=D)
    got = ref["patchify"](x, p)
    assert got.shape == (B, (H // p) * (W // p), C * p * p)
    for b in range(B):
        for r in range(H // p):
            for c in range(W // p):
                for k in range(C):
                    for i in range(p):
                        for j in range(p):
                            assert got[b, r * (W // p) + c, k * p * p + i * p + j] == x[b, k, r * p + i, c * p + j]


@pytest.mark.parametrize("shape, patch", [((1, 1, 28, 28), 5), ((2, 1, 12, 10), 4), ((2, 3, 10, 12), 4),
                                          ((1, 2, 9, 9), 2)])
def test_patchify_refuses_an_image_that_does_not_cut_into_patches(ref, shape, patch):
    with pytest.raises(ValueError):
        ref["patchify"](torch.zeros(shape), patch)
    with pytest.raises(ValueError):
        kit.patchify(torch.zeros(shape), patch)


# --------------------------------------------------------------------------- PatchEmbedding


def conv_of(embed, in_channels: int) -> nn.Conv2d:
    d, p = embed.proj.out_features, embed.patch
    conv = nn.Conv2d(in_channels, d, p, stride=p, dtype=embed.proj.weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(embed.proj.weight.view(d, in_channels, p, p))
        conv.bias.copy_(embed.proj.bias)
    return conv


@pytest.mark.parametrize("channels, patch, d, size", [(1, 4, 16, (28, 28)), (3, 4, 24, (12, 16)), (2, 3, 8, (9, 9)),
                                                      (3, 1, 5, (3, 4)), (1, 8, 4, (8, 8))])
def test_patch_embedding_is_a_strided_convolution_and_the_chapter_s(ref, channels, patch, d, size):
    g = torch.Generator().manual_seed(channels * patch * d)
    mine = ref["PatchEmbedding"](channels, patch, d).double().eval()
    chapter = kit.PatchEmbedding(channels, patch, d).double().eval()
    assert {n: p.shape for n, p in mine.named_parameters()} == {n: p.shape for n, p in chapter.named_parameters()}
    with torch.no_grad():
        for p in mine.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=D))
        chapter.load_state_dict(mine.state_dict())
        x = torch.randn(3, channels, *size, generator=g, dtype=D)
        want = conv_of(mine, channels)(x).flatten(2).transpose(1, 2)
        torch.testing.assert_close(mine(x), want)
        torch.testing.assert_close(chapter(x), want)


def test_the_embedding_cases_load_into_the_chapter_s_module(ref):
    for case in generated("PatchEmbedding"):
        for module in (kit.PatchEmbedding(**case["init"]), ref["PatchEmbedding"](**case["init"])):
            assert {n: tuple(p.shape) for n, p in module.named_parameters()} == \
                {n: tuple(t.shape) for n, t in case["state_dict"].items()}, case["id"]


# --------------------------------------------------------------------------- ViT


def pytorch_layer(block) -> nn.TransformerEncoderLayer:
    """nn.TransformerEncoderLayer (pre-norm, ReLU) holding the weights of one of chapter 08's encoder blocks."""
    att, ff = block.attention, block.feed_forward
    d = att.W_q.in_features
    layer = nn.TransformerEncoderLayer(d, att.heads, ff[0].out_features, dropout=0.0, batch_first=True,
                                       norm_first=True, dtype=att.W_q.weight.dtype)
    with torch.no_grad():
        layer.self_attn.in_proj_weight.copy_(torch.cat([att.W_q.weight, att.W_k.weight, att.W_v.weight]))
        layer.self_attn.in_proj_bias.copy_(torch.cat([att.W_q.bias, att.W_k.bias, att.W_v.bias]))
        layer.self_attn.out_proj.load_state_dict(att.W_o.state_dict())
        layer.linear1.load_state_dict(ff[0].state_dict())
        layer.linear2.load_state_dict(ff[3].state_dict())
        layer.norm1.load_state_dict(block.norm1.state_dict())
        layer.norm2.load_state_dict(block.norm2.state_dict())
    return layer.eval()


def pytorch_vit(model, x):
    """The ViT's equations on F.unfold and PyTorch's encoder layers, holding the model's weights."""
    p = model.embed.patch
    patches = F.unfold(x, p, stride=p).transpose(1, 2) @ model.embed.proj.weight.T + model.embed.proj.bias
    z = torch.cat([model.cls.expand(len(x), -1, -1), patches], 1) + model.pos
    for block in model.blocks:
        z = pytorch_layer(block)(z)
    return model.head(model.norm(z[:, 0]))


CONFIGS = [dict(image_size=12, patch=4, d_model=16, heads=2, layers=2, d_ff=24, classes=5),
           dict(image_size=8, in_channels=3, patch=2, d_model=12, heads=3, layers=1, d_ff=16, classes=4),
           dict(image_size=28, patch=7, d_model=24, heads=4, layers=3, d_ff=32, classes=10),
           dict(image_size=6, in_channels=2, patch=6, d_model=8, heads=2, layers=2, d_ff=8, classes=2),
           dict(image_size=8, patch=4, d_model=8, heads=2, layers=0, d_ff=8, classes=3)]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_vit_is_unfold_and_pytorch_s_encoder_layers_and_the_chapter_s(ref, config):
    g = torch.Generator().manual_seed(config["d_model"] + config["layers"])
    weights = {k: v.double() for k, v in cases.vit_weights(g, **config).items()}
    mine = ref["ViT"](**config, dropout=0.0).double().eval()
    chapter = kit.ViT(kit.ViTConfig(**config, dropout=0.0)).double().eval()
    mine.load_state_dict(weights)
    chapter.load_state_dict(weights)
    x = torch.randn(4, config.get("in_channels", 1), config["image_size"], config["image_size"], generator=g, dtype=D)
    with torch.no_grad():
        want = pytorch_vit(mine, x)
        torch.testing.assert_close(mine(x), want)
        torch.testing.assert_close(chapter(x), want)


def test_the_vit_cases_load_into_the_chapter_s_model_and_the_reference_s(ref):
    for case in generated("ViT"):
        module = ref["ViT"](**case["init"])
        assert {n: tuple(p.shape) for n, p in module.named_parameters()} == \
            {n: tuple(t.shape) for n, t in case["state_dict"].items()}, case["id"]
        init = {k: v for k, v in case["init"].items() if k != "dropout"}
        chapter = kit.ViT(kit.ViTConfig(**init, dropout=0.0))
        chapter.load_state_dict(case["state_dict"])  # strict: the same names and shapes


def test_the_class_token_and_the_positions_matter_in_the_vit_cases(ref):
    """In every case with blocks, another class token, no position for it, or the class token at the end change the
    logits by far more than the tolerance: a class token left out or misplaced cannot pass."""
    for case in generated("ViT"):
        want = expected(ref, "ViT", case)
        state = case["state_dict"]
        assert state["cls"].abs().mean() > 0.5 and state["pos"].abs().mean() > 0.2, case["id"]
        for change in ("no class token", "no position for the class token", "class token last"):
            changed = dict(state)
            if change == "no class token":
                changed["cls"] = torch.zeros_like(state["cls"])
            elif change == "no position for the class token":
                changed["pos"] = state["pos"].clone()
                changed["pos"][:, 0] = 0
            else:
                changed["pos"] = torch.roll(state["pos"], 1, dims=1)  # what "cat([patches, cls]) + pos" computes
            got = call_case(ref["ViT"], dict(case, state_dict=changed), CPU, D)
            assert (got - want).abs().max() > 1e-2, f"{case['id']}: {change}"


# --------------------------------------------------------------------------- attention_rollout


def rollout_by_entries(weights):
    """Rollout with a sum per entry, in Python numbers."""
    B, heads, T, _ = weights[0].shape
    out = []
    for b in range(B):
        joint = [[float(i == j) for j in range(T)] for i in range(T)]
        for w in weights:
            w = w[b].double().tolist()
            a = [[0.5 * sum(w[h][i][j] for h in range(heads)) / heads + 0.5 * (i == j) for j in range(T)]
                 for i in range(T)]
            a = [[v / sum(row) for v in row] for row in a]
            joint = [[sum(a[i][k] * joint[k][j] for k in range(T)) for j in range(T)] for i in range(T)]
        out.append(joint)
    return torch.tensor(out, dtype=D)


@pytest.mark.parametrize("layers, heads, size", [(1, 1, 1), (1, 3, 4), (2, 2, 5), (4, 3, 7), (6, 1, 3)])
@pytest.mark.parametrize("normalised", [True, False])
def test_rollout_is_the_sum_per_entry_and_the_chapter_s(ref, layers, heads, size, normalised):
    g = torch.Generator().manual_seed(layers * 100 + heads * 10 + size)
    if normalised:
        weights = [torch.randn(2, heads, size, size, generator=g, dtype=D).softmax(-1) for _ in range(layers)]
    else:
        weights = [torch.rand(2, heads, size, size, generator=g, dtype=D) * 3 + 0.01 for _ in range(layers)]
    got = ref["attention_rollout"](weights)
    torch.testing.assert_close(got, rollout_by_entries(weights))
    torch.testing.assert_close(got.sum(-1), torch.ones(2, size, dtype=D))
    torch.testing.assert_close(kit.attention_rollout(weights), got)
    torch.testing.assert_close(ref["attention_rollout"](tuple(weights)), got)


def test_rollout_of_a_real_vit_is_the_sum_per_entry(ref):
    weights = cases.real_vit_weights(3, 1, 0, patch=7, d_model=16, heads=2, layers=3, d_ff=16)  # T = 17
    assert [tuple(w.shape) for w in weights] == [(1, 2, 17, 17)] * 3
    torch.testing.assert_close(ref["attention_rollout"]([w.double() for w in weights]), rollout_by_entries(weights))


def test_the_rollout_cases_need_every_step(ref):
    """Rows that do not sum to one in their group (renormalising matters there), softmax rows in the softmax groups
    and the real ViT's, and the order of the layers mattering wherever there are several."""
    for case in generated("attention_rollout"):
        weights = case["args"][0]
        sums = torch.stack([w.double().mean(1).sum(-1) for w in weights])
        if case["group"] == "weights whose rows do not sum to one":
            assert ((sums - 1).abs() > 0.05).float().mean() > 0.5, case["id"]
            assert all((w >= 0).all() and (w.sum(-1) > 0).all() for w in weights), case["id"]
        elif case["group"] in ("softmax weights", "a real ViT's attention"):
            torch.testing.assert_close(sums, torch.ones_like(sums), rtol=1e-5, atol=1e-5)
        if len(weights) > 1 and weights[0].size(-1) > 1:
            want = expected(ref, "attention_rollout", case)
            backwards = expected(ref, "attention_rollout", dict(case, args=[list(weights)[::-1]]))
            assert (want - backwards).abs().max() > 1e-3, f"{case['id']}: the order must matter"


# --------------------------------------------------------------------------- float32 answers pass with room


@pytest.mark.parametrize("name", ["patchify", "PatchEmbedding", "ViT", "attention_rollout"])
def test_float32_answers_are_well_within_the_tolerance(ref, name):
    """The reference in float32, as a student's code runs, against its float64 outputs: a tenth of the tolerance."""
    rtol, atol = tolerance(CPU, torch.float32)
    for case in generated(name):
        want = expected(ref, name, case)
        got = call_case(ref[name], case, CPU, case.get("dtype", torch.float32))
        compare_case(got, dict(case, expected=want, rtol=None, atol=None), name, CPU)
        if case.get("dtype") != D:
            assert ((got.double() - want).abs() <= (atol + rtol * want.abs()) / 10).all(), case["id"]
