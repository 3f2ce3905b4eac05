"""Plausible wrong answers for 08_transformer: each must cost exactly its own test's points.

The answer cells of the blocks and the model hold a given ``__init__``; a variant is that ``__init__`` with
another ``forward`` (``_encoder``, ``_decoder``, ``_model`` put them together).
"""

ENCODER_INIT = '''
class EncoderBlock(nn.Module):
    def __init__(self, d_model, heads, d_ff, dropout=0.1, norm_first=True):
        super().__init__()
        self.norm_first = norm_first
        self.attention = MultiHeadAttention(d_model, heads, dropout)
        self.feed_forward = FeedForward(d_model, d_ff, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
'''

DECODER_INIT = '''
class DecoderBlock(nn.Module):
    def __init__(self, d_model, heads, d_ff, dropout=0.1, norm_first=True):
        super().__init__()
        self.norm_first = norm_first
        self.self_attention = MultiHeadAttention(d_model, heads, dropout)
        self.cross_attention = MultiHeadAttention(d_model, heads, dropout)
        self.feed_forward = FeedForward(d_model, d_ff, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
'''

MODEL_INIT = '''
class Transformer(nn.Module):
    def __init__(self, vocab_size, d_model, heads, layers, d_ff, dropout=0.1, norm_first=True, pad_id=0):
        super().__init__()
        self.pad_id, self.d_model = pad_id, d_model
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.register_buffer("positions", sinusoidal_positions(1024, d_model), persistent=False)
        self.encoder = nn.ModuleList(EncoderBlock(d_model, heads, d_ff, dropout, norm_first) for _ in range(layers))
        self.decoder = nn.ModuleList(DecoderBlock(d_model, heads, d_ff, dropout, norm_first) for _ in range(layers))
        self.encoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.dropout = nn.Dropout(dropout)
'''


def _encoder(methods: str) -> str:
    return ENCODER_INIT + methods


def _decoder(methods: str) -> str:
    return DECODER_INIT + methods


def _model(methods: str) -> str:
    return MODEL_INIT + methods


# the reference's forward of the model, with one line that each wrong answer changes
MODEL_FORWARD = '''
    def forward(self, src, tgt_in):
        scale = SCALE
        src_mask = (src != self.pad_id)[:, None, None, :]
        tgt_mask = TGT_MASK
        x = self.dropout(self.embedding(src) * scale + self.positions[:src.size(1)])
        for block in self.encoder:
            x = block(x, src_mask)
        memory = self.encoder_norm(x)
        y = self.dropout(self.embedding(tgt_in) * scale + self.positions[TGT_POSITIONS])
        for block in self.decoder:
            y = block(y, memory, tgt_mask, CROSS_MASK)
        return OUTPUT
'''


def _model_forward(**changes) -> str:
    source = MODEL_FORWARD
    defaults = dict(SCALE="math.sqrt(self.d_model)", TGT_MASK="causal_mask(tgt_in.size(1), tgt_in.device)",
                    TGT_POSITIONS=":tgt_in.size(1)", CROSS_MASK="src_mask",
                    OUTPUT="self.decoder_norm(y) @ self.embedding.weight.T")
    for key, value in {**defaults, **changes}.items():
        source = source.replace(key, value)
    return _model(source)


# the reference's greedy loop, with the lines that the wrong answers change
GREEDY = '''
def greedy_decode(model, src, max_len, bos_id, eos_id, pad_id):
    with torch.no_grad():
        tgt_in = torch.full((src.size(0), 1), bos_id, dtype=torch.long, device=src.device)
        done = torch.zeros(src.size(0), dtype=torch.bool, device=src.device)
        out = []
        for _ in range(max_len):
            token = model(src, tgt_in)[:, -1].argmax(dim=-1)
            token = FILL
            out.append(token)
            done = done | (token == eos_id)
            if STOP:
                break
            tgt_in = torch.cat([tgt_in, token[:, None]], dim=1)
        return RESULT
'''


def _greedy(**changes) -> str:
    source = GREEDY
    defaults = dict(FILL="token.masked_fill(done, pad_id)", STOP="done.all()", RESULT="torch.stack(out, dim=1)")
    for key, value in {**defaults, **changes}.items():
        source = source.replace(key, value)
    return source


