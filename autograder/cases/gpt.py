"""Hidden cases for 10_gpt: seeded inputs the student never sees, edge cases included.

Causal self-attention is graded as a module in eval mode, loaded with weights drawn here for the reference's
parameter names (``qkv``, ``out``, those of coursekit.gpt.CausalSelfAttention: tests/test_oracles_10.py checks it),
matrices N(0, SCALE² / d) so that the attention is neither uniform nor one-hot and a missing 1/√d shows. Inputs
without a cache (past left out, or None), with a cache of P = 0 (empty), 1, 4 ... 9 past positions and T = 1 (one
generation step) or a chunk, one head to four, B = 1; the keys and values returned are graded with the output.
"No look-ahead": batches whose rows agree on their first t positions and differ after them, with and without a
cache (the reference's outputs, hence the student's, agree on those positions).

Sampling: logits drawn with ``untied`` (sorted in one order in every precision, so top-k never cuts a tie), the
nucleus kept ``GAP`` away from top_p (the mass ranked above every token at least GAP from top_p, and the last kept
token LOG_GAP more probable than the first dropped one), and each u at least GAP from every boundary of the
cumulative distribution it is compared with (``uniform_clear_of``): float32 and float64, sort-based and loop-based
code pick the same ids. Temperatures 0 (the arg-max, its margin ARGMAX_GAP), 0.5, 1 and 2.5; top-k 1, 3 and V;
top-p tiny (only the most probable token), 0.5, 0.9 and 1; both together; large logits (|l| up to 200: exp
overflows), V = 2, B = 1, float64 logits.

Generation takes a ``coursekit.toy_models.TinyGPT`` (coursekit.gpt.GPT built from the weights here, alike on both
sides), cached generation a ``CacheOnlyGPT``, which raises when called again without the cache or with more than
one token. Every model and prompt is drawn again until, in a trusted float64 loop (``_trusted``), every step of
every row is clear of ties by the margins above; the uniforms are then drawn clear of each step's boundaries, and
the float32 model must generate the same ids. The generation cells pass their own stand-in for ``sample``, so the
cases do not depend on the student's. Contexts stay within the model's block_size (no sliding window).
"""
import torch

from autograder.cases import module_weights, randn, uniform_clear_of, untied
from autograder.checks import BUILD, prepare
from coursekit import gpt as kit

F64 = torch.float64
CPU = torch.device("cpu")
GAP = 1e-4         # the least distance of u from a cumulative probability, and of the mass above a token from top_p
LOG_GAP = 1e-3     # the least log-probability margin between the last token kept and the first dropped (top-k, top-p)
ARGMAX_GAP = 0.01  # the least margin of the largest logit over the runner-up, at temperature 0
SCALE = 1.5        # the attention cases' qkv matrices are N(0, SCALE² / d)
TOKEN = 0.4        # the tiny GPTs' embeddings are N(0, TOKEN²): next-token distributions neither flat nor certain


# --------------------------------------------------------------------------- CausalSelfAttention


def _attention_weights(g, d):
    return {"qkv.weight": randn(g, 3 * d, d, scale=SCALE / d ** 0.5), "qkv.bias": randn(g, 3 * d, scale=0.2),
            "out.weight": randn(g, d, d, scale=d ** -0.5), "out.bias": randn(g, d, scale=0.2)}


