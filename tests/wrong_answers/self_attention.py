"""Plausible wrong answers for 07_self_attention: each must cost exactly its own test's points."""

# answer cell grade_id -> a wrong version of that cell
WRONG = {
    # forgets the 1/sqrt(d_k) scaling
    "sdpa": '''
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights
''',
    # masks the past instead of the future
    "causal_mask": '''
def causal_mask(size, device=None):
    return torch.ones(size, size, dtype=torch.bool, device=device).triu()
''',
    # forgets the output projection W_o
    "mha": '''
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.d_head = d_model // num_heads
        self.W_q = nn.Linear(d_model, d_model)
        self.W_k = nn.Linear(d_model, d_model)
        self.W_v = nn.Linear(d_model, d_model)
        self.W_o = nn.Linear(d_model, d_model)

    def forward(self, query, key, value, mask=None):
        B, T_q, _ = query.shape
        T_k = key.size(1)
        q = self.W_q(query).view(B, T_q, self.num_heads, self.d_head).transpose(1, 2)
        k = self.W_k(key).view(B, T_k, self.num_heads, self.d_head).transpose(1, 2)
        v = self.W_v(value).view(B, T_k, self.num_heads, self.d_head).transpose(1, 2)
        out, weights = scaled_dot_product_attention(q, k, v, mask)
        return out.transpose(1, 2).reshape(B, T_q, -1), weights
''',
    # sine and cosine swapped
    "pe": '''
def sinusoidal_positional_encoding(num_positions, d_model, device=None):
    position = torch.arange(num_positions, dtype=torch.float32, device=device)[:, None]
    inv_freq = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float32, device=device) / d_model)
    pe = torch.empty(num_positions, d_model, device=device)
    pe[:, 0::2] = torch.cos(position * inv_freq)
    pe[:, 1::2] = torch.sin(position * inv_freq)
    return pe
''',
}

# graded test cell -> the answer cell it tests
TESTED_BY = {"test_sdpa": "sdpa", "test_causal_mask": "causal_mask", "test_mha": "mha", "test_pe": "pe"}