# answer cell grade_id -> a wrong version of that cell
WRONG = {
    # drops the first column instead of the last: <bos> y_2 ... y_T
    "shift": '''
def shift_right(targets, bos_id):
    start = torch.full_like(targets[:, :1], bos_id)
    return torch.cat([start, targets[:, 1:]], dim=1)
''',
    # pre-norm with the residual taken from the normalised input: h + Attn(h) instead of x + Attn(h)
    "encoder": _encoder('''
    def forward(self, x, src_mask=None):
        if self.norm_first:
            h = self.norm1(x)
            x = h + self.dropout(self.attention(h, h, src_mask))
            h = self.norm2(x)
            return h + self.dropout(self.feed_forward(h))
        x = self.norm1(x + self.dropout(self.attention(x, x, src_mask)))
        return self.norm2(x + self.dropout(self.feed_forward(x)))
'''),
    # ignores tgt_mask: every position reads the whole target, its future included
    "decoder": _decoder('''
    def forward(self, y, memory, tgt_mask=None, src_mask=None):
        if self.norm_first:
            h = self.norm1(y)
            y = y + self.dropout(self.self_attention(h, h))
            y = y + self.dropout(self.cross_attention(self.norm2(y), memory, src_mask))
            return y + self.dropout(self.feed_forward(self.norm3(y)))
        y = self.norm1(y + self.dropout(self.self_attention(y, y)))
        y = self.norm2(y + self.dropout(self.cross_attention(y, memory, src_mask)))
        return self.norm3(y + self.dropout(self.feed_forward(y)))
'''),
    # forgets to scale the embeddings by sqrt(d_model): the positions drown the words
    "model": _model_forward(SCALE="1.0"),
    # keeps the model's tokens after a row's <eos> instead of padding
    "greedy": _greedy(FILL="token"),
}

# graded test cell -> the answer cell it tests
TESTED_BY = {"test_shift": "shift", "test_encoder": "encoder", "test_decoder": "decoder", "test_model": "model",
             "test_greedy": "greedy"}

