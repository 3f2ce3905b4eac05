"""Plausible wrong answers for 05_attention: each must cost exactly its own test's points.

The answer cells of exercises 1 and 2 hold three functions (classes) each: a wrong version of such a cell is the
reference with one of them broken, so that each mistake is proven to fail on its own.
"""

# --------------------------------------------------------------------------- pieces of the answer cells, right

DOT = '''
def dot_score(s, annotations):
    return (annotations @ s.unsqueeze(-1)).squeeze(-1)
'''

SCALED = '''
def scaled_dot_score(s, annotations):
    return (annotations @ s.unsqueeze(-1)).squeeze(-1) / math.sqrt(annotations.size(-1))
'''

COSINE = '''
def cosine_score(s, annotations, beta=1.0):
    dots = (annotations @ s.unsqueeze(-1)).squeeze(-1)
    lengths = annotations.norm(dim=-1) * s.norm(dim=-1, keepdim=True)
    if torch.is_tensor(beta):
        beta = beta.unsqueeze(-1)
    return beta * dots / lengths
'''

GENERAL = '''
class GeneralScore(nn.Module):
    def __init__(self, query_size, key_size):
        super().__init__()
        self.W = nn.Linear(key_size, query_size, bias=False)

    def forward(self, s, annotations):
        return (self.W(annotations) @ s.unsqueeze(-1)).squeeze(-1)
'''

ADDITIVE_INIT = '''
class AdditiveScore(nn.Module):
    def __init__(self, query_size, key_size, attention_size):
        super().__init__()
        self.W = nn.Linear(query_size, attention_size, bias=False)
        self.U = nn.Linear(key_size, attention_size)
        self.v = nn.Linear(attention_size, 1, bias=False)
'''

ADDITIVE = ADDITIVE_INIT + '''
    def forward(self, s, annotations):
        return self.v(torch.tanh(self.W(s).unsqueeze(1) + self.U(annotations))).squeeze(-1)
'''

LOCATION_INIT = '''
class LocationScore(nn.Module):
    def __init__(self, query_size, max_positions):
        super().__init__()
        self.W = nn.Linear(query_size, max_positions)
'''

LOCATION = LOCATION_INIT + '''
    def forward(self, s, annotations):
        return self.W(s)[:, :annotations.size(1)]
'''

STEP_INIT = '''
class AttentionDecoderStep(nn.Module):
    def __init__(self, embed_size, hidden_size, annotation_size, attention_size, vocab_size):
        super().__init__()
        self.score = AdditiveScore(hidden_size, annotation_size, attention_size)
        self.cell = nn.GRUCell(embed_size + annotation_size, hidden_size)
        self.output = nn.Linear(hidden_size + annotation_size, vocab_size)
'''

# answer cell grade_id -> a wrong version of that cell
WRONG = {
    # scales by the square root of the source length S instead of the annotation size K (the broken definition
    # comes first in WRONG: tests/test_checks.py grades the first name a wrong answer defines)
    "scores": '''
def scaled_dot_score(s, annotations):
    return (annotations @ s.unsqueeze(-1)).squeeze(-1) / math.sqrt(annotations.size(1))
''' + DOT + COSINE,
    # no tanh: the additive score becomes linear in s and a_j
    "learned_scores": ADDITIVE_INIT + '''
    def forward(self, s, annotations):
        return self.v(self.W(s).unsqueeze(1) + self.U(annotations)).squeeze(-1)
''' + GENERAL + LOCATION,
    # masks with 0 instead of -inf: a score of 0 still gets weight after the softmax
    "weights": '''
def attention_weights(scores, mask=None):
    if mask is not None:
        scores = scores.masked_fill(~mask, 0.0)
    return torch.softmax(scores, dim=-1)
''',
    # the mean of the weighted annotations instead of their sum: S times too small
    "context": '''
def context_vector(weights, annotations):
    return (weights.unsqueeze(-1) * annotations).mean(dim=1)
''',
    # feeds the GRU [c_t; y_{t-1}] instead of [y_{t-1}; c_t]
    "decoder_step": STEP_INIT + '''
    def forward(self, y_prev, s_prev, annotations, mask):
        alpha = attention_weights(self.score(s_prev, annotations), mask)
        c = context_vector(alpha, annotations)
        s = self.cell(torch.cat([c, y_prev], dim=-1), s_prev)
        return self.output(torch.cat([s, c], dim=-1)), s, alpha
''',
}

# graded test cell -> the answer cell it tests
TESTED_BY = {"test_scores": "scores", "test_learned_scores": "learned_scores", "test_weights": "weights",
             "test_context": "context", "test_decoder_step": "decoder_step"}

