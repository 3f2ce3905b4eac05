"""Chapter 10's reference solution against independent oracles: the causal attention as PyTorch's
``F.scaled_dot_product_attention(is_causal=True)`` and ``nn.MultiheadAttention`` with a causal mask, its cache as the
uncached call on the concatenated input, and as the chapter's own layer (coursekit.gpt, whose parameter names the
hidden cases draw weights for); sampling as a sort-free loop over the tokens in Python numbers, as the chapter's
``sample_with``, and by its frequencies over many uniforms; generation as the chapter's generator (cached and
uncached) and as the plain chain-rule loop, cached generation token for token the uncached one, and the cache-only
model refusing what it must refuse; and the hidden cases proven to say what they say (every u clear of every
boundary, every cut clear of a tie, float32 deciding as float64, contexts within the window, no look-ahead)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from autograder.cases import gpt as cases
from autograder.checks import call_case, compare_case, prepare
from autograder.expected import draw_cases, reference_output
from autograder.reference import load_reference
from coursekit import gpt as kit
from coursekit.toy_models import CacheOnlyGPT, TinyGPT

A = "10_gpt"
D = torch.float64
CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ref():
    return load_reference(A)


def generated(name: str) -> list[dict]:
    """The hidden cases of ``name``, as the grader draws them (same seed), with the reference's outputs."""
    reference = load_reference(A)
    drawn = draw_cases(A, name)[0]
    return [dict(case, expected=reference_output(reference[name], case)) for case in drawn]


# --------------------------------------------------------------------------- CausalSelfAttention


def attention(ref, d, heads, seed):
    torch.manual_seed(seed)
    return ref["CausalSelfAttention"](d, heads).double().eval()


