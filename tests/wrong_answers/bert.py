"""Plausible wrong answers for 09_bert: each must cost exactly its own test's points.

The masking variants are the reference with one line changed (``_mask``); the pair-making cell holds two functions,
so each of its variants is the whole cell (``_nsp``: the reference's make_nsp_pairs and pack_pair, one of them
changed); the embeddings and the head are whole classes (``_embeddings``, ``_head``: the reference's ``__init__`` and
another ``forward``).
"""

# the reference's masking, with the lines that the wrong answers change
MASK = '''
def mask_tokens(ids, special, u, rate=0.15, mask_id=MASK, vocab_size=VOCAB_SIZE, first_ordinary=len(SPECIAL_TOKENS)):
    chosen = CHOSEN
    what = u[..., 1]
    pieces = PIECES
    inputs = torch.where(chosen & (what < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(chosen & RANDOM, pieces, inputs)
    labels = LABELS
    return inputs, labels
'''


def _mask(**changes) -> str:
    source = MASK
    defaults = dict(CHOSEN="(u[..., 0] < rate) & ~special",
                    PIECES="first_ordinary + (u[..., 2] * (vocab_size - first_ordinary)).floor().to(ids.dtype)",
                    RANDOM="(what >= 0.8) & (what < 0.9)",
                    LABELS="torch.where(chosen, ids, torch.full_like(ids, IGNORE))")
    for key, value in {**defaults, **changes}.items():
        source = source.replace(key, value)
    return source


# the reference's pair-making cell, with the lines that the wrong answers change
NSP = '''
def make_nsp_pairs(documents, u):
    if sum(len(doc) > 0 for doc in documents) < 2:
        raise ValueError("next-sentence prediction needs two documents with sentences")
    pairs = []
    for d, doc in enumerate(documents):
        others = OTHERS
        for t in range(len(doc) - 1):
            i = len(pairs)
            if DECIDE:
                pairs.append((doc[t], doc[t + 1], NEXT_LABEL))
            else:
                pairs.append((doc[t], others[int(DRAW * len(others))], RANDOM_LABEL))
    return pairs


def pack_pair(a_ids, b_ids, cls_id=CLS, sep_id=SEP):
    ids = IDS
    segments = SEGMENTS
    return ids, segments
'''


def _nsp(**changes) -> str:
    source = NSP
    defaults = dict(OTHERS="[s for e, other in enumerate(documents) if e != d for s in other]",
                    DECIDE="u[i, 0] < 0.5", DRAW="u[i, 1]", NEXT_LABEL="0", RANDOM_LABEL="1",
                    IDS="[cls_id, *a_ids, sep_id, *b_ids, sep_id]",
                    SEGMENTS="[0] * (len(a_ids) + 2) + [1] * (len(b_ids) + 1)")
    for key, value in {**defaults, **changes}.items():
        source = source.replace(key, value)
    return source


EMBEDDINGS_INIT = '''
class BertEmbeddings(nn.Module):
    def __init__(self, vocab_size, d_model, max_positions=512, segments=2, dropout=0.1, eps=1e-12):
        super().__init__()
        self.token = nn.Embedding(vocab_size, d_model, padding_idx=PAD)
        self.position = nn.Embedding(max_positions, d_model)
        self.segment = nn.Embedding(segments, d_model)
        self.norm = nn.LayerNorm(d_model, eps=eps)
        self.dropout = nn.Dropout(dropout)
'''


def _embeddings(forward: str) -> str:
    return EMBEDDINGS_INIT + forward


HEAD_INIT = '''
class ClassificationHead(nn.Module):
    def __init__(self, d_model, labels=2, dropout=0.1):
        super().__init__()
        self.pooler = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(d_model, labels)
'''


def _head(forward: str) -> str:
    return HEAD_INIT + forward