# answer cell grade_id -> more wrong versions of that cell, each a different mistake
MORE_WRONG = {
    "scores": [
        # s @ aᵀ without a batch dimension on s: (B, H) @ (B, K, S) broadcasts to (B, B, S)
        '''
def dot_score(s, annotations):
    return s @ annotations.transpose(1, 2)
''' + SCALED + COSINE,
        # sums over the source positions instead of the features: (B, K), not (B, S)
        '''
def dot_score(s, annotations):
    return (annotations * s.unsqueeze(1)).sum(dim=1)
''' + SCALED + COSINE,
        # divides by the length of the annotations only, not by that of the state
        DOT + SCALED + '''
def cosine_score(s, annotations, beta=1.0):
    dots = (annotations @ s.unsqueeze(-1)).squeeze(-1)
    if torch.is_tensor(beta):
        beta = beta.unsqueeze(-1)
    return beta * dots / annotations.norm(dim=-1)
''',
        # a (B,) beta multiplied straight into the (B, S) cosines: an error, or one beta per position when B == S
        DOT + SCALED + '''
def cosine_score(s, annotations, beta=1.0):
    dots = (annotations @ s.unsqueeze(-1)).squeeze(-1)
    return beta * dots / (annotations.norm(dim=-1) * s.norm(dim=-1, keepdim=True))
''',
        # beta inside the cosine, cos(β s, a_j), where it cancels out
        DOT + SCALED + '''
def cosine_score(s, annotations, beta=1.0):
    if torch.is_tensor(beta):
        beta = beta.unsqueeze(-1)
    s = beta * s
    dots = (annotations @ s.unsqueeze(-1)).squeeze(-1)
    return dots / (annotations.norm(dim=-1) * s.norm(dim=-1, keepdim=True))
''',
    ],
    "learned_scores": [
        # squeeze() instead of squeeze(-1): with one sentence or one source word the result loses a dimension
        GENERAL + ADDITIVE_INIT + '''
    def forward(self, s, annotations):
        return self.v(torch.tanh(self.W(s).unsqueeze(1) + self.U(annotations))).squeeze()
''' + LOCATION,
        # adds W s (B, A) to U a (B, S, A) without a source dimension: an error, or, when B == S, a silent mix-up
        # of the sentences (and right by luck when B == 1)
        GENERAL + ADDITIVE_INIT + '''
    def forward(self, s, annotations):
        return self.v(torch.tanh(self.W(s) + self.U(annotations))).squeeze(-1)
''' + LOCATION,
        # W applied to the state instead of the annotations: aᵀ W s = sᵀ Wᵀ a, and an error when H != K
        '''
class GeneralScore(nn.Module):
    def __init__(self, query_size, key_size):
        super().__init__()
        self.W = nn.Linear(key_size, query_size, bias=False)

    def forward(self, s, annotations):
        return (annotations @ self.W(s).unsqueeze(-1)).squeeze(-1)
''' + ADDITIVE + LOCATION,
        # the lecture's α = softmax(W s), softmax included: weights where scores were asked for
        GENERAL + ADDITIVE + LOCATION_INIT + '''
    def forward(self, s, annotations):
        return torch.softmax(self.W(s)[:, :annotations.size(1)], dim=-1)
''',
        # cuts at the annotation size K instead of the source length S
        GENERAL + ADDITIVE + LOCATION_INIT + '''
    def forward(self, s, annotations):
        return self.W(s)[:, :annotations.size(-1)]
''',
    ],
    "weights": [
        # the softmax over the batch (dim=0) instead of the source positions
        '''
def attention_weights(scores, mask=None):
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=0)
''',
        # the mask read the other way round: True taken for padding
        '''
def attention_weights(scores, mask=None):
    if mask is not None:
        scores = scores.masked_fill(mask, float("-inf"))
    return torch.softmax(scores, dim=-1)
''',
        # a softmax by hand without subtracting the row maximum: exp overflows to inf (or underflows to 0)
        '''
def attention_weights(scores, mask=None):
    e = torch.exp(scores)
    if mask is not None:
        e = e * mask
    return e / e.sum(dim=-1, keepdim=True)
''',
        # the softmax first, then the padding zeroed and the rest renormalised: when the padding scores highest,
        # the real tokens underflow to 0 and 0 / 0 is NaN
        '''
def attention_weights(scores, mask=None):
    weights = torch.softmax(scores, dim=-1)
    if mask is None:
        return weights
    weights = weights * mask
    return weights / weights.sum(dim=-1, keepdim=True)
''',
        # mask=None not handled: ~None raises
        '''
def attention_weights(scores, mask=None):
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
''',
    ],
    "context": [
        # the weights broadcast along the features: an error, or wrong values when S == K
        '''
def context_vector(weights, annotations):
    return (weights.unsqueeze(1) * annotations).sum(dim=1)
''',
        # the batched product without the squeeze: (B, 1, K)
        '''
def context_vector(weights, annotations):
    return torch.bmm(weights.unsqueeze(1), annotations)
''',
        # sums over the features instead of the positions: (B, S)
        '''
def context_vector(weights, annotations):
    return (weights.unsqueeze(-1) * annotations).sum(dim=-1)
''',
    ],
    "decoder_step": [
        # predicts from the old state: [s_{t-1}; c_t] instead of [s_t; c_t]
        STEP_INIT + '''
    def forward(self, y_prev, s_prev, annotations, mask):
        alpha = attention_weights(self.score(s_prev, annotations), mask)
        c = context_vector(alpha, annotations)
        s = self.cell(torch.cat([y_prev, c], dim=-1), s_prev)
        return self.output(torch.cat([s_prev, c], dim=-1)), s, alpha
''',
        # forgets the mask: the padding gets weight
        STEP_INIT + '''
    def forward(self, y_prev, s_prev, annotations, mask):
        alpha = attention_weights(self.score(s_prev, annotations))
        c = context_vector(alpha, annotations)
        s = self.cell(torch.cat([y_prev, c], dim=-1), s_prev)
        return self.output(torch.cat([s, c], dim=-1)), s, alpha
''',
        # Luong's order for the output: after the update it attends again with s_t, and predicts from that context
        STEP_INIT + '''
    def forward(self, y_prev, s_prev, annotations, mask):
        c = context_vector(attention_weights(self.score(s_prev, annotations), mask), annotations)
        s = self.cell(torch.cat([y_prev, c], dim=-1), s_prev)
        alpha = attention_weights(self.score(s, annotations), mask)
        c = context_vector(alpha, annotations)
        return self.output(torch.cat([s, c], dim=-1)), s, alpha
''',
        # returns the scores where the weights are asked for
        STEP_INIT + '''
    def forward(self, y_prev, s_prev, annotations, mask):
        scores = self.score(s_prev, annotations)
        c = context_vector(attention_weights(scores, mask), annotations)
        s = self.cell(torch.cat([y_prev, c], dim=-1), s_prev)
        return self.output(torch.cat([s, c], dim=-1)), s, scores
''',
    ],
}

