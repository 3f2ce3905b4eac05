"""Plausible wrong answers for 10_gpt: each must cost exactly its own test's points.

The attention variants are the reference with one line changed (``_attention``), and so are the sampling variants
(``_sample``); the generators are whole functions. The generation cells swap in their own ``sample`` while they run,
so a wrong ``sample`` costs nothing there, and a generator that reads the whole text again fails the cached cell,
whose model (``coursekit.toy_models.CacheOnlyGPT``) refuses a second call without the cache.
"""

# the reference's attention, with the lines that the wrong answers change
ATTENTION = '''
class CausalSelfAttention(nn.Module):
    def __init__(self, d_model, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x, past=None):
        B, T, C = x.shape
        d = C // self.heads
        q, k, v = SPLIT
        q, k, v = HEADS
        if past is not None:
            k = CAT_K
            v = CAT_V
        P = k.size(2) - T
        scores = q @ k.transpose(-2, -1) SCALE
        allowed = MASK
        weights = scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)
        y = (weights @ v).transpose(1, 2).reshape(B, T, C)
        return self.out(y), (k, v)
'''


def _attention(**changes) -> str:
    source = ATTENTION
    defaults = dict(SPLIT="self.qkv(x).split(C, dim=-1)",
                    HEADS="(t.view(B, T, self.heads, d).transpose(1, 2) for t in (q, k, v))",
                    CAT_K="torch.cat([past[0], k], dim=2)", CAT_V="torch.cat([past[1], v], dim=2)",
                    SCALE="/ math.sqrt(d)",
                    MASK="torch.ones(T, P + T, dtype=torch.bool, device=x.device).tril(diagonal=P)")
    for key, value in {**defaults, **changes}.items():
        source = source.replace(key, value)
    return source


# the reference's sampling, with the lines that the wrong answers change
SAMPLE = '''
def sample(logits, u, temperature=1.0, top_k=None, top_p=None):
    if temperature == 0:
        return logits.argmax(dim=-1)
    p = F.softmax(TEMPERED, dim=-1)
    sorted_p, order = p.sort(dim=-1, descending=True)
    keep = torch.ones_like(sorted_p, dtype=torch.bool)
    if top_k is not None:
        keep[:, TOP_K:] = False
    if top_p is not None:
        keep &= NUCLEUS
    kept = torch.zeros_like(p).scatter(-1, order, sorted_p * keep)
    cdf = (kept / kept.sum(dim=-1, keepdim=True)).cumsum(dim=-1)
    token = torch.searchsorted(cdf, u.to(cdf.dtype)[:, None].contiguous(), right=True)[:, 0]
    return token.clamp(max=logits.size(-1) - 1)
'''


def _sample(**changes) -> str:
    source = SAMPLE
    defaults = dict(TEMPERED="logits / temperature", TOP_K="top_k",
                    NUCLEUS="sorted_p.cumsum(dim=-1) - sorted_p < top_p")
    for key, value in {**defaults, **changes}.items():
        source = source.replace(key, value)
    return source


# the reference's generator, with the lines that the wrong answers change
GENERATE = '''
def generate(model, prompt, n, u, temperature=1.0, top_k=None, top_p=None):
    ids = prompt
    with torch.no_grad():
        for i in range(n):
            logits, _ = model(FED)
            token = sample(LOGITS, U, SETTINGS)
            ids = torch.cat([ids, token[:, None].to(ids.dtype)], dim=1)
    return ids
'''


def _generate(**changes) -> str:
    source = GENERATE
    defaults = dict(FED="ids", LOGITS="logits[:, -1]", U="u[i]", SETTINGS="temperature, top_k, top_p")
    for key, value in {**defaults, **changes}.items():
        source = source.replace(key, value)
    return source


def _kv(body: str) -> str:
    return '''
def generate_with_kv_cache(model, prompt, n, u, temperature=1.0, top_k=None, top_p=None):
''' + body