# answer cell grade_id -> a wrong version of that cell
WRONG = {
    # chooses special positions too: [CLS], [SEP] and [PAD] get masked and asked for
    "mask": _mask(CHOSEN="u[..., 0] < rate"),
    # the labels the wrong way round: 1 for IsNext, 0 for NotNext
    "nsp": _nsp(NEXT_LABEL="1", RANDOM_LABEL="0"),
    # forgets the layer norm: the raw sum of the three embeddings
    "embeddings": _embeddings('''
    def forward(self, ids, segments=None):
        positions = torch.arange(ids.size(1), device=ids.device)
        if segments is None:
            segments = torch.zeros_like(ids)
        return self.dropout(self.token(ids) + self.position(positions) + self.segment(segments))
'''),
    # pools the mean over the positions instead of the [CLS] vector
    "head": _head('''
    def forward(self, h):
        return self.out(self.dropout(torch.tanh(self.pooler(h.mean(dim=1)))))
'''),
}

# graded test cell -> the answer cell it tests
TESTED_BY = {"test_mask": "mask", "test_nsp": "nsp", "test_embeddings": "embeddings", "test_head": "head"}

# answer cell grade_id -> more wrong versions of that cell, each a different mistake
MORE_WRONG = {
    "mask": [
        # <= instead of <: a position whose u0 equals the rate (or is 0 with rate 0) is chosen
        _mask(CHOSEN="(u[..., 0] <= rate) & ~special"),
        # the 10% branches swapped: a random piece when u1 >= 0.9, unchanged when 0.8 <= u1 < 0.9
        _mask(RANDOM="(what >= 0.9)"),
        # the random piece drawn from the whole vocabulary, special pieces included
        _mask(PIECES="(u[..., 2] * vocab_size).floor().to(ids.dtype)"),
        # the labels swapped: IGNORE at the chosen positions, the original piece elsewhere
        _mask(LABELS="torch.where(chosen, torch.full_like(ids, IGNORE), ids)"),
        # a label at every position, chosen or not
        _mask(LABELS="ids.clone()"),
        # the special positions told by the ids (the course's first five), not by `special`
        _mask(CHOSEN="(u[..., 0] < rate) & (ids > MASK)"),
        # the random piece from u1, the number that chose the branch, instead of u2
        _mask(PIECES="first_ordinary + (u[..., 1] * (vocab_size - first_ordinary)).floor().to(ids.dtype)"),
        # rounds to the nearest piece instead of flooring
        _mask(PIECES="first_ordinary + (u[..., 2] * (vocab_size - first_ordinary)).round().to(ids.dtype)"),
        # right values, but made in the caller's ids: the clean text is lost
        '''
def mask_tokens(ids, special, u, rate=0.15, mask_id=MASK, vocab_size=VOCAB_SIZE, first_ordinary=len(SPECIAL_TOKENS)):
    chosen = (u[..., 0] < rate) & ~special
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
    random = chosen & (u[..., 1] >= 0.8) & (u[..., 1] < 0.9)
    pieces = first_ordinary + (u[..., 2] * (vocab_size - first_ordinary)).long()
    ids[chosen & (u[..., 1] < 0.8)] = mask_id
    ids[random] = pieces[random].to(ids.dtype)
    return ids, labels
''',
    ],
    "nsp": [
        # the random sentence may come from A's own document (every sentence of every document)
        _nsp(OTHERS="[s for other in documents for s in other]"),
        # the two numbers swapped: u[i, 1] decides, u[i, 0] draws
        _nsp(DECIDE="u[i, 1] < 0.5", DRAW="u[i, 0]"),
        # the first [SEP] counted in segment 1
        _nsp(SEGMENTS="[0] * (len(a_ids) + 1) + [1] * (len(b_ids) + 2)"),
        # forgets the final [SEP]
        _nsp(IDS="[cls_id, *a_ids, sep_id, *b_ids]", SEGMENTS="[0] * (len(a_ids) + 2) + [1] * len(b_ids)"),
        # pairs run across documents: the sentences of all documents as one text
        '''
def make_nsp_pairs(documents, u):
    if sum(len(doc) > 0 for doc in documents) < 2:
        raise ValueError("next-sentence prediction needs two documents with sentences")
    sentences = [s for doc in documents for s in doc]
    pairs = []
    for i in range(len(sentences) - 1):
        if u[i, 0] < 0.5:
            pairs.append((sentences[i], sentences[i + 1], 0))
        else:
            pairs.append((sentences[i], sentences[int(u[i, 1] * len(sentences))], 1))
    return pairs


def pack_pair(a_ids, b_ids, cls_id=CLS, sep_id=SEP):
    return [cls_id, *a_ids, sep_id, *b_ids, sep_id], [0] * (len(a_ids) + 2) + [1] * (len(b_ids) + 1)
''',
        # no check for a single document: nothing is raised while every pair is IsNext
        _nsp().replace('''    if sum(len(doc) > 0 for doc in documents) < 2:
        raise ValueError("next-sentence prediction needs two documents with sentences")
''', ""),
    ],
    "embeddings": [
        # the layer norm applied to the token embedding alone, before positions and segments are added
        _embeddings('''
    def forward(self, ids, segments=None):
        positions = torch.arange(ids.size(1), device=ids.device)
        if segments is None:
            segments = torch.zeros_like(ids)
        return self.dropout(self.norm(self.token(ids)) + self.position(positions) + self.segment(segments))
'''),
        # forgets the positions: the model cannot tell the order of the pieces
        _embeddings('''
    def forward(self, ids, segments=None):
        if segments is None:
            segments = torch.zeros_like(ids)
        return self.dropout(self.norm(self.token(ids) + self.segment(segments)))
'''),
        # ignores the segments it is given: every position in segment 0
        _embeddings('''
    def forward(self, ids, segments=None):
        positions = torch.arange(ids.size(1), device=ids.device)
        segments = torch.zeros_like(ids)
        return self.dropout(self.norm(self.token(ids) + self.position(positions) + self.segment(segments)))
'''),
        # positions counted from 1: row t + 1 at position t (and T = max_positions is out of the table)
        _embeddings('''
    def forward(self, ids, segments=None):
        positions = torch.arange(1, ids.size(1) + 1, device=ids.device)
        if segments is None:
            segments = torch.zeros_like(ids)
        return self.dropout(self.norm(self.token(ids) + self.position(positions) + self.segment(segments)))
'''),
        # chapter 08's scaling carried over: the token embedding times sqrt(d_model)
        _embeddings('''
    def forward(self, ids, segments=None):
        positions = torch.arange(ids.size(1), device=ids.device)
        if segments is None:
            segments = torch.zeros_like(ids)
        x = self.token(ids) * math.sqrt(self.token.embedding_dim) + self.position(positions) + self.segment(segments)
        return self.dropout(self.norm(x))
'''),
        # F.dropout with the layer's rate: it drops in eval mode too (its training flag defaults to True)
        _embeddings('''
    def forward(self, ids, segments=None):
        positions = torch.arange(ids.size(1), device=ids.device)
        if segments is None:
            segments = torch.zeros_like(ids)
        x = self.token(ids) + self.position(positions) + self.segment(segments)
        return F.dropout(self.norm(x), self.dropout.p)
'''),
    ],
    "head": [
        # forgets the pooler's tanh
        _head('''
    def forward(self, h):
        return self.out(self.dropout(self.pooler(h[:, 0])))
'''),
        # classifies from the last position instead of [CLS]
        _head('''
    def forward(self, h):
        return self.out(self.dropout(torch.tanh(self.pooler(h[:, -1]))))
'''),
        # ReLU instead of tanh in the pooler
        _head('''
    def forward(self, h):
        return self.out(self.dropout(torch.relu(self.pooler(h[:, 0]))))
'''),
        # skips the pooler: the [CLS] vector straight to the output layer
        _head('''
    def forward(self, h):
        return self.out(self.dropout(h[:, 0]))
'''),
        # F.dropout with the layer's rate: it drops in eval mode too
        _head('''
    def forward(self, h):
        return self.out(F.dropout(torch.tanh(self.pooler(h[:, 0])), self.dropout.p))
'''),
        # a softmax on the scores: probabilities, not the logits the docstring asks for
        _head('''
    def forward(self, h):
        return torch.softmax(self.out(self.dropout(torch.tanh(self.pooler(h[:, 0])))), dim=-1)
'''),
    ],
}