# answer cell grade_id -> more wrong versions of that cell, each a different mistake
MORE_WRONG = {
    "shift": [
        # rolls the targets right but forgets to write <bos>: the last target comes first
        '''
def shift_right(targets, bos_id):
    return torch.roll(targets, shifts=1, dims=1)
''',
        # keeps every column: (B, T + 1), one longer than the targets
        '''
def shift_right(targets, bos_id):
    return torch.cat([torch.full_like(targets[:, :1], bos_id), targets], dim=1)
''',
        # writes <bos> over the first target instead of shifting
        '''
def shift_right(targets, bos_id):
    out = targets.clone()
    out[:, 0] = bos_id
    return out
''',
        # shifts in place: the caller's targets, which the loss still needs, are overwritten
        '''
def shift_right(targets, bos_id):
    targets[:, 1:] = targets[:, :-1].clone()
    targets[:, 0] = bos_id
    return targets
''',
    ],
    "encoder": [
        # ignores norm_first: always pre-norm
        _encoder('''
    def forward(self, x, src_mask=None):
        h = self.norm1(x)
        x = x + self.dropout(self.attention(h, h, src_mask))
        return x + self.dropout(self.feed_forward(self.norm2(x)))
'''),
        # F.dropout with the layer's rate: F.dropout drops in eval mode too (its training flag defaults to True)
        _encoder('''
    def forward(self, x, src_mask=None):
        p = self.dropout.p
        if self.norm_first:
            h = self.norm1(x)
            x = x + F.dropout(self.attention(h, h, src_mask), p)
            return x + F.dropout(self.feed_forward(self.norm2(x)), p)
        x = self.norm1(x + F.dropout(self.attention(x, x, src_mask), p))
        return self.norm2(x + F.dropout(self.feed_forward(x), p))
'''),
        # the feed-forward layer reads the block's input, not the attention's output (two parallel branches)
        _encoder('''
    def forward(self, x, src_mask=None):
        if self.norm_first:
            h = self.norm1(x)
            return x + self.dropout(self.attention(h, h, src_mask)) + self.dropout(self.feed_forward(self.norm2(x)))
        h = self.norm1(x + self.dropout(self.attention(x, x, src_mask)))
        return self.norm2(h + self.dropout(self.feed_forward(x)))
'''),
        # forgets to pass the mask to the attention: padding is attended to
        _encoder('''
    def forward(self, x, src_mask=None):
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.dropout(self.attention(h, h))
            return x + self.dropout(self.feed_forward(self.norm2(x)))
        x = self.norm1(x + self.dropout(self.attention(x, x)))
        return self.norm2(x + self.dropout(self.feed_forward(x)))
'''),
        # post-norm with the two norms swapped (norm2 after the attention, norm1 after the feed-forward layer)
        _encoder('''
    def forward(self, x, src_mask=None):
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.dropout(self.attention(h, h, src_mask))
            return x + self.dropout(self.feed_forward(self.norm2(x)))
        x = self.norm2(x + self.dropout(self.attention(x, x, src_mask)))
        return self.norm1(x + self.dropout(self.feed_forward(x)))
'''),
    ],
    "decoder": [
        # the masks swapped: src_mask for the self-attention, tgt_mask for the cross-attention
        _decoder('''
    def forward(self, y, memory, tgt_mask=None, src_mask=None):
        if self.norm_first:
            h = self.norm1(y)
            y = y + self.dropout(self.self_attention(h, h, src_mask))
            y = y + self.dropout(self.cross_attention(self.norm2(y), memory, tgt_mask))
            return y + self.dropout(self.feed_forward(self.norm3(y)))
        y = self.norm1(y + self.dropout(self.self_attention(y, y, src_mask)))
        y = self.norm2(y + self.dropout(self.cross_attention(y, memory, tgt_mask)))
        return self.norm3(y + self.dropout(self.feed_forward(y)))
'''),
        # pre-norm that also normalises the memory with norm2 before the cross-attention
        _decoder('''
    def forward(self, y, memory, tgt_mask=None, src_mask=None):
        if self.norm_first:
            h = self.norm1(y)
            y = y + self.dropout(self.self_attention(h, h, tgt_mask))
            y = y + self.dropout(self.cross_attention(self.norm2(y), self.norm2(memory), src_mask))
            return y + self.dropout(self.feed_forward(self.norm3(y)))
        y = self.norm1(y + self.dropout(self.self_attention(y, y, tgt_mask)))
        y = self.norm2(y + self.dropout(self.cross_attention(y, memory, src_mask)))
        return self.norm3(y + self.dropout(self.feed_forward(y)))
'''),
        # the cross-attention's keys and values from the decoder, its queries from the memory: (B, S, d) comes out
        _decoder('''
    def forward(self, y, memory, tgt_mask=None, src_mask=None):
        if self.norm_first:
            h = self.norm1(y)
            y = y + self.dropout(self.self_attention(h, h, tgt_mask))
            y = y + self.dropout(self.cross_attention(memory, self.norm2(y)))
            return y + self.dropout(self.feed_forward(self.norm3(y)))
        y = self.norm1(y + self.dropout(self.self_attention(y, y, tgt_mask)))
        y = self.norm2(y + self.dropout(self.cross_attention(memory, y)))
        return self.norm3(y + self.dropout(self.feed_forward(y)))
'''),
        # post-norm whose cross-attention reads the block's input y instead of the self-attention's output
        _decoder('''
    def forward(self, y, memory, tgt_mask=None, src_mask=None):
        if self.norm_first:
            h = self.norm1(y)
            y = y + self.dropout(self.self_attention(h, h, tgt_mask))
            y = y + self.dropout(self.cross_attention(self.norm2(y), memory, src_mask))
            return y + self.dropout(self.feed_forward(self.norm3(y)))
        h = self.norm1(y + self.dropout(self.self_attention(y, y, tgt_mask)))
        h = self.norm2(h + self.dropout(self.cross_attention(y, memory, src_mask)))
        return self.norm3(h + self.dropout(self.feed_forward(h)))
'''),
        # ignores norm_first: always post-norm
        _decoder('''
    def forward(self, y, memory, tgt_mask=None, src_mask=None):
        y = self.norm1(y + self.dropout(self.self_attention(y, y, tgt_mask)))
        y = self.norm2(y + self.dropout(self.cross_attention(y, memory, src_mask)))
        return self.norm3(y + self.dropout(self.feed_forward(y)))
'''),
    ],
    "model": [
        # no causal mask in the decoder: every position reads the whole target
        _model_forward(TGT_MASK="None"),
        # the cross-attention without the source's padding mask (only the encoder is masked)
        _model_forward(CROSS_MASK="None"),
        # the target's positions continue after the source's: PE[S : S + T] instead of PE[0 : T]
        _model_forward(TGT_POSITIONS="src.size(1):src.size(1) + tgt_in.size(1)"),
        # forgets the decoder's final norm
        _model_forward(OUTPUT="y @ self.embedding.weight.T"),
    ],
    "greedy": [
        # stops as soon as one row has said <eos>
        _greedy(STOP="done.any()"),
        # runs all max_len steps: (B, max_len) even when every row finished long before
        _greedy(STOP="False"),
        # returns <bos> too, as the first column
        _greedy(RESULT="torch.cat([torch.full_like(out[0][:, None], bos_id), torch.stack(out, dim=1)], dim=1)"),
        # pads the <eos> itself: finished rows hold pad_id from their <eos> on
        _greedy(FILL="token.masked_fill(done | (token == eos_id), pad_id)"),
        # reads the scores at the first position at every step instead of the last
        _greedy().replace("model(src, tgt_in)[:, -1]", "model(src, tgt_in)[:, 0]"),
    ],
}