# answer cell grade_id -> more wrong versions of that cell, each a different mistake
MORE_WRONG = {
    "sdpa": [
        # masks with 0 instead of -inf: a score of 0 still gets weight after the softmax
        '''
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, 0.0)
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights
''',
        # softmax over the queries (dim=-2) instead of the keys: the columns sum to one, not the rows
        '''
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-2)
    return weights @ v, weights
''',
        # scales by sqrt(d_v), the size of the values, instead of sqrt(d_k)
        '''
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(v.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights
''',
        # a softmax written by hand without subtracting the row maximum: exp overflows to inf on large scores
        '''
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    e = torch.exp(scores)
    weights = e / e.sum(dim=-1, keepdim=True)
    return weights @ v, weights
''',
    ],
    "causal_mask": [
        # ignores the `device` argument: the mask is always made on the CPU
        '''
def causal_mask(size, device=None):
    return torch.ones(size, size, dtype=torch.bool).tril()
''',
        # j < i instead of j <= i: a token may not attend to itself (off by one on the diagonal)
        '''
def causal_mask(size, device=None):
    i = torch.arange(size, device=device)
    return i[None, :] < i[:, None]
''',
        # a float 0/1 matrix instead of a bool mask
        '''
def causal_mask(size, device=None):
    return torch.ones(size, size, device=device).tril()
''',
    ],
    "mha": [
        # projects the key for the values: W_v(key) instead of W_v(value)
        '''
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads):
        super().__init__()
        assert d_model % num_heads == 0, "d_model must be divisible by num_heads"
        self.num_heads = num_heads
        self.d_head = d_model // num_heads
        self.W_q = nn.Linear(d_model, d_model)
        self.W_k = nn.Linear(d_model, d_model)
        self.W_v = nn.Linear(d_model, d_model)
        self.W_o = nn.Linear(d_model, d_model)

    def forward(self, query, key, value, mask=None):
        B, T_q, _ = query.shape
        T_k = key.size(1)
        q = self.W_q(query).view(B, T_q, self.num_heads, self.d_head).transpose(1, 2)
        k = self.W_k(key).view(B, T_k, self.num_heads, self.d_head).transpose(1, 2)
        v = self.W_v(key).view(B, T_k, self.num_heads, self.d_head).transpose(1, 2)
        out, weights = scaled_dot_product_attention(q, k, v, mask)
        out = out.transpose(1, 2).reshape(B, T_q, self.num_heads * self.d_head)
        return self.W_o(out), weights
''',
        # merges the heads without transposing back: (B, h, T, d_head) reshaped straight to (B, T, d_model)
        '''
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads):
        super().__init__()
        assert d_model % num_heads == 0, "d_model must be divisible by num_heads"
        self.num_heads = num_heads
        self.d_head = d_model // num_heads
        self.W_q = nn.Linear(d_model, d_model)
        self.W_k = nn.Linear(d_model, d_model)
        self.W_v = nn.Linear(d_model, d_model)
        self.W_o = nn.Linear(d_model, d_model)

    def forward(self, query, key, value, mask=None):
        B, T_q, _ = query.shape
        T_k = key.size(1)
        q = self.W_q(query).view(B, T_q, self.num_heads, self.d_head).transpose(1, 2)
        k = self.W_k(key).view(B, T_k, self.num_heads, self.d_head).transpose(1, 2)
        v = self.W_v(value).view(B, T_k, self.num_heads, self.d_head).transpose(1, 2)
        out, weights = scaled_dot_product_attention(q, k, v, mask)
        out = out.reshape(B, T_q, self.num_heads * self.d_head)
        return self.W_o(out), weights
''',
        # attention written inline, scaled by sqrt(d_model) instead of sqrt(d_head)
        '''
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads):
        super().__init__()
        assert d_model % num_heads == 0, "d_model must be divisible by num_heads"
        self.num_heads = num_heads
        self.d_head = d_model // num_heads
        self.W_q = nn.Linear(d_model, d_model)
        self.W_k = nn.Linear(d_model, d_model)
        self.W_v = nn.Linear(d_model, d_model)
        self.W_o = nn.Linear(d_model, d_model)

    def forward(self, query, key, value, mask=None):
        B, T_q, d_model = query.shape
        T_k = key.size(1)
        q = self.W_q(query).view(B, T_q, self.num_heads, self.d_head).transpose(1, 2)
        k = self.W_k(key).view(B, T_k, self.num_heads, self.d_head).transpose(1, 2)
        v = self.W_v(value).view(B, T_k, self.num_heads, self.d_head).transpose(1, 2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d_model)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(B, T_q, d_model)
        return self.W_o(out), weights
''',
    ],
    "pe": [
        # ignores the `device` argument: the encoding is always made on the CPU
        '''
def sinusoidal_positional_encoding(num_positions, d_model, device=None):
    position = torch.arange(num_positions, dtype=torch.float32)[:, None]
    inv_freq = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)
    pe = torch.empty(num_positions, d_model)
    pe[:, 0::2] = torch.sin(position * inv_freq)
    pe[:, 1::2] = torch.cos(position * inv_freq)
    return pe
''',
        # exponent i / d_model instead of 2i / d_model: the frequencies fall off half as fast
        '''
def sinusoidal_positional_encoding(num_positions, d_model, device=None):
    position = torch.arange(num_positions, dtype=torch.float32, device=device)[:, None]
    inv_freq = 10000.0 ** (-torch.arange(d_model // 2, dtype=torch.float32, device=device) / d_model)
    pe = torch.empty(num_positions, d_model, device=device)
    pe[:, 0::2] = torch.sin(position * inv_freq)
    pe[:, 1::2] = torch.cos(position * inv_freq)
    return pe
''',
        # positions counted from 1 instead of 0 (off by one in the range)
        '''
def sinusoidal_positional_encoding(num_positions, d_model, device=None):
    position = torch.arange(1, num_positions + 1, dtype=torch.float32, device=device)[:, None]
    inv_freq = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float32, device=device) / d_model)
    pe = torch.empty(num_positions, d_model, device=device)
    pe[:, 0::2] = torch.sin(position * inv_freq)
    pe[:, 1::2] = torch.cos(position * inv_freq)
    return pe
''',
    ],
}