# answer cell grade_id -> a wrong version of that cell
WRONG = {
    # no causal mask: every position attends to the whole sequence, the future included
    "attention": _attention(MASK="torch.ones(T, P + T, dtype=torch.bool, device=x.device)"),
    # the nucleus without the token that crosses top_p: keeps the tokens whose own cumulative mass is < top_p
    "sample": _sample(NUCLEUS="sorted_p.cumsum(dim=-1) < top_p"),
    # the scores of the first position (the token after the first one), not of the last
    "generate": _generate(LOGITS="logits[:, 0]"),
    # the prompt's cache used at every step, never the grown one: the model sees the prompt and the newest token
    "kv": _kv('''
    with torch.no_grad():
        logits, prompt_cache = model(prompt)
        ids = prompt
        for i in range(n):
            token = sample(logits[:, -1], u[i], temperature, top_k, top_p)
            ids = torch.cat([ids, token[:, None]], dim=1)
            if i + 1 < n:
                logits, _ = model(ids[:, -1:], prompt_cache)
    return ids
'''),
}

# graded test cell -> the answer cell it tests
TESTED_BY = {"test_attention": "attention", "test_sample": "sample", "test_generate": "generate", "test_kv": "kv"}

# answer cell grade_id -> more wrong versions of that cell, each a different mistake
MORE_WRONG = {
    "attention": [
        # the plain causal mask even with a cache: new position i sees keys 0 ... i, the oldest past ones
        _attention(MASK="torch.ones(T, P + T, dtype=torch.bool, device=x.device).tril(diagonal=0)"),
        # no 1/sqrt(d) scale
        _attention(SCALE=""),
        # scaled by sqrt(d_model) instead of sqrt(d) = sqrt(d_model / heads)
        _attention(SCALE="/ math.sqrt(C)"),
        # keys and values split in the wrong order: q, v, k
        _attention(SPLIT="(lambda a, b, c: (a, c, b))(*self.qkv(x).split(C, dim=-1))"),
        # the heads made by a reshape, which mixes positions and features, instead of view + transpose
        _attention(HEADS="(t.reshape(B, self.heads, T, d) for t in (q, k, v))"),
        # the new keys and values put before the past ones
        _attention(CAT_K="torch.cat([k, past[0]], dim=2)", CAT_V="torch.cat([v, past[1]], dim=2)"),
        # the mask the wrong way round: position t sees t and the future
        _attention(MASK="torch.ones(T, P + T, dtype=torch.bool, device=x.device).triu(diagonal=P)"),
    ],
    "sample": [
        # the nucleus cut from the distribution at temperature 1, the temperature applied afterwards
        '''
def sample(logits, u, temperature=1.0, top_k=None, top_p=None):
    if temperature == 0:
        return logits.argmax(dim=-1)
    plain = F.softmax(logits, dim=-1)
    sorted_plain, order = plain.sort(dim=-1, descending=True)
    keep = torch.ones_like(sorted_plain, dtype=torch.bool)
    if top_k is not None:
        keep[:, top_k:] = False
    if top_p is not None:
        keep &= sorted_plain.cumsum(dim=-1) - sorted_plain < top_p
    kept_mask = torch.zeros_like(keep).scatter(-1, order, keep)
    p = F.softmax(logits / temperature, dim=-1) * kept_mask
    cdf = (p / p.sum(dim=-1, keepdim=True)).cumsum(dim=-1)
    token = torch.searchsorted(cdf, u.to(cdf.dtype)[:, None].contiguous(), right=True)[:, 0]
    return token.clamp(max=logits.size(-1) - 1)
''',
        # the inverse CDF over the tokens sorted by probability, not in id order
        '''
def sample(logits, u, temperature=1.0, top_k=None, top_p=None):
    if temperature == 0:
        return logits.argmax(dim=-1)
    p = F.softmax(logits / temperature, dim=-1)
    sorted_p, order = p.sort(dim=-1, descending=True)
    keep = torch.ones_like(sorted_p, dtype=torch.bool)
    if top_k is not None:
        keep[:, top_k:] = False
    if top_p is not None:
        keep &= sorted_p.cumsum(dim=-1) - sorted_p < top_p
    kept = sorted_p * keep
    cdf = (kept / kept.sum(dim=-1, keepdim=True)).cumsum(dim=-1)
    rank = torch.searchsorted(cdf, u.to(cdf.dtype)[:, None].contiguous(), right=True).clamp(max=logits.size(-1) - 1)
    return order.gather(-1, rank)[:, 0]
''',
        # the temperature multiplies the logits instead of dividing them
        _sample(TEMPERED="logits * temperature"),
        # top-k keeps one token too many
        _sample(TOP_K="top_k + 1"),
        # the nucleus measured with the token's own probability included, and <= (the crossing token dropped again)
        _sample(NUCLEUS="sorted_p.cumsum(dim=-1) <= top_p"),
        # the arg-max forgotten: temperature 0 divides by zero
        _sample().replace("    if temperature == 0:\n        return logits.argmax(dim=-1)\n", ""),
    ],
    "generate": [
        # reads only the newest token, without a cache: the model forgets the rest of the text
        _generate(FED="ids[:, -1:]"),
        # the most probable token at every step: u and the settings ignored
        _generate(LOGITS="logits[:, -1]", U="u[i]", SETTINGS="0.0"),
        # the same uniforms at every step
        _generate(U="u[0]"),
        # the settings not passed on: plain sampling at temperature 1
        _generate(SETTINGS="1.0"),
        # the prompt left out of the result
        _generate().replace("    return ids\n", "    return ids[:, prompt.size(1):]\n"),
    ],
    "kv": [
        # the whole text fed with the cache: the model reads the old tokens twice
        _kv('''
    with torch.no_grad():
        logits, cache = model(prompt)
        ids = prompt
        for i in range(n):
            token = sample(logits[:, -1], u[i], temperature, top_k, top_p)
            ids = torch.cat([ids, token[:, None]], dim=1)
            if i + 1 < n:
                logits, cache = model(ids, cache)
    return ids
'''),
        # no cache at all: reads the whole text again at every step (right tokens, the slow way); the cache-only
        # model refuses its second call
        _kv('''
    ids = prompt
    with torch.no_grad():
        for i in range(n):
            logits, _ = model(ids)
            token = sample(logits[:, -1], u[i], temperature, top_k, top_p)
            ids = torch.cat([ids, token[:, None]], dim=1)
    return ids
'''),
        # the first token drawn from the scores after the prompt's first token
        _kv('''
    with torch.no_grad():
        logits, cache = model(prompt)
        ids = prompt
        for i in range(n):
            token = sample(logits[:, 0], u[i], temperature, top_k, top_p)
            ids = torch.cat([ids, token[:, None]], dim=1)
            if i + 1 < n:
                logits, cache = model(ids[:, -1:], cache)
    return ids
'''),
        # feeds the token before the newest one: the model reads the text shifted by one
        _kv('''
    with torch.no_grad():
        logits, cache = model(prompt)
        ids = prompt
        for i in range(n):
            token = sample(logits[:, -1], u[i], temperature, top_k, top_p)
            ids = torch.cat([ids, token[:, None]], dim=1)
            if i + 1 < n:
                logits, cache = model(ids[:, -2:-1], cache)
    return ids
'''),
    ],
}

