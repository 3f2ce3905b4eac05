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
