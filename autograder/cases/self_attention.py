"""Hidden cases for 07_self_attention: seeded inputs the student never sees, edge cases included."""
import torch

from autograder.checks import DEVICE, GRADING_DEVICE


def _qkv(g, batch, t_q, t_k, d_k, d_v, scale=1.0):
    q = torch.randn(*batch, t_q, d_k, generator=g) * scale
    k = torch.randn(*batch, t_k, d_k, generator=g) * scale
    v = torch.randn(*batch, t_k, d_v, generator=g)
    return q, k, v


def _padding_mask(g, batch, t_k):
    """(B, 1, 1, T_k): True for real tokens; every row keeps at least its first token."""
    lengths = torch.randint(1, t_k + 1, (batch,), generator=g)
    return (torch.arange(t_k)[None, :] < lengths[:, None])[:, None, None, :]


OUTPUT_AND_WEIGHTS = ["output", "weights"]


def scaled_dot_product_attention(g):
    def case(**kw):
        return dict(returns=OUTPUT_AND_WEIGHTS, **kw)
    yield case(id="one sequence, no mask (T=6, d_k=4)", args=list(_qkv(g, (), 6, 6, 4, 4)))
    yield case(id="batched heads (B=3, H=2, T=7, d_k=8)", args=list(_qkv(g, (3, 2), 7, 7, 8, 8)))
    yield case(id="cross-attention: T_q=5, T_k=9, d_v=3 != d_k=6", args=list(_qkv(g, (2,), 5, 9, 6, 3)))
    yield case(id="a single query and key (T=1)", args=list(_qkv(g, (4,), 1, 1, 5, 5)), group="edge cases")
    yield case(id="mask=None given explicitly", args=list(_qkv(g, (3,), 4, 4, 2, 2)), kwargs=dict(mask=None),
               group="edge cases")
    q, k, v = _qkv(g, (2, 3), 8, 8, 16, 16)
    yield case(id="causal mask (8x8) broadcast over batch and heads", args=[q, k, v],
               kwargs=dict(mask=torch.ones(8, 8, dtype=torch.bool).tril()), group="masks")
    q, k, v = _qkv(g, (4, 2), 6, 10, 8, 8)
    yield case(id="padding mask of shape (B, 1, 1, T_k)", args=[q, k, v], kwargs=dict(mask=_padding_mask(g, 4, 10)),
               group="masks")
    q, k, v = _qkv(g, (2,), 6, 6, 64, 64, scale=12.0)
    yield case(id="large scores (|q·k| in the thousands): a numerically stable softmax", args=[q, k, v],
               group="numerical stability")


def causal_mask(g):
    for size in (1, 2, 5, 17):
        yield dict(id=f"size {size}", args=[size], kwargs=dict(device=GRADING_DEVICE))
    yield dict(id="made on the device it is given (here 'meta')", args=[6], kwargs=dict(device={DEVICE: "meta"}),
               observe=["devices", "shapes"], group="device")


def MultiHeadAttention(g):
    """Every input varies on its own: keys differ from values, and queries are not the keys in the
    same order, so a module that projects one input for another fails. The grader draws the weights
    for the reference's own parameters (W_q, W_k, W_v, W_o)."""
    def case(**kw):
        return dict(kind="module", returns=OUTPUT_AND_WEIGHTS, **kw)
    for d_model, heads, batch, t in ((16, 4, 2, 5), (24, 3, 3, 7), (8, 1, 2, 4), (32, 8, 1, 1)):
        x = torch.randn(batch, t, d_model, generator=g)
        yield case(id=f"self-attention, d_model={d_model}, heads={heads}, B={batch}, T={t}",
                   init=dict(d_model=d_model, num_heads=heads), args=[x, x, x], group="self-attention")
    x = torch.randn(2, 6, 16, generator=g)
    keys, values = torch.randn(2, 9, 16, generator=g), torch.randn(2, 9, 16, generator=g)
    yield case(id="cross-attention: queries T=6, keys and values T=9, keys != values",
               init=dict(d_model=16, num_heads=2), args=[x, keys, values], group="cross-attention")
    x = torch.randn(2, 7, 16, generator=g)
    yield case(id="queries are the keys in another order; values differ from both",
               init=dict(d_model=16, num_heads=4), args=[x.flip(1), x, torch.randn(2, 7, 16, generator=g)],
               group="cross-attention")
    x = torch.randn(3, 6, 16, generator=g)
    yield case(id="causal mask", init=dict(d_model=16, num_heads=4), args=[x, x, x],
               kwargs=dict(mask=torch.ones(6, 6, dtype=torch.bool).tril()), group="masks")
    x, memory = torch.randn(4, 5, 16, generator=g), torch.randn(4, 10, 16, generator=g)
    yield case(id="padding mask (B, 1, 1, T) on cross-attention", init=dict(d_model=16, num_heads=4),
               args=[x, memory, memory * 0.5 + 1], kwargs=dict(mask=_padding_mask(g, 4, 10)), group="masks")


def sinusoidal_positional_encoding(g):
    for positions, d_model in ((1, 2), (10, 4), (50, 16), (7, 6), (128, 64)):
        yield dict(id=f"{positions} positions, d_model={d_model}", args=[positions, d_model],
                   kwargs=dict(device=GRADING_DEVICE))
    # sin/cos of arguments near 1000 in float32 are good to about 1e-4
    yield dict(id="1000 positions, d_model=32 (long sequences)", args=[1000, 32],
               kwargs=dict(device=GRADING_DEVICE), atol=3e-4, group="long sequences")
    yield dict(id="made on the device it is given (here 'meta')", args=[10, 8], kwargs=dict(device={DEVICE: "meta"}),
               observe=["devices", "shapes"], group="device")


CASES = {
    "scaled_dot_product_attention": scaled_dot_product_attention,
    "causal_mask": causal_mask,
    "MultiHeadAttention": MultiHeadAttention,
    "sinusoidal_positional_encoding": sinusoidal_positional_encoding,
}