# answer cell grade_id -> correct versions of that cell, written differently from the reference
ALTERNATIVES = {
    "mask": [
        # chapter-style boolean indexing on a copy
        '''
def mask_tokens(ids, special, u, rate=0.15, mask_id=MASK, vocab_size=VOCAB_SIZE, first_ordinary=len(SPECIAL_TOKENS)):
    chosen = (u[..., 0] < rate) & ~special
    inputs = ids.clone()
    inputs[chosen & (u[..., 1] < 0.8)] = mask_id
    random = chosen & (u[..., 1] >= 0.8) & (u[..., 1] < 0.9)
    pieces = first_ordinary + (u[..., 2] * (vocab_size - first_ordinary)).long()
    inputs[random] = pieces[random].to(ids.dtype)
    labels = ids.masked_fill(~chosen, IGNORE)
    return inputs, labels
''',
        # a Python loop over the positions, on lists, back to tensors of the ids' dtype and device
        '''
def mask_tokens(ids, special, u, rate=0.15, mask_id=MASK, vocab_size=VOCAB_SIZE, first_ordinary=len(SPECIAL_TOKENS)):
    inputs, labels = [], []
    for row, special_row, u_row in zip(ids.tolist(), special.tolist(), u.tolist()):
        inputs.append([])
        labels.append([])
        for piece, is_special, (choose, what, which) in zip(row, special_row, u_row):
            if is_special or not choose < rate:
                inputs[-1].append(piece)
                labels[-1].append(IGNORE)
                continue
            if what < 0.8:
                inputs[-1].append(mask_id)
            elif what < 0.9:
                inputs[-1].append(first_ordinary + math.floor(which * (vocab_size - first_ordinary)))
            else:
                inputs[-1].append(piece)
            labels[-1].append(piece)
    make = lambda rows: torch.tensor(rows, dtype=ids.dtype, device=ids.device).reshape(ids.shape)
    return make(inputs), make(labels)
''',
        # float64 inside, masked_fill for [MASK], long ids out
        '''
def mask_tokens(ids, special, u, rate=0.15, mask_id=MASK, vocab_size=VOCAB_SIZE, first_ordinary=len(SPECIAL_TOKENS)):
    u = u.double()
    chosen = (u[:, :, 0] < rate).logical_and(special.logical_not())
    n = vocab_size - first_ordinary
    random_pieces = torch.floor(u[:, :, 2] * n).long() + first_ordinary
    inputs = ids.long().masked_fill(chosen & (u[:, :, 1] < 0.8), mask_id)
    replace = chosen & (u[:, :, 1] >= 0.8) & (u[:, :, 1] < 0.9)
    inputs = torch.where(replace, random_pieces, inputs)
    labels = torch.where(chosen, ids.long(), -100)
    return inputs, labels
''',
    ],
    "nsp": [
        # the sentences listed once with their documents; u read as Python floats; a tuple out of pack_pair's lists
        '''
def make_nsp_pairs(documents, u):
    if len([doc for doc in documents if doc]) < 2:
        raise ValueError("need two documents with sentences")
    flat = [(d, s) for d, doc in enumerate(documents) for s in doc]
    numbers = u.tolist()
    pairs = []
    for d, doc in enumerate(documents):
        others = [s for e, s in flat if e != d]
        for a, b in zip(doc, doc[1:]):
            decide, draw = numbers[len(pairs)]
            if decide < 0.5:
                pairs.append((a, b, 0))
            else:
                pairs.append((a, others[math.floor(draw * len(others))], 1))
    return pairs


def pack_pair(a_ids, b_ids, cls_id=CLS, sep_id=SEP):
    a = [cls_id] + list(a_ids) + [sep_id]
    b = list(b_ids) + [sep_id]
    return a + b, [0 for _ in a] + [1 for _ in b]
''',
        # one tensor decision for all pairs, the labels as int(not is_next), lists for the results
        '''
def make_nsp_pairs(documents, u):
    if sum(1 for doc in documents if len(doc)) < 2:
        raise ValueError("need two documents with sentences")
    is_next = (u[:, 0] < 0.5).tolist()
    pairs, i = [], 0
    for d in range(len(documents)):
        others = sum((documents[e] for e in range(len(documents)) if e != d), [])
        for t in range(len(documents[d]) - 1):
            b = documents[d][t + 1] if is_next[i] else others[int((u[i, 1] * len(others)).floor())]
            pairs.append((documents[d][t], b, int(not is_next[i])))
            i += 1
    return pairs


def pack_pair(a_ids, b_ids, cls_id=CLS, sep_id=SEP):
    ids = [cls_id]
    ids.extend(a_ids)
    ids.append(sep_id)
    cut = len(ids)
    ids.extend(b_ids)
    ids.append(sep_id)
    return ids, [int(i >= cut) for i in range(len(ids))]
''',
    ],
    "embeddings": [
        # PyTorch's default layer-norm epsilon, 1e-5 instead of BERT's 1e-12: within the tolerance
        '''
class BertEmbeddings(nn.Module):
    def __init__(self, vocab_size, d_model, max_positions=512, segments=2, dropout=0.1, eps=1e-12):
        super().__init__()
        self.token = nn.Embedding(vocab_size, d_model, padding_idx=PAD)
        self.position = nn.Embedding(max_positions, d_model)
        self.segment = nn.Embedding(segments, d_model)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, ids, segments=None):
        positions = torch.arange(ids.size(1), device=ids.device)
        if segments is None:
            segments = torch.zeros_like(ids)
        return self.dropout(self.norm(self.token(ids) + self.position(positions) + self.segment(segments)))
''',
        # the tables' rows read directly: the first T position rows, segment 0's row when no segments are given
        '''
class BertEmbeddings(nn.Module):
    def __init__(self, vocab_size, d_model, max_positions=512, segments=2, dropout=0.1, eps=1e-12):
        super().__init__()
        self.token = nn.Embedding(vocab_size, d_model, padding_idx=PAD)
        self.position = nn.Embedding(max_positions, d_model)
        self.segment = nn.Embedding(segments, d_model)
        self.norm = nn.LayerNorm(d_model, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, ids, segments=None):
        x = F.embedding(ids, self.token.weight) + self.position.weight[:ids.shape[1]].unsqueeze(0)
        x = x + (self.segment.weight[0] if segments is None else self.segment.weight[segments])
        return self.dropout(self.norm(x))
''',
        # the layer norm written out (biased variance), with the norm's own gain, bias and epsilon
        '''
class BertEmbeddings(nn.Module):
    def __init__(self, vocab_size, d_model, max_positions=512, segments=2, dropout=0.1, eps=1e-12):
        super().__init__()
        self.token = nn.Embedding(vocab_size, d_model, padding_idx=PAD)
        self.position = nn.Embedding(max_positions, d_model)
        self.segment = nn.Embedding(segments, d_model)
        self.norm = nn.LayerNorm(d_model, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, ids, segments=None):
        B, T = ids.shape
        if segments is None:
            segments = ids.new_zeros(B, T)
        x = self.token(ids) + self.position(torch.arange(T, device=ids.device).expand(B, T)) + self.segment(segments)
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        x = (x - mean) / torch.sqrt(var + self.norm.eps) * self.norm.weight + self.norm.bias
        return self.dropout(x)
''',
    ],
    "head": [
        # h.select(1, 0) for [CLS], the tanh as a module, F.linear for the output
        '''
class ClassificationHead(nn.Module):
    def __init__(self, d_model, labels=2, dropout=0.1):
        super().__init__()
        self.pooler = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(d_model, labels)
        self.activation = nn.Tanh()

    def forward(self, h):
        pooled = self.activation(self.pooler(h.select(1, 0)))
        return F.linear(self.dropout(pooled), self.out.weight, self.out.bias)
''',
        # every position pooled, then the first one kept (a (B, 1, d) slice squeezed)
        '''
class ClassificationHead(nn.Module):
    def __init__(self, d_model, labels=2, dropout=0.1):
        super().__init__()
        self.pooler = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(d_model, labels)

    def forward(self, h):
        pooled = self.pooler(h).tanh()[:, :1].squeeze(1)
        return self.out(self.dropout(pooled))
''',
    ],
}