# answer cell grade_id -> correct answers written differently, which must keep full marks
ALTERNATIVES = {
    "attention": [
        # PyTorch's attention with an explicit mask, the heads by reshape and permute
        '''
class CausalSelfAttention(nn.Module):
    def __init__(self, d_model, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x, past=None):
        B, T, C = x.shape
        qkv = self.qkv(x).reshape(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        P = k.size(2) - T
        rows = torch.arange(T, device=x.device)[:, None] + P
        cols = torch.arange(P + T, device=x.device)[None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=cols <= rows)
        return self.out(y.permute(0, 2, 1, 3).reshape(B, T, C)), (k, v)
''',
        # one head at a time, an additive mask of -inf, einsum, in float64 inside
        '''
class CausalSelfAttention(nn.Module):
    def __init__(self, d_model, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x, past=None):
        B, T, C = x.shape
        d = C // self.heads
        q, k, v = torch.chunk(self.qkv(x), 3, dim=-1)
        k = k.view(B, T, self.heads, d).transpose(1, 2)
        v = v.view(B, T, self.heads, d).transpose(1, 2)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        P = k.size(2) - T
        bias = torch.full((T, P + T), float("-inf"), dtype=torch.float64, device=x.device).triu(P + 1)
        outputs = []
        for head in range(self.heads):
            q_h = q[..., head * d:(head + 1) * d].double()
            scores = torch.einsum("btd,bsd->bts", q_h, k[:, head].double()) / d ** 0.5 + bias
            outputs.append(torch.einsum("bts,bsd->btd", scores.softmax(-1), v[:, head].double()))
        return self.out(torch.cat(outputs, dim=-1).to(x.dtype)), (k, v)
''',
    ],
    "sample": [
        # the reference in float64
        _sample(TEMPERED="logits.double() / temperature"),
        # a loop over the rows and the ranks for the cuts, the inverse CDF as a count
        '''
def sample(logits, u, temperature=1.0, top_k=None, top_p=None):
    if temperature == 0:
        return torch.argmax(logits, dim=1)
    tokens = []
    for row, r in zip(logits, u):
        p = torch.softmax(row.double() / temperature, dim=0)
        order = torch.argsort(p, descending=True, stable=True)
        keep = torch.zeros_like(p, dtype=torch.bool)
        above = 0.0
        for rank, i in enumerate(order.tolist()):
            if top_k is not None and rank >= top_k:
                break
            if top_p is not None and above >= top_p:
                break
            keep[i] = True
            above += float(p[i])
        q = torch.where(keep, p, torch.zeros_like(p))
        cdf = torch.cumsum(q / q.sum(), dim=0)
        tokens.append(min(int((cdf <= float(r)).sum()), len(p) - 1))
    return torch.tensor(tokens, device=logits.device)
''',
        # no sort at all: a token's rank is the number of more probable tokens, the CDF by a triangular product
        '''
def sample(logits, u, temperature=1.0, top_k=None, top_p=None):
    if temperature == 0:
        return logits.max(dim=-1).indices
    p = torch.exp(torch.log_softmax(logits.float() / temperature, dim=-1))
    V = p.size(-1)
    ids = torch.arange(V, device=p.device)
    higher = (p[:, None, :] > p[:, :, None]) | ((p[:, None, :] == p[:, :, None]) & (ids[None, :] < ids[:, None])[None])
    keep = torch.ones_like(p, dtype=torch.bool)
    if top_k is not None:
        keep &= higher.sum(-1) < top_k
    if top_p is not None:
        keep &= (higher * p[:, None, :]).sum(-1) < top_p
    q = p * keep
    cdf = q @ torch.ones(V, V, device=p.device).triu() / q.sum(-1, keepdim=True)
    return (cdf <= u[:, None].float()).sum(-1).clamp(max=V - 1)
''',
    ],
    "generate": [
        # the result preallocated and filled in, the prefix as a slice of it
        '''
def generate(model, prompt, n, u, temperature=1.0, top_k=None, top_p=None):
    B, T0 = prompt.shape
    out = torch.empty(B, T0 + n, dtype=torch.long, device=prompt.device)
    out[:, :T0] = prompt
    for i in range(n):
        with torch.no_grad():
            logits = model(out[:, :T0 + i])[0]
        out[:, T0 + i] = sample(logits[:, T0 + i - 1], u[i], temperature=temperature, top_k=top_k, top_p=top_p)
    return out
''',
        # a loop over the rows of u, the new tokens kept in a list, the text rebuilt for each step
        '''
def generate(model, prompt, n, u, temperature=1.0, top_k=None, top_p=None):
    new = []
    for step in u:
        text = torch.cat([prompt] + [t.unsqueeze(1) for t in new], dim=1)
        scores = model(text)[0][:, -1, :]
        new.append(sample(scores, step, temperature=temperature, top_k=top_k, top_p=top_p).long())
    return torch.cat([prompt, torch.stack(new, dim=1)], dim=1)
''',
    ],
    "kv": [
        # the prompt fed through the cache one token at a time too, one call per token
        _kv('''
    cache = None
    for t in range(prompt.size(1)):
        logits, cache = model(prompt[:, t:t + 1], cache)
    ids = prompt
    for i in range(n):
        token = sample(logits[:, -1], u[i], temperature, top_k, top_p)
        ids = torch.cat([ids, token.unsqueeze(1)], dim=1)
        logits, cache = model(token.unsqueeze(1), cache)
    return ids
'''),
        # the tokens collected in a list, joined at the end
        _kv('''
    with torch.no_grad():
        logits, cache = model(prompt)
        new = []
        for step in u:
            new.append(sample(logits[:, -1], step, temperature, top_k, top_p))
            if len(new) < n:
                logits, cache = model(new[-1][:, None], cache)
    return torch.cat([prompt, torch.stack(new, dim=1)], dim=1)
'''),
    ],
}