def split_heads(t, heads):
    B, T, C = t.shape
    return t.view(B, T, heads, C // heads).transpose(1, 2)


@pytest.mark.parametrize("d, heads, T", [(16, 2, 7), (12, 3, 5), (8, 1, 6), (32, 4, 1), (64, 8, 20)])
def test_attention_is_pytorch_s_causal_attention(ref, d, heads, T):
    layer = attention(ref, d, heads, seed=d + T)
    x = torch.randn(3, T, d, dtype=D)
    with torch.no_grad():
        y, (k, v) = layer(x)
        q_, k_, v_ = (split_heads(t, heads) for t in layer.qkv(x).split(d, dim=-1))
        want = F.scaled_dot_product_attention(q_, k_, v_, is_causal=True).transpose(1, 2).reshape(3, T, d)
        torch.testing.assert_close(y, layer.out(want))
        torch.testing.assert_close(k, k_)
        torch.testing.assert_close(v, v_)
        mha = nn.MultiheadAttention(d, heads, batch_first=True, dtype=D)
        mha.in_proj_weight.copy_(layer.qkv.weight)
        mha.in_proj_bias.copy_(layer.qkv.bias)
        mha.out_proj.weight.copy_(layer.out.weight)
        mha.out_proj.bias.copy_(layer.out.bias)
        expected, _ = mha(x, x, x, attn_mask=torch.ones(T, T, dtype=torch.bool).triu(1))
        torch.testing.assert_close(y, expected)


@pytest.mark.parametrize("P, T", [(0, 5), (1, 1), (4, 3), (9, 1), (6, 6)])
def test_attention_with_a_cache_is_the_uncached_call_on_the_whole_input(ref, P, T):
    layer = attention(ref, 16, 2, seed=P * 10 + T)
    x = torch.randn(2, P + T, 16, dtype=D)
    with torch.no_grad():
        full, (k_full, v_full) = layer(x)
        _, past = layer(x[:, :P]) if P else (None, (torch.zeros(2, 2, 0, 8, dtype=D),) * 2)
        y, (k, v) = layer(x[:, P:], past)
    torch.testing.assert_close(y, full[:, P:])
    torch.testing.assert_close(k, k_full)
    torch.testing.assert_close(v, v_full)


def test_attention_is_the_chapter_s_layer_with_the_same_names(ref):
    """coursekit.gpt.CausalSelfAttention (the chapter's model) and the reference: the same parameter names and
    shapes (the hidden cases draw weights for these names), the same outputs with the same weights, cached too."""
    mine, theirs = attention(ref, 24, 3, seed=1), kit.CausalSelfAttention(24, 3).double().eval()
    assert {n: p.shape for n, p in mine.named_parameters()} == {n: p.shape for n, p in theirs.named_parameters()}
    theirs.load_state_dict(mine.state_dict())
    x = torch.randn(2, 9, 24, dtype=D)
    with torch.no_grad():
        for a, b in zip(mine(x), theirs(x)):
            torch.testing.assert_close(a, b)
        _, past = theirs(x[:, :5])
        for a, b in zip(mine(x[:, 5:], past), theirs(x[:, 5:], past)):
            torch.testing.assert_close(a, b)
    case = next(iter(generated("CausalSelfAttention")))
    assert sorted(case["state_dict"]) == sorted(n for n, _ in theirs.named_parameters())


def test_the_look_ahead_cases_share_their_outputs_on_the_shared_positions():
    found = 0
    for case in generated("CausalSelfAttention"):
        if case["group"] != "no look-ahead":
            continue
        x = case["args"][0]
        y = case["expected"][0]
        for i in range(x.size(0) // 2):
            same = int((x[2 * i] == x[2 * i + 1]).all(-1).long().cumprod(0).sum())
            assert 0 < same < x.size(1)
            torch.testing.assert_close(y[2 * i, :same], y[2 * i + 1, :same])
            assert (y[2 * i, same:] - y[2 * i + 1, same:]).abs().max() > 1e-2, "the rows differ after the prefix"
            found += 1
    assert found == 4


# --------------------------------------------------------------------------- sample


def filtered_by_loop(row: list[float], temperature: float, top_k=None, top_p=None) -> list[float]:
    """The kept, renormalised probabilities of one row of logits, without sorting: a token's rank is the number
    of tokens more probable than it (or as probable with a lower id), and the mass above it is theirs."""
    top = max(row)
    weights = [math.exp((l - top) / temperature) for l in row]
    total = math.fsum(weights)
    p = [w / total for w in weights]
    keep = []
    for i, p_i in enumerate(p):
        above = [p_j for j, p_j in enumerate(p) if p_j > p_i or (p_j == p_i and j < i)]
        keep.append((top_k is None or len(above) < top_k) and (top_p is None or math.fsum(above) < top_p))
    mass = math.fsum(p_i for p_i, k in zip(p, keep) if k)
    return [p_i / mass if k else 0.0 for p_i, k in zip(p, keep)]


def sample_by_loop(logits, u, temperature=1.0, top_k=None, top_p=None) -> list[int]:
    tokens = []
    for row, r in zip(logits.double().tolist(), u.double().tolist()):
        if temperature == 0:
            tokens.append(max(range(len(row)), key=lambda i: (row[i], -i)))
            continue
        q = filtered_by_loop(row, temperature, top_k, top_p)
        cumulative = 0.0
        for i, q_i in enumerate(q):
            cumulative += q_i
            if q_i > 0 and cumulative > r:
                tokens.append(i)
                break
        else:
            tokens.append(max(i for i, q_i in enumerate(q) if q_i > 0))
    return tokens


SETTINGS = [dict(), dict(temperature=0.5), dict(temperature=2.5), dict(top_k=1), dict(top_k=4), dict(top_p=0.3),
            dict(top_p=0.9), dict(top_p=1.0), dict(temperature=1.5, top_k=6, top_p=0.8), dict(temperature=0.0)]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "defaults")
def test_sample_is_the_sort_free_loop_and_the_chapter_s_rule(ref, settings):
    g = torch.Generator().manual_seed(len(str(settings)))
    logits = torch.randn(64, 12, generator=g, dtype=D) * 2
    u = torch.rand(64, generator=g, dtype=D)
    got = ref["sample"](logits, u, **settings)
    assert got.dtype == torch.long and got.shape == (64,)
    assert got.tolist() == sample_by_loop(logits, u, **settings)
    assert torch.equal(got, kit.sample_with(logits, u, **settings))


@pytest.mark.parametrize("settings", [dict(), dict(temperature=0.7, top_k=5), dict(top_p=0.75)],
                         ids=["defaults", "temperature,top_k", "top_p"])
def test_sampling_frequencies_are_the_kept_distribution(ref, settings):
    """200,000 draws from one row: a chi-square test of the counts against the kept, renormalised probabilities
    (a test that a correct sampler fails about once in 10,000), and the dropped tokens never drawn."""
    g = torch.Generator().manual_seed(3)
    row = torch.randn(9, generator=g, dtype=D) * 1.5
    n = 200_000
    tokens = ref["sample"](row.expand(n, -1), torch.rand(n, generator=g, dtype=D), **settings)
    counts = torch.bincount(tokens, minlength=9).double()
    q = torch.tensor(filtered_by_loop(row.tolist(), settings.get("temperature", 1.0), settings.get("top_k"),
                                      settings.get("top_p")), dtype=D)
    assert (counts[q == 0] == 0).all()
    kept = q > 0
    chi2 = float(((counts[kept] - n * q[kept]) ** 2 / (n * q[kept])).sum())
    dof = int(kept.sum()) - 1
    bound = dof * (1 - 2 / (9 * dof) + 3.72 * math.sqrt(2 / (9 * dof))) ** 3 if dof else 0.0
    assert chi2 <= bound + 1e-9, f"chi-square {chi2:.2f} over {dof} degrees of freedom (bound {bound:.2f})"


def test_the_sample_cases_are_clear_of_every_boundary_and_decide_alike_in_float32(ref):
    for case in generated("sample"):
        logits, u = case["args"]
        settings = {k: v for k, v in case["kwargs"].items()}
        temperature = settings.get("temperature", 1.0)
        assert cases.margins_clear(logits, temperature, settings.get("top_k"), settings.get("top_p")), case["id"]
        if temperature != 0:
            for row, r in zip(logits.double().tolist(), u.double().tolist()):
                cdf = torch.tensor(filtered_by_loop(row, temperature, settings.get("top_k"), settings.get("top_p")),
                                   dtype=D).cumsum(0)
                assert ((cdf - r).abs() >= cases.GAP * 0.999).all(), case["id"]
        assert case["expected"].tolist() == sample_by_loop(logits, u, **settings), case["id"]
        for dtype in (torch.float32, D):  # the reference itself, fed float32 inputs, decides alike
            compare_case(call_case(ref["sample"], case, CPU, dtype), case, "sample", CPU)


# --------------------------------------------------------------------------- generate


def tiny(seed, vocab=11, block=16, d=16, heads=2, layers=2):
    weights = cases.gpt_weights(torch.Generator().manual_seed(seed), vocab, block, d, heads, layers)
    return {k: v.double() for k, v in weights.items()}, heads


def chain_rule(model, prompt, n, u, **settings):
    ids = prompt
    for i in range(n):
        logits, _ = model(ids)
        ids = torch.cat([ids, torch.tensor(sample_by_loop(logits[:, -1], u[i], **settings))[:, None]], dim=1)
    return ids


@pytest.mark.parametrize("settings", [dict(), dict(temperature=0.8, top_k=4), dict(top_p=0.7), dict(temperature=0.0)],
                         ids=["defaults", "temperature,top_k", "top_p", "greedy"])
def test_generation_is_the_chapter_s_and_the_chain_rule(ref, settings):
    weights, heads = tiny(1)
    prompt = torch.randint(0, 11, (4, 3), generator=torch.Generator().manual_seed(2))
    draws = torch.Generator().manual_seed(3)
    u = torch.stack([torch.rand(4, generator=draws) for _ in range(12)])  # as the chapter's generator draws them
    model = TinyGPT(weights, heads)
    for use_cache in (False, True):
        want = kit.generate(model.gpt, prompt, 12, generator=torch.Generator().manual_seed(3), use_cache=use_cache,
                            **settings)
        assert torch.equal(ref["generate"](model, prompt, 12, u, **settings), want)
        assert torch.equal(ref["generate_with_kv_cache"](CacheOnlyGPT(weights, heads), prompt, 12, u, **settings), want)
    want = chain_rule(model, prompt, 12, u, **settings)
    assert ref["generate"](model, prompt, 12, u, **settings).tolist() == want.tolist()


def test_cached_generation_reads_each_position_once_and_the_cache_only_model_refuses_the_rest(ref):
    weights, heads = tiny(4)
    prompt = torch.randint(0, 11, (2, 5), generator=torch.Generator().manual_seed(5))
    u = torch.rand(9, 2, generator=torch.Generator().manual_seed(6))
    model = CacheOnlyGPT(weights, heads)
    out = ref["generate_with_kv_cache"](model, prompt, 9, u)
    assert model.calls == 9 and model.positions == 5 + 8
    plain = TinyGPT(weights, heads)
    assert torch.equal(ref["generate"](plain, prompt, 9, u), out)
    assert plain.calls == 9 and plain.positions == sum(range(5, 14))
    with pytest.raises(RuntimeError, match="has no cache"):
        ref["generate"](CacheOnlyGPT(weights, heads), prompt, 9, u)
    again = CacheOnlyGPT(weights, heads)
    _, cache = again(prompt)
    with pytest.raises(RuntimeError, match="feeds 2 tokens"):
        again(prompt[:, :2], cache)


@pytest.mark.parametrize("name", ["generate", "generate_with_kv_cache"])
def test_the_generation_cases_are_clear_of_ties_fit_the_window_and_decide_alike_in_float32(ref, name):
    for case in generated(name):
        spec, prompt, n, u = case["args"]
        settings = case["kwargs"]
        model = TinyGPT(**prepare(spec["kwargs"], CPU, D))  # the same weights, without the cache-only rule
        assert spec["__build__"].endswith("CacheOnlyGPT" if name == "generate_with_kv_cache" else "TinyGPT")
        assert prompt.size(1) + n <= model.block_size, case["id"]
        ids = case["expected"]
        assert torch.equal(ids[:, :prompt.size(1)], prompt) and ids.shape == (prompt.size(0), prompt.size(1) + n)
        temperature = settings.get("temperature", 1.0)
        for i in range(n):  # each step, in float64: the cuts clear of ties, u clear of the boundaries
            logits = model(ids[:, :prompt.size(1) + i])[0][:, -1]
            assert cases.margins_clear(logits, temperature, settings.get("top_k"), settings.get("top_p")), case["id"]
            if temperature != 0:
                for row, r in zip(logits.tolist(), u[i].double().tolist()):
                    cdf = torch.tensor(filtered_by_loop(row, temperature, settings.get("top_k"),
                                                        settings.get("top_p")), dtype=D).cumsum(0)
                    assert ((cdf - r).abs() >= cases.GAP * 0.999).all(), case["id"]
            assert ids[:, prompt.size(1) + i].tolist() == sample_by_loop(logits, u[i], **settings), case["id"]
        compare_case(call_case(ref[name], case, CPU, torch.float32), case, name, CPU)


def test_the_generation_cases_vary():
    """The sequences differ from row to row, the settings matter (greedy differs from sampling), and the
    whole prefix matters: a model fed only the newest token says something else."""
    for case in generated("generate"):
        spec, prompt, n, u = case["args"]
        new = case["expected"][:, prompt.size(1):]
        if n > 1 and prompt.size(0) > 1:
            assert len({tuple(r) for r in new.tolist()}) == new.size(0), case["id"]
    case = next(c for c in generated("generate") if c["args"][2] >= 8)
    spec, prompt, n, u = case["args"]
    model = prepare(spec, CPU, D)
    forgetful = prompt
    for i in range(n):
        logits, _ = model(forgetful[:, -1:])
        forgetful = torch.cat([forgetful, torch.tensor(sample_by_loop(logits[:, -1], u[i]))[:, None]], dim=1)
    assert not torch.equal(forgetful, case["expected"])
