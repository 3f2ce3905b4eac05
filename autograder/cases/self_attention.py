"""Hidden cases for 07_self_attention: seeded inputs the student never sees, edge cases included."""
import torch
import torch.nn.functional as F

from autograder.checks import GRADING_DEVICE


def _qkv(g, batch, t_q, t_k, d_k, d_v, scale=1.0):
    q = torch.randn(*batch, t_q, d_k, generator=g) * scale
    k = torch.randn(*batch, t_k, d_k, generator=g) * scale
    v = torch.randn(*batch, t_k, d_v, generator=g)
    return q, k, v


def _padding_mask(g, batch, t_k):
    """(B, 1, 1, T_k): True for real tokens; every row keeps at least its first token."""
    lengths = torch.randint(1, t_k + 1, (batch,), generator=g)
    return (torch.arange(t_k)[None, :] < lengths[:, None])[:, None, None, :]


def scaled_dot_product_attention(g):
    yield dict(id="one sequence, no mask (T=6, d_k=4)", args=list(_qkv(g, (), 6, 6, 4, 4)))
    yield dict(id="batched heads (B=3, H=2, T=7, d_k=8)", args=list(_qkv(g, (3, 2), 7, 7, 8, 8)))
    yield dict(id="cross-attention: T_q=5, T_k=9, d_v=3 != d_k=6", args=list(_qkv(g, (2,), 5, 9, 6, 3)))
    yield dict(id="a single query and key (T=1)", args=list(_qkv(g, (4,), 1, 1, 5, 5)))
    q, k, v = _qkv(g, (2, 3), 8, 8, 16, 16)
    yield dict(id="causal mask (8x8) broadcast over batch and heads", args=[q, k, v],
               kwargs=dict(mask=torch.ones(8, 8, dtype=torch.bool).tril()))
    q, k, v = _qkv(g, (4, 2), 6, 10, 8, 8)
    yield dict(id="padding mask of shape (B, 1, 1, T_k)", args=[q, k, v], kwargs=dict(mask=_padding_mask(g, 4, 10)))
    q, k, v = _qkv(g, (2,), 6, 6, 64, 64, scale=12.0)
    yield dict(id="large scores (|q·k| in the thousands): a numerically stable softmax", args=[q, k, v])
    q, k, v = _qkv(g, (3,), 4, 4, 2, 2)
    yield dict(id="mask=None given explicitly", args=[q, k, v], kwargs=dict(mask=None))


def causal_mask(g):
    for size in (1, 2, 5, 17):
        yield dict(id=f"size {size}", args=[size], kwargs=dict(device=GRADING_DEVICE))


def _mha_weights(g, d_model):
    state = {}
    for name in ("W_q", "W_k", "W_v", "W_o"):
        state[f"{name}.weight"] = torch.randn(d_model, d_model, generator=g) / d_model ** 0.5
        state[f"{name}.bias"] = torch.randn(d_model, generator=g) * 0.1
    return state


def MultiHeadAttention(g):
    for d_model, heads, batch, t in ((16, 4, 2, 5), (24, 3, 3, 7), (8, 1, 2, 4), (32, 8, 1, 1)):
        x = torch.randn(batch, t, d_model, generator=g)
        yield dict(id=f"self-attention, d_model={d_model}, heads={heads}, B={batch}, T={t}", kind="module",
                   init=dict(d_model=d_model, num_heads=heads), state_dict=_mha_weights(g, d_model),
                   args=[x, x, x])
    x = torch.randn(2, 6, 16, generator=g)
    memory = torch.randn(2, 9, 16, generator=g)
    yield dict(id="cross-attention: queries T=6, keys/values T=9", kind="module",
               init=dict(d_model=16, num_heads=2), state_dict=_mha_weights(g, 16),
               args=[x, memory, memory])
    x = torch.randn(3, 6, 16, generator=g)
    yield dict(id="causal mask", kind="module", init=dict(d_model=16, num_heads=4),
               state_dict=_mha_weights(g, 16), args=[x, x, x],
               kwargs=dict(mask=torch.ones(6, 6, dtype=torch.bool).tril()))
    x = torch.randn(4, 10, 16, generator=g)
    yield dict(id="padding mask (B, 1, 1, T)", kind="module", init=dict(d_model=16, num_heads=4),
               state_dict=_mha_weights(g, 16), args=[x, x, x], kwargs=dict(mask=_padding_mask(g, 4, 10)))


def sinusoidal_positional_encoding(g):
    for positions, d_model in ((1, 2), (10, 4), (50, 16), (7, 6), (128, 64)):
        yield dict(id=f"{positions} positions, d_model={d_model}", args=[positions, d_model],
                   kwargs=dict(device=GRADING_DEVICE))
    # sin/cos of arguments near 1000 in float32 are good to about 1e-4
    yield dict(id="1000 positions, d_model=32 (long sequences)", args=[1000, 32],
               kwargs=dict(device=GRADING_DEVICE), atol=3e-4)


CASES = {
    "scaled_dot_product_attention": scaled_dot_product_attention,
    "causal_mask": causal_mask,
    "MultiHeadAttention": MultiHeadAttention,
    "sinusoidal_positional_encoding": sinusoidal_positional_encoding,
}