# answer cell grade_id -> correct versions of that cell, written differently from the reference
ALTERNATIVES = {
    "sdpa": [
        # einsum for the scores, multiplication by d_k ** -0.5, torch.where for the mask
        '''
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = torch.einsum("...qd,...kd->...qk", q, k) * q.shape[-1] ** -0.5
    if mask is not None:
        scores = torch.where(mask, scores, torch.full_like(scores, float("-inf")))
    weights = scores.softmax(dim=-1)
    return torch.matmul(weights, v), weights
''',
        # queries scaled before the product, and a softmax written by hand (row maximum subtracted first)
        '''
def scaled_dot_product_attention(q, k, v, mask=None):
    scores = (q / math.sqrt(k.shape[-1])) @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), -math.inf)
    scores = scores - scores.amax(dim=-1, keepdim=True)
    e = scores.exp()
    weights = e / e.sum(dim=-1, keepdim=True)
    return weights @ v, weights
''',
    ],
    "causal_mask": [
        # compares row and column indices: True where column <= row
        '''
def causal_mask(size, device=None):
    rows = torch.arange(size, device=device).unsqueeze(1)
    cols = torch.arange(size, device=device).unsqueeze(0)
    return cols <= rows
''',
        # the complement of the strict upper triangle
        '''
def causal_mask(size, device=None):
    future = torch.triu(torch.ones(size, size, dtype=torch.bool, device=device), diagonal=1)
    return ~future
''',
    ],
    "mha": [
        # heads split with reshape + permute and merged with permute + contiguous + view
        '''
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads):
        super().__init__()
        assert d_model % num_heads == 0, "d_model must be divisible by num_heads"
        self.num_heads = num_heads
        self.d_head = d_model // num_heads
        self.W_q = nn.Linear(d_model, d_model)
        self.W_k = nn.Linear(d_model, d_model)
        self.W_v = nn.Linear(d_model, d_model)
        self.W_o = nn.Linear(d_model, d_model)

    def split_heads(self, x):
        B, T, _ = x.shape
        return x.reshape(B, T, self.num_heads, self.d_head).permute(0, 2, 1, 3)

    def forward(self, query, key, value, mask=None):
        q = self.split_heads(self.W_q(query))
        k = self.split_heads(self.W_k(key))
        v = self.split_heads(self.W_v(value))
        out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
        B, h, T_q, d_head = out.shape
        out = out.permute(0, 2, 1, 3).contiguous().view(B, T_q, h * d_head)
        return self.W_o(out), weights
''',
        # one head at a time in a Python loop over feature slices; the mask broadcast to every head first
        '''
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads):
        super().__init__()
        assert d_model % num_heads == 0, "d_model must be divisible by num_heads"
        self.num_heads = num_heads
        self.d_head = d_model // num_heads
        self.W_q = nn.Linear(d_model, d_model)
        self.W_k = nn.Linear(d_model, d_model)
        self.W_v = nn.Linear(d_model, d_model)
        self.W_o = nn.Linear(d_model, d_model)

    def forward(self, query, key, value, mask=None):
        B, T_q, _ = query.shape
        T_k = key.shape[1]
        Q, K, V = self.W_q(query), self.W_k(key), self.W_v(value)
        if mask is not None:
            mask = torch.broadcast_to(mask, (B, self.num_heads, T_q, T_k))
        outputs, maps = [], []
        for i in range(self.num_heads):
            features = slice(i * self.d_head, (i + 1) * self.d_head)
            head_mask = None if mask is None else mask[:, i:i + 1]
            out, w = scaled_dot_product_attention(Q[:, None, :, features], K[:, None, :, features],
                                                  V[:, None, :, features], head_mask)
            outputs.append(out[:, 0])
            maps.append(w[:, 0])
        return self.W_o(torch.cat(outputs, dim=-1)), torch.stack(maps, dim=1)
''',
    ],
    "pe": [
        # the Annotated Transformer's formula exp(-2i log(10000) / d), computed in float64
        '''
def sinusoidal_positional_encoding(num_positions, d_model, device=None):
    position = torch.arange(num_positions, dtype=torch.float64, device=device).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64, device=device)
                         * (-math.log(10000.0) / d_model))
    pe = torch.zeros(num_positions, d_model, dtype=torch.float64, device=device)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe
''',
        # sines and cosines stacked on a last axis of size 2, then flattened so that they interleave
        '''
def sinusoidal_positional_encoding(num_positions, d_model, device=None):
    pos = torch.arange(num_positions, device=device, dtype=torch.float32)
    two_i = torch.arange(0, d_model, 2, device=device, dtype=torch.float32)
    angles = pos[:, None] / torch.pow(10000.0, two_i / d_model)[None, :]
    return torch.stack([angles.sin(), angles.cos()], dim=-1).reshape(num_positions, d_model)
''',
    ],
}