# answer cell grade_id -> correct versions of that cell, written differently from the reference
ALTERNATIVES = {
    "shift": [
        # F.pad: one column of bos_id on the left of all but the last column
        '''
def shift_right(targets, bos_id):
    return F.pad(targets[:, :-1], (1, 0), value=bos_id)
''',
        # a new tensor filled with bos_id, the targets copied into columns 1..T-1
        '''
def shift_right(targets, bos_id):
    out = targets.new_full(targets.shape, bos_id)
    out[:, 1:] = targets[:, :-1]
    return out
''',
        # Python lists, back to a tensor of the targets' dtype and device
        '''
def shift_right(targets, bos_id):
    rows = [[bos_id] + row[:-1] for row in targets.tolist()]
    return torch.tensor(rows, dtype=targets.dtype, device=targets.device)
''',
        # roll (which copies), then <bos> over the wrapped-around column
        '''
def shift_right(targets, bos_id):
    out = targets.roll(1, dims=-1)
    out[:, 0] = bos_id
    return out
''',
    ],
    "encoder": [
        # one residual helper for both sub-layers, keyword arguments for the attention
        _encoder('''
    def residual(self, x, norm, sublayer):
        if self.norm_first:
            return x + self.dropout(sublayer(norm(x)))
        return norm(x + self.dropout(sublayer(x)))

    def forward(self, x, src_mask=None):
        x = self.residual(x, self.norm1, lambda h: self.attention(x=h, source=h, mask=src_mask))
        return self.residual(x, self.norm2, self.feed_forward)
'''),
        # a loop over (norm, sub-layer) pairs; the post-norm branch written out
        _encoder('''
    def forward(self, x, src_mask=None):
        sublayers = [(self.norm1, lambda h: self.attention(h, h, src_mask)), (self.norm2, self.feed_forward)]
        for norm, f in sublayers:
            if self.norm_first:
                x = x + self.dropout(f(norm(x)))
            else:
                s = x + self.dropout(f(x))
                x = norm(s)
        return x
'''),
    ],
    "decoder": [
        # one residual helper for the three sub-layers
        _decoder('''
    def residual(self, x, norm, sublayer):
        if self.norm_first:
            return x + self.dropout(sublayer(norm(x)))
        return norm(x + self.dropout(sublayer(x)))

    def forward(self, y, memory, tgt_mask=None, src_mask=None):
        y = self.residual(y, self.norm1, lambda h: self.self_attention(h, h, mask=tgt_mask))
        y = self.residual(y, self.norm2, lambda h: self.cross_attention(h, memory, mask=src_mask))
        return self.residual(y, self.norm3, self.feed_forward)
'''),
        # the two orders written apart, intermediate results named
        _decoder('''
    def forward(self, y, memory, tgt_mask=None, src_mask=None):
        if not self.norm_first:
            a = self.self_attention(y, y, tgt_mask)
            h1 = self.norm1(y + self.dropout(a))
            c = self.cross_attention(h1, memory, src_mask)
            h2 = self.norm2(h1 + self.dropout(c))
            return self.norm3(h2 + self.dropout(self.feed_forward(h2)))
        n1 = self.norm1(y)
        h1 = y + self.dropout(self.self_attention(n1, n1, tgt_mask))
        h2 = h1 + self.dropout(self.cross_attention(self.norm2(h1), memory, src_mask))
        out = h2 + self.dropout(self.feed_forward(self.norm3(h2)))
        return out
'''),
    ],
    "model": [
        # encode and decode as methods; the masks made with unsqueeze and tril; F.linear for the tied output
        _model('''
    def embed(self, tokens):
        return self.dropout(self.embedding(tokens) * self.d_model ** 0.5 + self.positions[:tokens.size(1)])

    def encode(self, src, src_mask):
        x = self.embed(src)
        for block in self.encoder:
            x = block(x, src_mask=src_mask)
        return self.encoder_norm(x)

    def forward(self, src, tgt_in):
        src_mask = src.ne(self.pad_id).unsqueeze(1).unsqueeze(2)
        T = tgt_in.size(1)
        tgt_mask = torch.tril(torch.ones(T, T, dtype=torch.bool, device=tgt_in.device))
        memory = self.encode(src, src_mask)
        y = self.embed(tgt_in)
        for block in self.decoder:
            y = block(y, memory, tgt_mask=tgt_mask, src_mask=src_mask)
        return F.linear(self.decoder_norm(y), self.embedding.weight)
'''),
        # F.embedding on the table; the masks broadcast to (B, 1, T, S) and (B, 1, T, T) first; einsum for the logits
        _model('''
    def forward(self, src, tgt_in):
        E = self.embedding.weight
        (B, S), T = src.shape, tgt_in.size(1)
        keep = (src != self.pad_id).view(B, 1, 1, S)
        x = F.embedding(src, E) * math.sqrt(self.d_model) + self.positions[:S].unsqueeze(0)
        x = self.dropout(x)
        for block in self.encoder:
            x = block(x, keep.expand(B, 1, S, S))
        memory = self.encoder_norm(x)
        y = self.dropout(F.embedding(tgt_in, E) * math.sqrt(self.d_model) + self.positions[:T].unsqueeze(0))
        causal = causal_mask(T, device=src.device).expand(B, 1, T, T)
        for block in self.decoder:
            y = block(y, memory, causal, keep.expand(B, 1, T, S))
        return torch.einsum("btd,vd->btv", self.decoder_norm(y), E)
'''),
    ],
    "greedy": [
        # one sentence at a time, Python lists, padded to the longest at the end
        '''
@torch.no_grad()
def greedy_decode(model, src, max_len, bos_id, eos_id, pad_id):
    rows = []
    for b in range(src.size(0)):
        ids = [bos_id]
        while len(ids) <= max_len:
            logits = model(src[b:b + 1], torch.tensor([ids], device=src.device))
            ids.append(int(logits[0, -1].argmax()))
            if ids[-1] == eos_id:
                break
        rows.append(ids[1:])
    length = max(len(r) for r in rows)
    return torch.tensor([r + [pad_id] * (length - len(r)) for r in rows], dtype=torch.long, device=src.device)
''',
        # a decoder input made once, max_len + 1 long and filled with pad_id; position t read at step t (the
        # causal mask makes the positions after it irrelevant); finished rows found with torch.where
        '''
def greedy_decode(model, src, max_len, bos_id, eos_id, pad_id):
    B = src.shape[0]
    tgt = torch.full((B, max_len + 1), pad_id, dtype=torch.long, device=src.device)
    tgt[:, 0] = bos_id
    finished = torch.zeros(B, dtype=torch.bool, device=src.device)
    t = 0
    with torch.no_grad():
        while t < max_len and not bool(finished.all()):
            best = model(src, tgt)[:, t, :].argmax(-1)
            tgt[:, t + 1] = torch.where(finished, torch.full_like(best, pad_id), best)
            finished = finished | (best == eos_id)
            t += 1
    return tgt[:, 1:t + 1]
''',
    ],
}
