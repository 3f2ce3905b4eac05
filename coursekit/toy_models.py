"""Small, fully specified models that graded functions take as input (a decoder's step function, a
language model to sample from, an encoder-decoder and the layers an encoder is made of), built from
given weights by the grader and by the notebooks alike.

A graded ``beam_search(step_fn, ...)`` or ``generate(model, ...)`` is checked alone: the hidden
cases name one of these with its weights (``{"__build__": "coursekit.toy_models:TableStepFunction",
"kwargs": {...}}``), and the reference and the student's code both receive the same object.
"""
from __future__ import annotations

import torch


class TableStepFunction:
    """A first-order Markov "decoder": the next token's log-probabilities depend on the last token only.

    log_probs: (V, V) float tensor, row i = log P(next token | last token i); rows are normalised here.
    Called with the token ids so far, (B, T) long, it returns (B, V) log-probabilities of the next token.
    """

    def __init__(self, log_probs: torch.Tensor):
        self.log_probs = torch.log_softmax(log_probs, dim=-1)  # (V, V)

    def __call__(self, prefixes: torch.Tensor) -> torch.Tensor:
        return self.log_probs[prefixes[:, -1]]  # (B, V)

    @property
    def vocab_size(self) -> int:
        return self.log_probs.size(-1)


class TinyRNN(torch.nn.Module):
    """A one-layer Elman RNN whose loss reads its last hidden state: the model that chapter 03's
    ``gradient_norms_through_time`` takes as input.

        h_0 = h0 (zeros by default),   h_t = φ(W_ih x_t + W_hh h_{t-1} + b),   L = Σ_b readout · h_T^(b)

    with φ = tanh (``nonlinearity="tanh"``) or the identity (``"linear"``, where ∂L/∂h_t is exactly
    (W_hhᵀ)^(T-t) readout). The loss sums over the batch, so example b's gradients are its own.

    weight_ih: (H, I), weight_hh: (H, H), bias: (H,), readout: (H,), h0: (H,) or None; float
    tensors on one device. The weights are parameters: every state made by ``step`` requires grad.

    What code that takes the model may use: ``initial_state(batch_size)`` -> h_0, (B, H);
    ``step(x_t, h)`` -> the next state, (B, H), for x_t (B, I) and h (B, H); ``loss(h_last)`` -> a
    0-d tensor; and the sizes ``input_size`` and ``hidden_size``.
    """

    def __init__(self, weight_ih: torch.Tensor, weight_hh: torch.Tensor, bias: torch.Tensor,
                 readout: torch.Tensor, h0: torch.Tensor | None = None, nonlinearity: str = "tanh"):
        super().__init__()
        if nonlinearity not in ("tanh", "linear"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'linear', not {nonlinearity!r}")
        self.weight_ih = torch.nn.Parameter(weight_ih.clone())
        self.weight_hh = torch.nn.Parameter(weight_hh.clone())
        self.bias = torch.nn.Parameter(bias.clone())
        self.register_buffer("readout", readout.clone())
        self.register_buffer("h0", torch.zeros_like(bias) if h0 is None else h0.clone())
        self.nonlinearity = nonlinearity

    @property
    def input_size(self) -> int:
        return self.weight_ih.size(1)

    @property
    def hidden_size(self) -> int:
        return self.weight_hh.size(0)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        return self.h0.expand(batch_size, -1).clone()  # (B, H)

    def step(self, x_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        a = x_t @ self.weight_ih.T + h @ self.weight_hh.T + self.bias  # (B, H)
        return torch.tanh(a) if self.nonlinearity == "tanh" else a

    def loss(self, h_last: torch.Tensor) -> torch.Tensor:
        return (h_last @ self.readout).sum()

    def forward(self, *args, **kwargs):
        # No forward on purpose: the gradient with respect to a stack of states made inside a call
        # would not be the gradient with respect to the states that the steps pass on.
        raise TypeError("TinyRNN runs one step at a time: use initial_state, step and loss")


def embedding_layer(weight: torch.Tensor) -> torch.nn.Embedding:
    """An ``nn.Embedding`` whose table is ``weight`` (V, E), on its device and in its dtype: the
    embedding that chapter 04's ``encoder_forward`` takes in the hidden cases. (No ``padding_idx``:
    the row of the pad id is a vector like any other, so code that reads the padding shows it.)"""
    layer = torch.nn.Embedding(*weight.shape, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
    return layer


def recurrent_cell(weight_ih: torch.Tensor, weight_hh: torch.Tensor, bias_ih: torch.Tensor,
                   bias_hh: torch.Tensor, kind: str = "gru") -> torch.nn.Module:
    """An ``nn.GRUCell`` (``kind="gru"``: weight_ih (3H, I), weight_hh (3H, H), biases (3H,)) or a
    tanh ``nn.RNNCell`` (``kind="rnn"``: (H, I), (H, H), (H,)) with the given weights, on their
    device and in their dtype: ``h_next = cell(x, h)``, with ``cell.hidden_size`` = H."""
    factories = {"gru": (torch.nn.GRUCell, 3), "rnn": (torch.nn.RNNCell, 1)}
    if kind not in factories:
        raise ValueError(f"kind must be 'gru' or 'rnn', not {kind!r}")
    factory, gates = factories[kind]
    hidden = weight_hh.size(1)
    if weight_hh.size(0) != gates * hidden:
        raise ValueError(f"a {kind} cell of hidden size {hidden} needs weight_hh of {gates * hidden} rows")
    cell = factory(weight_ih.size(1), hidden, device=weight_ih.device, dtype=weight_ih.dtype)
    with torch.no_grad():
        for name, value in (("weight_ih", weight_ih), ("weight_hh", weight_hh), ("bias_ih", bias_ih),
                            ("bias_hh", bias_hh)):
            getattr(cell, name).copy_(value)
    return cell


class TinySeq2Seq(torch.nn.Module):
    """A GRU encoder-decoder with one fixed vector between them, built from given weights: the model
    that chapter 04's ``teacher_forcing_loss`` and ``greedy_decode`` take as input. It is
    ``coursekit.seq2seq.Seq2Seq`` in miniature (the same equations and the same interface), without
    dropout and with its own output layer instead of the tied embedding::

        h_s = GRU_enc(E x_s, h_{s-1}),  h_0 = 0,  c = h_S    (the state after the last real token)
        s_0 = c,  s_t = GRUCell_dec([E y_{t-1}; c], s_{t-1}),  logits_t = W_out [s_t; c] + b_out

    embedding: (V, E) (the pad id's row too is an ordinary vector); encoder_weight_ih (3H, E),
    encoder_weight_hh (3H, H), encoder_bias_ih and encoder_bias_hh (3H,): ``nn.GRU``'s layout;
    decoder_weight_ih (3H, E + H), decoder_weight_hh (3H, H), decoder_bias_ih and decoder_bias_hh
    (3H,): ``nn.GRUCell``'s, its input the embedding of the previous token beside c; readout_weight
    (V, 2H) and readout_bias (V,); float tensors on one device, in one dtype (float32 or float64).
    pad_id: the id that right-pads sources (0, ``coursekit.translation.PAD``, by default).

    What code that takes the model may use, as with every translation model of the course:

    - ``memory, state = model.encode(src)``: src (B, S) long, right-padded with ``pad_id`` (every
      row has at least one real token) -> memory (B, S, H), the encoder's states, zeros at the
      padding, and state (B, H), c itself;
    - ``logits, state = model.decode_step(prev, state, memory, src_mask)``: prev (B,) long, the
      previous target token; state as ``encode`` or the previous ``decode_step`` returned it (after
      the first step it is the pair (s_t, c): pass it on as it is); memory and src_mask = src !=
      pad_id (B, S) are unused by this decoder, which sees only c, and are there so that an
      attention decoder fits the same loop -> logits (B, V), unnormalised, and the new state;
    - ``pad_id``, ``vocab_size`` and ``hidden_size``.

    There is no ``forward``: code that takes the model steps the decoder itself.
    """

    def __init__(self, embedding: torch.Tensor, encoder_weight_ih: torch.Tensor, encoder_weight_hh: torch.Tensor,
                 encoder_bias_ih: torch.Tensor, encoder_bias_hh: torch.Tensor, decoder_weight_ih: torch.Tensor,
                 decoder_weight_hh: torch.Tensor, decoder_bias_ih: torch.Tensor, decoder_bias_hh: torch.Tensor,
                 readout_weight: torch.Tensor, readout_bias: torch.Tensor, pad_id: int = 0):
        super().__init__()
        vocab, embed = embedding.shape
        hidden = encoder_weight_hh.size(1)
        if decoder_weight_ih.shape != (3 * hidden, embed + hidden) or readout_weight.shape != (vocab, 2 * hidden):
            raise ValueError("the decoder reads [E y; c] (3H, E + H) and the readout [s; c] (V, 2H)")
        factory = dict(device=embedding.device, dtype=embedding.dtype)
        self.pad_id = int(pad_id)
        self.embedding = embedding_layer(embedding)
        self.encoder = torch.nn.GRU(embed, hidden, batch_first=True, **factory)
        self.decoder = recurrent_cell(decoder_weight_ih, decoder_weight_hh, decoder_bias_ih, decoder_bias_hh)
        self.readout = torch.nn.Linear(2 * hidden, vocab, **factory)
        with torch.no_grad():
            for name, value in (("weight_ih_l0", encoder_weight_ih), ("weight_hh_l0", encoder_weight_hh),
                                ("bias_ih_l0", encoder_bias_ih), ("bias_hh_l0", encoder_bias_hh)):
                getattr(self.encoder, name).copy_(value)
            self.readout.weight.copy_(readout_weight)
            self.readout.bias.copy_(readout_bias)

    @property
    def vocab_size(self) -> int:
        return self.embedding.num_embeddings

    @property
    def hidden_size(self) -> int:
        return self.encoder.hidden_size

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        lengths = (src != self.pad_id).sum(dim=1).clamp(min=1).cpu()
        packed = pack_padded_sequence(self.embedding(src), lengths, batch_first=True, enforce_sorted=False)
        out, h = self.encoder(packed)  # packing skips the padding: h is each row's state after its last token
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        return memory, h[0]  # (B, S, H), (B, H)

    def decode_step(self, prev: torch.Tensor, state, memory: torch.Tensor | None = None,
                    src_mask: torch.Tensor | None = None):
        s, c = (state, state) if isinstance(state, torch.Tensor) else state
        s = self.decoder(torch.cat([self.embedding(prev), c], dim=-1), s)  # (B, H)
        return self.readout(torch.cat([s, c], dim=-1)), (s, c)  # (B, V), the new state

    def forward(self, *args, **kwargs):
        # No forward on purpose: teacher forcing and decoding are what the exercises write.
        raise TypeError("TinySeq2Seq has no forward: use encode and decode_step")


class RecurrentStepFunction:
    """A "decoder" whose next-token distribution depends on the whole prefix, not only its last token:
    a tanh RNN reads the prefix and a linear read-out of its last state gives the log-probabilities.

        h_0 = 0,   h_t = tanh(W_in e(y_t) + W_hh h_{t-1}),   log P(· | y_1..y_t) = log_softmax(W_out h_t + b)

    embedding: (V, E), weight_in: (H, E), weight_hh: (H, H), readout: (V, H), bias: (V,); float tensors
    on one device. Called with the token ids so far, (B, T) long (every row starts with <bos>), it
    returns (B, V) log-probabilities of the next token. Code that passes a prefix without its first
    token, or in another order, gets other probabilities: the graded searches must pass the whole
    prefix, as a real decoder needs it.
    """

    def __init__(self, embedding: torch.Tensor, weight_in: torch.Tensor, weight_hh: torch.Tensor,
                 readout: torch.Tensor, bias: torch.Tensor):
        self.embedding, self.weight_in, self.weight_hh = embedding, weight_in, weight_hh
        self.readout, self.bias = readout, bias

    def __call__(self, prefixes: torch.Tensor) -> torch.Tensor:
        h = self.embedding.new_zeros(prefixes.size(0), self.weight_hh.size(0))  # (B, H)
        for t in range(prefixes.size(1)):
            h = torch.tanh(self.embedding[prefixes[:, t]] @ self.weight_in.T + h @ self.weight_hh.T)
        return torch.log_softmax(h @ self.readout.T + self.bias, dim=-1)  # (B, V)

    @property
    def vocab_size(self) -> int:
        return self.readout.size(0)


class PrefixTableStepFunction:
    """A conditional model written out by hand, for examples a reader can follow: ``table`` maps a prefix
    (a tuple of words after <bos>) to the probabilities of some next words; the probability left over
    is shared equally by the other words of the vocabulary. A prefix the table does not list ends
    with probability ``end`` (the rest shared equally).

    words: the vocabulary, ``words[0]`` = "<bos>", ``words[1]`` = "<eos>". Called with (B, T) ids
    (every row starts with <bos>), it returns (B, V) log-probabilities (float64), like the step
    functions above.
    """

    def __init__(self, words: list[str], table: dict[tuple[str, ...], dict[str, float]], end: float = 0.9):
        self.words, self.table, self.end = list(words), table, end
        self.ids = {w: i for i, w in enumerate(self.words)}
        if self.words[:2] != ["<bos>", "<eos>"]:
            raise ValueError('words must start with "<bos>", "<eos>"')

    @property
    def bos(self) -> int:
        return 0

    @property
    def eos(self) -> int:
        return 1

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def probabilities(self, prefix: tuple[str, ...]) -> torch.Tensor:
        """(V,) float64: P(next word | prefix). <bos> never comes next."""
        listed = self.table.get(tuple(prefix), {"<eos>": self.end})
        p = torch.zeros(self.vocab_size, dtype=torch.float64)
        for word, prob in listed.items():
            p[self.ids[word]] = prob
        free = (p == 0)
        free[0] = False
        p[free] = (1.0 - p.sum()) / free.sum()
        return p

    def __call__(self, prefixes: torch.Tensor) -> torch.Tensor:
        rows = [self.probabilities(tuple(self.words[i] for i in row[1:].tolist())) for row in prefixes]
        return torch.stack(rows).log()  # (B, V), -inf for <bos>

    def decode(self, ids) -> str:
        return " ".join(self.words[i] for i in ids if i > 1)


JANE_WORDS = ["<bos>", "<eos>", "jane", "is", "visiting", "going", "to", "be", "visits", "africa", "in",
              "september"]


def jane_model() -> PrefixTableStepFunction:
    """The lecture's example (Andrew Ng's): translating "Jane visite l'Afrique en septembre", a model
    for which P(jane is going | x) > P(jane is visiting | x), so greedy decoding starts the longer
    translation, while "jane is visiting africa in september" is the more probable sentence.

    The words a prefix's entry does not list share what is left equally, so they tie. At the first
    step <eos> is listed, and less likely than those words: a beam of 2 keeps "jane" and one of the
    tied words, which the next step drops, whichever it was (<eos> among them, tied, would finish
    at once and narrow the beam to greedy decoding, depending on how the tie was broken)."""
    tail = {("africa",): {"in": 0.9}, ("africa", "in"): {"september": 0.95},
            ("africa", "in", "september"): {"<eos>": 0.95}}
    table = {(): {"jane": 0.9, "<eos>": 0.001}, ("jane",): {"is": 0.8, "visits": 0.15},
             ("jane", "is"): {"going": 0.5, "visiting": 0.4, "<eos>": 0.05},
             ("jane", "is", "going"): {"to": 0.95}, ("jane", "is", "going", "to"): {"be": 0.95},
             ("jane", "is", "going", "to", "be"): {"visiting": 0.9}}
    for start in (("jane", "visits"), ("jane", "is", "visiting"), ("jane", "is", "going", "to", "be", "visiting")):
        table[start] = {"africa": 0.9 if len(start) > 3 else 0.95}
        for rest, probs in tail.items():
            table[start + rest] = probs
    return PrefixTableStepFunction(JANE_WORDS, table)


class TinyTransformer(torch.nn.Module):
    """Chapter 08's ``coursekit.transformer.Transformer`` built from given weights, with an output layer of its
    own: the model that chapter 08's ``greedy_decode`` takes as input in the hidden cases.

    weights: {name: tensor}, a state_dict of ``coursekit.transformer.Transformer``; its sizes are read from
    the shapes (V and d_model from ``embedding.weight``, the layers from the encoder's blocks, d_ff from the
    first feed-forward layer). heads: the attention heads; norm_first: pre-norm (True) or post-norm (False);
    pad_id: the id that pads sources; readout: (V, d_model), the output layer's weights, or None for the
    Transformer's own, tied to the embedding (a random model with tied weights mostly repeats its last
    token); logit_bias: (V,) added to the scores at every position (a trained model does not say <pad> or
    <bos>: a large negative bias there), or (P, V), row t added at target position t (P at least the longest
    tgt_in: say, an <eos> that grows likelier as the sentence grows), or None. Float tensors on one device, in
    one dtype (float32 or float64).

    Called as the Transformer is, ``model(src, tgt_in)`` -> logits (B, T, V) (src (B, S) long, right-padded
    with pad_id; tgt_in (B, T) long): teacher forcing, each position seeing only the target up to its own. In
    eval mode, without dropout, its parameters frozen.
    """

    def __init__(self, weights: dict, heads: int, norm_first: bool = True, pad_id: int = 0,
                 readout: torch.Tensor | None = None, logit_bias: torch.Tensor | None = None):
        super().__init__()
        from coursekit.transformer import Transformer  # not at the top: the other toy models need only torch

        embedding = weights["embedding.weight"]
        layers = len({name.split(".")[1] for name in weights if name.startswith("encoder.")})
        d_ff = weights["encoder.0.feed_forward.0.weight"].size(0)
        self.transformer = Transformer(embedding.size(0), embedding.size(1), heads, layers, d_ff, dropout=0.0,
                                       norm_first=norm_first, pad_id=int(pad_id))
        self.transformer.to(embedding.device, embedding.dtype)  # then load: float64 weights stay float64
        self.transformer.load_state_dict(weights)
        self.register_buffer("readout", embedding.clone() if readout is None else readout.clone())
        bias = torch.zeros(embedding.size(0)) if logit_bias is None else logit_bias
        self.register_buffer("logit_bias", bias.to(embedding.device, embedding.dtype))
        self.pad_id = int(pad_id)
        self.requires_grad_(False)
        self.eval()

    @property
    def vocab_size(self) -> int:
        return self.transformer.vocab_size

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        memory, _ = self.transformer.encode(src)
        y = self.transformer.decode(tgt_in, memory, src != self.pad_id)  # (B, T, d_model)
        bias = self.logit_bias if self.logit_bias.dim() == 1 else self.logit_bias[:tgt_in.size(1)]
        return y @ self.readout.T + bias                                 # (B, T, V)


class TinyGPT(torch.nn.Module):
    """Chapter 10's ``coursekit.gpt.GPT`` built from given weights: the language model that chapter 10's
    ``generate`` takes as input in the hidden cases.

    weights: {name: tensor}, a state_dict of ``coursekit.gpt.GPT``; its sizes are read from the shapes (the
    vocabulary and d_model from ``token.weight``, the context window from ``position.weight``, the layers from
    the blocks); heads: the attention heads. Float tensors on one device, in one dtype (float32 or float64).

    Called as the GPT is, ``model(ids, cache=None)`` -> ``(logits (B, T, V), cache)``: ids (B, T) long, the
    positions of ``ids`` following those the cache holds; all must fit in ``block_size``. In eval mode, without
    dropout, its parameters frozen. ``calls`` counts the calls, ``positions`` the positions they fed.
    """

    def __init__(self, weights: dict, heads: int):
        super().__init__()
        from coursekit.gpt import GPT, GPTConfig  # not at the top: the other toy models need only torch

        vocab, d_model = weights["token.weight"].shape
        layers = len({name.split(".")[1] for name in weights if name.startswith("blocks.")})
        config = GPTConfig(vocab, weights["position.weight"].size(0), d_model, heads, layers, dropout=0.0)
        self.gpt = GPT(config).to(weights["token.weight"].device, weights["token.weight"].dtype)
        self.gpt.load_state_dict(weights)
        self.config = config
        self.calls, self.positions = 0, 0
        self.requires_grad_(False)
        self.eval()

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    @property
    def block_size(self) -> int:
        return self.config.block_size

    def forward(self, ids: torch.Tensor, cache=None):
        self.calls += 1
        self.positions += ids.size(1)
        with torch.no_grad():
            return self.gpt(ids, cache)


class CacheOnlyGPT(TinyGPT):
    """A ``TinyGPT`` that insists on its KV cache: chapter 10's ``generate_with_kv_cache`` takes it as input.

    The first call reads the prompt without a cache, ``model(prompt)``; every later call must pass the cache
    the previous call returned and a single new token, ``model(ids[:, -1:], cache)``, else it raises a
    RuntimeError that says so (code that reads the whole prefix again cannot pass for cached generation)."""

    def forward(self, ids: torch.Tensor, cache=None):
        if self.calls > 0 and cache is None:
            raise RuntimeError(f"CacheOnlyGPT: call {self.calls + 1} has no cache. After the first call, pass the "
                               "cache the last call returned: model(ids[:, -1:], cache)")
        if self.calls > 0 and ids.size(1) != 1:
            raise RuntimeError(f"CacheOnlyGPT: call {self.calls + 1} feeds {ids.size(1)} tokens with the cache. "
                               "After the first call, feed only the newest token: model(ids[:, -1:], cache)")
        return super().forward(ids, cache)