# answer cell grade_id -> correct versions of that cell, written differently from the reference
ALTERNATIVES = {
    "scores": [
        # einsum, the scale as K ** -0.5, unit vectors from F.normalize, beta reshaped to (B, 1) or (1, 1)
        '''
def dot_score(s, annotations):
    return torch.einsum("bh,bsh->bs", s, annotations)


def scaled_dot_score(s, annotations):
    return torch.einsum("bh,bsh->bs", s, annotations) * annotations.shape[-1] ** -0.5


def cosine_score(s, annotations, beta=1.0):
    beta = torch.as_tensor(beta, dtype=s.dtype, device=s.device).reshape(-1, 1)
    return beta * torch.einsum("bh,bsh->bs", F.normalize(s, dim=-1), F.normalize(annotations, dim=-1))
''',
        # a loop over the source positions; scaled_dot_score built on dot_score
        '''
def dot_score(s, annotations):
    return torch.stack([(s * annotations[:, j]).sum(-1) for j in range(annotations.shape[1])], dim=1)


def scaled_dot_score(s, annotations):
    return dot_score(s, annotations) / annotations.shape[-1] ** 0.5


def cosine_score(s, annotations, beta=1.0):
    if isinstance(beta, torch.Tensor) and beta.dim() == 1:
        beta = beta[:, None]
    columns = []
    for j in range(annotations.shape[1]):
        a = annotations[:, j]
        columns.append((s * a).sum(-1) / torch.sqrt((s * s).sum(-1) * (a * a).sum(-1)))
    return beta * torch.stack(columns, dim=1)
''',
    ],
    "learned_scores": [
        # einsum on the weight matrices; the lecture's concatenated form v_aᵀ tanh(W_a [s; a_j] + b);
        # the location scores from the first S rows of W only
        '''
class GeneralScore(nn.Module):
    def __init__(self, query_size, key_size):
        super().__init__()
        self.W = nn.Linear(key_size, query_size, bias=False)

    def forward(self, s, annotations):
        return torch.einsum("bh,hk,bsk->bs", s, self.W.weight, annotations)


class AdditiveScore(nn.Module):
    def __init__(self, query_size, key_size, attention_size):
        super().__init__()
        self.W = nn.Linear(query_size, attention_size, bias=False)
        self.U = nn.Linear(key_size, attention_size)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def forward(self, s, annotations):
        S = annotations.shape[1]
        pairs = torch.cat([s.unsqueeze(1).expand(-1, S, -1), annotations], dim=-1)  # [s; a_j]: (B, S, H + K)
        W_a = torch.cat([self.W.weight, self.U.weight], dim=1)
        return torch.tanh(F.linear(pairs, W_a, self.U.bias)) @ self.v.weight[0]


class LocationScore(nn.Module):
    def __init__(self, query_size, max_positions):
        super().__init__()
        self.W = nn.Linear(query_size, max_positions)

    def forward(self, s, annotations):
        S = annotations.shape[1]
        return F.linear(s, self.W.weight[:S], self.W.bias[:S])
''',
        # the state projected instead of the keys in the general score ((sᵀ W) a_j); loops over the positions in
        # the additive one; narrow for the location one
        '''
class GeneralScore(nn.Module):
    def __init__(self, query_size, key_size):
        super().__init__()
        self.W = nn.Linear(key_size, query_size, bias=False)

    def forward(self, s, annotations):
        query = s @ self.W.weight  # (B, K)
        return torch.bmm(annotations, query.unsqueeze(2)).squeeze(2)


class AdditiveScore(nn.Module):
    def __init__(self, query_size, key_size, attention_size):
        super().__init__()
        self.W = nn.Linear(query_size, attention_size, bias=False)
        self.U = nn.Linear(key_size, attention_size)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def forward(self, s, annotations):
        projected_state = self.W(s)
        return torch.cat([self.v(torch.tanh(projected_state + self.U(annotations[:, j])))
                          for j in range(annotations.size(1))], dim=1)


class LocationScore(nn.Module):
    def __init__(self, query_size, max_positions):
        super().__init__()
        self.W = nn.Linear(query_size, max_positions)

    def forward(self, s, annotations):
        return self.W(s).narrow(1, 0, annotations.size(1))
''',
    ],
    "weights": [
        # the Annotated Transformer's -1e9 instead of -inf, with torch.where
        '''
def attention_weights(scores, mask=None):
    if mask is not None:
        scores = torch.where(mask, scores, torch.full_like(scores, -1e9))
    return scores.softmax(dim=-1)
''',
        # a softmax by hand: the maximum over the real tokens subtracted, the padding set to 0 with torch.where
        '''
def attention_weights(scores, mask=None):
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    top = scores.masked_fill(~mask, -math.inf).amax(dim=-1, keepdim=True)
    e = torch.where(mask, torch.exp(scores - top), torch.zeros_like(scores))
    return e / e.sum(dim=-1, keepdim=True)
''',
        # the smallest number of the dtype for the padding, and F.softmax
        '''
def attention_weights(scores, mask=None):
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), torch.finfo(scores.dtype).min)
    return F.softmax(scores, dim=1)
''',
    ],
    "context": [
        # einsum
        '''
def context_vector(weights, annotations):
    return torch.einsum("bs,bsk->bk", weights, annotations)
''',
        # a loop over the source positions
        '''
def context_vector(weights, annotations):
    c = torch.zeros_like(annotations[:, 0])
    for j in range(annotations.shape[1]):
        c = c + weights[:, j:j + 1] * annotations[:, j]
    return c
''',
        # the annotations transposed: (B, K, S) @ (B, S, 1)
        '''
def context_vector(weights, annotations):
    return torch.bmm(annotations.transpose(1, 2), weights.unsqueeze(-1)).squeeze(-1)
''',
    ],
    "decoder_step": [
        # the attention written inline (its own masked softmax and weighted sum), the output layer as F.linear
        STEP_INIT + '''
    def forward(self, y_prev, s_prev, annotations, mask):
        scores = self.score(s_prev, annotations).masked_fill(~mask, float("-inf"))
        alpha = scores.softmax(dim=1)
        c = (alpha[:, :, None] * annotations).sum(dim=1)
        s = self.cell(torch.hstack([y_prev, c]), s_prev)
        return F.linear(torch.hstack([s, c]), self.output.weight, self.output.bias), s, alpha
''',
        # the helpers called with keywords, and a tuple built step by step
        STEP_INIT + '''
    def forward(self, y_prev, s_prev, annotations, mask):
        e = self.score.forward(s_prev, annotations)
        alpha = attention_weights(scores=e, mask=mask)
        c = context_vector(weights=alpha, annotations=annotations)
        new_state = self.cell(input=torch.cat((y_prev, c), 1), hx=s_prev)
        logits = self.output(torch.cat((new_state, c), 1))
        return (logits, new_state, alpha)
''',
    ],
}