def CausalSelfAttention(g):
    def case(group, note, d, heads, batch, size, past=None, x=None, keyword=False):
        x = randn(g, batch, size, d) if x is None else x
        args, kwargs = [x], {}
        if past is not None:
            cache = (randn(g, batch, heads, past, d // heads, scale=1.5), randn(g, batch, heads, past, d // heads))
            args, kwargs = ([x], dict(past=cache)) if keyword else ([x, cache], {})
        elif keyword:
            kwargs = dict(past=None)
        where = "no cache" if past is None else f"a cache of P={past}"
        return dict(id=f"d_model={d}, heads={heads}, B={batch}, T={size}, {where}: {note}", group=group,
                    kind="module", init=dict(d_model=d, heads=heads), state_dict=_attention_weights(g, d),
                    args=args, kwargs=kwargs, returns=["y", "(k, v)"])

    group = "no cache"
    yield case(group, "past left out", 16, 2, 2, 7)
    yield case(group, "past=None given", 12, 3, 3, 5, keyword=True)
    yield case(group, "one head", 8, 1, 2, 6)
    yield case(group, "four heads, B=1", 32, 4, 1, 9)
    yield case(group, "one position (T=1)", 16, 2, 3, 1)

    group = "with a cache"
    yield case(group, "a chunk after the past", 16, 2, 2, 3, past=4)
    yield case(group, "one new position (a generation step)", 16, 2, 3, 1, past=5)
    yield case(group, "past given as a keyword", 12, 3, 2, 4, past=2, keyword=True)
    yield case(group, "an empty cache (P=0)", 16, 4, 2, 5, past=0)
    yield case(group, "a longer cache, four heads, B=1", 32, 4, 1, 6, past=9)
    yield case(group, "P=1, one head", 8, 1, 2, 2, past=1)

    group = "no look-ahead"
    for past, size, split in ((None, 8, (2, 5)), (3, 6, (1, 4))):
        x = randn(g, 4, size, 16)
        for i, t in enumerate(split):  # rows 2i and 2i+1 agree on positions < t
            x[2 * i + 1, :t] = x[2 * i, :t]
        c = case(group, f"rows in pairs that agree on their first {split} positions and differ after them",
                 16, 2, 4, size, past=past, x=x)
        if past is not None:  # each pair shares its past too
            k, v = c["args"][1]
            for i in range(2):
                k[2 * i + 1], v[2 * i + 1] = k[2 * i], v[2 * i]
        yield c


# --------------------------------------------------------------------------- sample


def margins_clear(logits: torch.Tensor, temperature: float, top_k=None, top_p=None) -> bool:
    """Whether every row of ``logits`` (B, V), read in float64, is clear of a tie: at temperature 0 the arg-max
    by ARGMAX_GAP; else the top-k and top-p cuts (the last kept token LOG_GAP more probable than the first
    dropped) and the mass ranked above every token GAP from top_p."""
    logits = logits.double()
    if temperature == 0:
        top = logits.topk(2, dim=-1).values
        return bool((top[:, 0] - top[:, 1] >= ARGMAX_GAP).all())
    log_p = torch.log_softmax(logits / temperature, dim=-1).sort(dim=-1, descending=True).values  # (B, V)
    V = log_p.size(-1)
    kept = torch.full((log_p.size(0),), V)
    if top_k is not None:
        kept = kept.clamp(max=top_k)
    if top_p is not None:
        p = log_p.exp()
        before = p.cumsum(-1) - p
        if ((before - top_p).abs() < GAP).any():
            return False
        kept = torch.minimum(kept, (before < top_p).sum(-1))
    for row, m in enumerate(kept.tolist()):
        if m < V and log_p[row, m - 1] - log_p[row, m] < LOG_GAP:
            return False
    return True


def clear_uniforms(g, logits: torch.Tensor, temperature: float, top_k=None, top_p=None) -> torch.Tensor:
    """(B,) float32 uniforms, each at least GAP from every boundary of its row's cumulative distribution."""
    if temperature == 0:
        return torch.rand(logits.size(0), generator=g)
    cdf = kit.filtered_probabilities(logits.double(), temperature, top_k, top_p).cumsum(-1)
    u = torch.tensor([uniform_clear_of(g, row) for row in cdf], dtype=F64)
    return u.float()


def _logits(g, batch, vocab, scale, temperature, top_k=None, top_p=None):
    """(B, V) float32 untied logits clear of the cuts (drawn again until they are)."""
    for _ in range(1000):
        logits = untied(g, batch, vocab, gap=0.05, scale=scale)
        if margins_clear(logits, temperature, top_k, top_p):
            return logits
    raise RuntimeError("no logits clear of the cuts: loosen the margins")


def sample(g):
    def case(group, note, batch, vocab, scale=1.0, temperature=1.0, top_k=None, top_p=None, u=None,
             defaults=False, dtype=None):
        logits = _logits(g, batch, vocab, scale, temperature, top_k, top_p)
        u = clear_uniforms(g, logits, temperature, top_k, top_p) if u is None else u
        kwargs = {} if defaults else dict(temperature=temperature, top_k=top_k, top_p=top_p)
        settings = ", ".join(f"{k}={v}" for k, v in dict(temperature=temperature, top_k=top_k, top_p=top_p).items()
                             if v is not None)
        extra = dict(dtype=dtype) if dtype else {}
        if dtype == F64:
            logits, u = logits.double(), u.double()
        return dict(id=f"B={batch}, V={vocab}, {settings}: {note}", group=group, args=[logits, u], kwargs=kwargs,
                    **extra)

    group = "temperature"
    yield case(group, "temperature, top_k and top_p left to their defaults", 6, 11, scale=2.0, defaults=True)
    yield case(group, "temperature 1 given", 8, 20, scale=3.0)
    yield case(group, "a low temperature (0.5) sharpens", 6, 11, scale=2.0, temperature=0.5)
    yield case(group, "a high temperature (2.5) flattens", 6, 11, scale=3.0, temperature=2.5)
    yield case(group, "a character vocabulary (V=65)", 16, 65, scale=4.0)

    group = "top-k"
    yield case(group, "top_k=3", 8, 11, scale=2.0, top_k=3)
    yield case(group, "top_k=1: the most probable token, whatever u", 6, 11, scale=2.0, top_k=1)
    yield case(group, "top_k=V keeps every token", 6, 11, scale=2.0, top_k=11)
    yield case(group, "top_k=5 at temperature 2", 8, 30, scale=3.0, temperature=2.0, top_k=5)

    group = "top-p"
    yield case(group, "top_p=0.9", 8, 11, scale=2.0, top_p=0.9)
    yield case(group, "top_p=0.5", 8, 20, scale=3.0, top_p=0.5)
    yield case(group, "top_p=0.01: only the most probable token (the one that crosses top_p)", 6, 11, scale=2.0,
               top_p=0.01)
    yield case(group, "top_p=1 keeps every token", 6, 11, scale=0.5, top_p=1.0)
    yield case(group, "top_p=0.6 at temperature 0.5 (the nucleus of the tempered distribution)", 8, 11, scale=1.5,
               temperature=0.5, top_p=0.6)
    yield case(group, "top_p=0.8 at temperature 2", 8, 20, scale=3.0, temperature=2.0, top_p=0.8)

    group = "top-k and top-p together"
    yield case(group, "top_k cuts first", 8, 20, scale=1.0, top_k=3, top_p=0.9)
    yield case(group, "top_p cuts first", 8, 20, scale=4.0, top_k=10, top_p=0.5)
    yield case(group, "both, at temperature 1.5", 8, 30, scale=3.0, temperature=1.5, top_k=8, top_p=0.7)

    group = "greedy (temperature 0)"
    yield case(group, "the arg-max, whatever u", 8, 11, scale=2.0, temperature=0.0)
    yield case(group, "the arg-max, top_k and top_p given too", 8, 20, scale=2.0, temperature=0.0, top_k=5,
               top_p=0.5)
    yield case(group, "temperature=0 as an int", 4, 11, scale=2.0, temperature=0)

    group = "edge cases"
    yield case(group, "one row (B=1)", 1, 11, scale=2.0, top_p=0.9)
    yield case(group, "two tokens (V=2)", 8, 2, scale=2.0)
    yield case(group, "large logits (|l| up to about 200): exp overflows without care", 6, 11, scale=40.0,
               temperature=10.0)
    yield case(group, "float64 logits and u", 6, 11, scale=2.0, top_k=4, top_p=0.8, dtype=F64)
    u = torch.tensor([0.0, 0.9998, 0.5, 0.25])
    for _ in range(1000):  # u = 0 and u just below 1: the first and the last kept token
        logits = untied(g, 4, 11, gap=0.05, scale=2.0)
        cdf = kit.filtered_probabilities(logits.double(), 1.0, None, None).cumsum(-1)
        if margins_clear(logits, 1.0) and bool(((cdf - u.double()[:, None]).abs() >= GAP).all()):
            break
    else:
        raise RuntimeError("no logits clear of u = 0 and u = 0.9998")
    yield dict(id="B=4, V=11: u = 0 and u = 0.9998, at the ends of the cumulative distribution", group=group,
               args=[logits, u], kwargs={})


# --------------------------------------------------------------------------- generate, generate_with_kv_cache


def gpt_weights(g, vocab=11, block=16, d=16, heads=2, layers=2) -> dict:
    """Weights for every parameter of coursekit.gpt.GPT (stored in float32, as the student gets them)."""
    model = kit.GPT(kit.GPTConfig(vocab, block, d, heads, layers, dropout=0.0))
    return module_weights(model, g, embedding_scale=TOKEN)


def model_spec(weights: dict, heads: int, cache_only: bool = False) -> dict:
    kind = "CacheOnlyGPT" if cache_only else "TinyGPT"
    return {BUILD: f"coursekit.toy_models:{kind}", "kwargs": dict(weights=weights, heads=heads)}


@torch.no_grad()
def _trusted(model, prompt, n, u, temperature, top_k, top_p, g=None):
    """A trusted loop (the whole prefix at each step, coursekit.gpt's sampling rule): (ids, clear), clear telling
    whether every step was clear of ties; where ``u`` is None, each step's uniforms are drawn clear (returned)."""
    ids, draws, clear = prompt, [], True
    for i in range(n):
        logits = model(ids)[0][:, -1].double()  # (B, V)
        clear = clear and margins_clear(logits, temperature, top_k, top_p)
        step = u[i] if u is not None else clear_uniforms(g, logits, temperature, top_k, top_p)
        draws.append(step)
        token = kit.sample_with(logits, step.double(), temperature, top_k, top_p)
        ids = torch.cat([ids, token[:, None]], dim=1)
    return ids, clear, (torch.stack(draws) if draws else torch.zeros(0, prompt.size(0)))


def generation(g, batch, prompt_len, n, temperature=1.0, top_k=None, top_p=None, sizes=(11, 16, 16, 2, 2),
               accept=None):
    """(weights, heads, prompt, u) for a case: a model and prompt drawn until every step is clear of ties, u drawn
    clear of each step's boundaries, the float32 model generating the same ids (and ``accept(ids)``)."""
    vocab, block, d, heads, layers = sizes
    for _ in range(200):
        weights = gpt_weights(g, vocab, block, d, heads, layers)
        prompt = torch.randint(0, vocab, (batch, prompt_len), generator=g)
        want, clear, u = _trusted(prepare(model_spec(weights, heads), CPU, F64), prompt, n, None, temperature,
                                  top_k, top_p, g)
        if not clear or (accept is not None and not accept(want[:, prompt_len:])):
            continue
        same, _, _ = _trusted(prepare(model_spec(weights, heads), CPU, torch.float32), prompt, n, u, temperature,
                              top_k, top_p)
        if torch.equal(same, want):
            return weights, heads, prompt, u
    raise RuntimeError("no generation clear of ties found: loosen the margins")


def _varied(new):
    """Rows that differ from each other and use at least three different tokens."""
    return len({tuple(r) for r in new.tolist()}) == new.size(0) and len(set(new.flatten().tolist())) >= 3


def _generation_cases(g, cache_only):
    def case(group, note, batch, prompt_len, n, temperature=1.0, top_k=None, top_p=None, sizes=(11, 16, 16, 2, 2),
             defaults=False, accept=_varied):
        weights, heads, prompt, u = generation(g, batch, prompt_len, n, temperature, top_k, top_p, sizes, accept)
        kwargs = {} if defaults else dict(temperature=temperature, top_k=top_k, top_p=top_p)
        settings = ", ".join(f"{k}={v}" for k, v in dict(temperature=temperature, top_k=top_k, top_p=top_p).items()
                             if v is not None)
        vocab, block, d, h, layers = sizes
        return dict(id=f"B={batch}, prompt of {prompt_len}, n={n}, {settings}, a GPT of V={vocab}, "
                       f"block_size={block}, d_model={d}, {h} heads, {layers} layers: {note}",
                    group=group, args=[model_spec(weights, heads, cache_only), prompt, n, u], kwargs=kwargs)

    group = "sampling"
    yield case(group, "temperature, top_k and top_p left to their defaults", 3, 4, 8, defaults=True)
    yield case(group, "temperature 1 given", 4, 3, 10)
    yield case(group, "a wider model (d_model=32, 4 heads, 3 layers)", 2, 5, 8, sizes=(13, 20, 32, 4, 3))

    group = "temperature, top-k and top-p"
    yield case(group, "a low temperature", 3, 4, 8, temperature=0.6)
    yield case(group, "top_k=3", 3, 4, 8, top_k=3)
    yield case(group, "top_p=0.8", 3, 4, 8, top_p=0.8)
    yield case(group, "all three", 3, 3, 8, temperature=1.3, top_k=5, top_p=0.9)

    group = "greedy (temperature 0)"
    yield case(group, "the arg-max at every step", 3, 4, 8, temperature=0.0,
               accept=lambda new: len({tuple(r) for r in new.tolist()}) == new.size(0))

    group = "sizes"
    yield case(group, "one sequence (B=1)", 1, 5, 7, accept=None)
    yield case(group, "a prompt of one token", 3, 1, 9)
    yield case(group, "one new token (n=1)", 4, 6, 1, accept=None)
    yield case(group, "the prompt and the new tokens fill the context window (16)", 2, 6, 10)


def generate(g):
    yield from _generation_cases(g, cache_only=False)


def generate_with_kv_cache(g):
    yield from _generation_cases(g, cache_only=True)


CASES = {
    "CausalSelfAttention": CausalSelfAttention,
    "sample": sample,
    "generate": generate,
    "generate_with_kv_cache": generate_with_kv_cache,
}
