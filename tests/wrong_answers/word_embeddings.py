"""Plausible wrong answers for 02_word_embeddings: each must cost exactly its own test's points."""

# answer cell grade_id -> a wrong version of that cell
WRONG = {
    # normalises the columns (dim=0) instead of the rows
    "cosine": '''
def cosine_similarity(A, B):
    A_unit = A / A.norm(dim=0, keepdim=True).clamp_min(1e-8)
    B_unit = B / B.norm(dim=0, keepdim=True).clamp_min(1e-8)
    return A_unit @ B_unit.T
''',
    # ignores alpha: the context distribution is never smoothed
    "ppmi": '''
def ppmi(counts, alpha=1.0):
    total = counts.sum()
    p_wc = counts / total
    p_w = counts.sum(dim=1, keepdim=True) / total
    p_c = counts.sum(dim=0, keepdim=True) / total
    pmi = torch.log(p_wc / (p_w * p_c))
    return torch.where(counts > 0, pmi.clamp_min(0), torch.zeros_like(pmi))
''',
    # takes the contexts nearest first (i-1, i+1, i-2, i+2, ...), not left to right
    "pairs": '''
def skipgram_pairs(tokens, window):
    pairs = []
    for i, center in enumerate(tokens):
        for distance in range(1, window + 1):
            for j in (i - distance, i + distance):
                if 0 <= j < len(tokens):
                    pairs.append((center, tokens[j]))
    return pairs
''',
    # forgets the minus sign in log σ(-u_k·v): rewards the negatives instead of penalising them
    "loss": '''
def negative_sampling_loss(center, context, negatives):
    positive = F.logsigmoid((context * center).sum(-1))
    negative = F.logsigmoid((negatives * center[:, None, :]).sum(-1)).sum(-1)
    return -(positive + negative).mean()
''',
    # forgets to leave the query word out of its own neighbours
    "similar": '''
def most_similar(word, embeddings, words, k=5):
    i = words.index(word)
    sims = cosine_similarity(embeddings[i:i + 1], embeddings)[0]
    order = torch.sort(sims, descending=True, stable=True).indices[:k]
    return sims[order], [words[j] for j in order.tolist()]
''',
}

# graded test cell -> the answer cell it tests
TESTED_BY = {"test_cosine": "cosine", "test_ppmi": "ppmi", "test_pairs": "pairs",
             "test_loss": "loss", "test_similar": "similar"}

# answer cell grade_id -> more wrong versions of that cell, each a different mistake
MORE_WRONG = {
    "cosine": [
        # divides by the norms without clamping them: a zero vector gives 0/0 = NaN
        '''
def cosine_similarity(A, B):
    A_unit = A / A.norm(dim=-1, keepdim=True)
    B_unit = B / B.norm(dim=-1, keepdim=True)
    return A_unit @ B_unit.T
''',
        # divides by the norm of the whole matrix (no dim): every row is scaled alike, not made unit length
        '''
def cosine_similarity(A, B):
    A_unit = A / A.norm().clamp_min(1e-8)
    B_unit = B / B.norm().clamp_min(1e-8)
    return A_unit @ B_unit.T
''',
        # normalises the rows of A but forgets to normalise B
        '''
def cosine_similarity(A, B):
    A_unit = A / A.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    return A_unit @ B.T
''',
    ],
    "ppmi": [
        # log base 2 instead of the natural logarithm
        '''
def ppmi(counts, alpha=1.0):
    total = counts.sum()
    p_wc = counts / total
    p_w = counts.sum(dim=1, keepdim=True) / total
    c_alpha = counts.sum(dim=0, keepdim=True) ** alpha
    p_c = c_alpha / c_alpha.sum()
    pmi = torch.log2(p_wc / (p_w * p_c))
    return torch.where(counts > 0, pmi.clamp_min(0), torch.zeros_like(pmi))
''',
        # clamps without masking the zero counts: a zero row or column gives 0/0 = NaN, which clamp keeps
        '''
def ppmi(counts, alpha=1.0):
    total = counts.sum()
    p_wc = counts / total
    p_w = counts.sum(dim=1, keepdim=True) / total
    c_alpha = counts.sum(dim=0, keepdim=True) ** alpha
    p_c = c_alpha / c_alpha.sum()
    return torch.log(p_wc / (p_w * p_c)).clamp_min(0)
''',
        # smooths the word distribution (rows, dim=1) with alpha instead of the context distribution
        '''
def ppmi(counts, alpha=1.0):
    total = counts.sum()
    p_wc = counts / total
    w_alpha = counts.sum(dim=1, keepdim=True) ** alpha
    p_w = w_alpha / w_alpha.sum()
    p_c = counts.sum(dim=0, keepdim=True) / total
    pmi = torch.log(p_wc / (p_w * p_c))
    return torch.where(counts > 0, pmi.clamp_min(0), torch.zeros_like(pmi))
''',
    ],
    "pairs": [
        # range(i - window, i + window): off by one, the rightmost context is never reached
        '''
def skipgram_pairs(tokens, window):
    pairs = []
    for i, center in enumerate(tokens):
        for j in range(max(0, i - window), min(len(tokens), i + window)):
            if j != i:
                pairs.append((center, tokens[j]))
    return pairs
''',
        # skips the center's word rather than its position: a repeated word never pairs with its copy
        '''
def skipgram_pairs(tokens, window):
    pairs = []
    for i, center in enumerate(tokens):
        for j in range(max(0, i - window), min(len(tokens), i + window + 1)):
            if tokens[j] != center:
                pairs.append((center, tokens[j]))
    return pairs
''',
        # forgets to clip at the start: negative positions wrap around to the end of the sentence
        '''
def skipgram_pairs(tokens, window):
    pairs = []
    for i, center in enumerate(tokens):
        for j in range(i - window, i + window + 1):
            if j != i and j < len(tokens):
                pairs.append((center, tokens[j]))
    return pairs
''',
    ],
    "loss": [
        # log(sigmoid(x)) instead of logsigmoid: sigmoid underflows to 0 and the loss becomes inf
        '''
def negative_sampling_loss(center, context, negatives):
    positive = torch.log(torch.sigmoid((context * center).sum(-1)))
    negative = torch.log(torch.sigmoid(-(negatives * center[:, None, :]).sum(-1))).sum(-1)
    return -(positive + negative).mean()
''',
        # sums over the batch instead of taking the mean
        '''
def negative_sampling_loss(center, context, negatives):
    positive = F.logsigmoid((context * center).sum(-1))
    negative = F.logsigmoid(-(negatives * center[:, None, :]).sum(-1)).sum(-1)
    return -(positive + negative).sum()
''',
        # averages over the K negatives instead of summing them
        '''
def negative_sampling_loss(center, context, negatives):
    positive = F.logsigmoid((context * center).sum(-1))
    negative = F.logsigmoid(-(negatives * center[:, None, :]).sum(-1)).mean(-1)
    return -(positive + negative).mean()
''',
    ],
    "similar": [
        # an unstable sort: long runs of tied similarities come out in no particular order
        '''
def most_similar(word, embeddings, words, k=5):
    i = words.index(word)
    sims = cosine_similarity(embeddings[i:i + 1], embeddings)[0]
    order = torch.sort(sims, descending=True).indices
    order = order[order != i][:k]
    return sims[order], [words[j] for j in order.tolist()]
''',
        # torch.topk(k + 1) to make room for the word itself: fails when k >= V, and does not order ties
        '''
def most_similar(word, embeddings, words, k=5):
    i = words.index(word)
    sims = cosine_similarity(embeddings[i:i + 1], embeddings)[0]
    order = torch.topk(sims, k + 1).indices
    order = order[order != i][:k]
    return sims[order], [words[j] for j in order.tolist()]
''',
        # a wrong default: k=10 instead of k=5
        '''
def most_similar(word, embeddings, words, k=10):
    i = words.index(word)
    sims = cosine_similarity(embeddings[i:i + 1], embeddings)[0]
    order = torch.sort(sims, descending=True, stable=True).indices
    order = order[order != i][:k]
    return sims[order], [words[j] for j in order.tolist()]
''',
    ],
}

# answer cell grade_id -> correct versions of that cell, written differently from the reference
ALTERNATIVES = {
    "cosine": [
        # all the dot products first, then divided by the outer product of the clamped norms
        '''
def cosine_similarity(A, B):
    a = torch.linalg.vector_norm(A, dim=1).clamp_min(1e-8)
    b = torch.linalg.vector_norm(B, dim=1).clamp_min(1e-8)
    return (A @ B.T) / (a[:, None] * b[None, :])
''',
        # F.normalize with eps=1e-8 (x / max(‖x‖, eps)) and einsum
        '''
def cosine_similarity(A, B):
    return torch.einsum("nd,md->nm", F.normalize(A, dim=-1, eps=1e-8), F.normalize(B, dim=-1, eps=1e-8))
''',
    ],
    "ppmi": [
        # in log space: P(w, c) / P(w) = #(w, c) / #(w), so PMI = log #(w, c) - log #(w) - log P_alpha(c);
        # zeroed with masked_fill
        '''
def ppmi(counts, alpha=1.0):
    row = counts.sum(dim=1, keepdim=True)
    col = counts.sum(dim=0, keepdim=True)
    log_p_c = alpha * torch.log(col) - torch.log((col ** alpha).sum())
    pmi = torch.log(counts) - torch.log(row) - log_p_c
    return torch.relu(pmi).masked_fill(counts == 0, 0.0)
''',
        # computed in float64 and returned in the dtype of the counts
        '''
def ppmi(counts, alpha=1.0):
    c = counts.double()
    joint = c / c.sum()
    word = joint.sum(1, keepdim=True)
    context = c.sum(0, keepdim=True).pow(alpha)
    context = context / context.sum()
    ratio = joint / (word * context)
    out = torch.zeros_like(c)
    seen = c > 0
    out[seen] = torch.log(ratio[seen]).clamp(min=0)
    return out.to(counts.dtype)
''',
    ],
    "pairs": [
        # brute force over every pair of positions, in one list comprehension
        '''
def skipgram_pairs(tokens, window):
    n = len(tokens)
    return [(tokens[i], tokens[j]) for i in range(n) for j in range(n) if 0 < abs(i - j) <= window]
''',
        # slices: the contexts on the left, then those on the right
        '''
def skipgram_pairs(tokens, window):
    pairs = []
    for i in range(len(tokens)):
        left = tokens[max(0, i - window):i]
        right = tokens[i + 1:i + 1 + window]
        pairs.extend((tokens[i], c) for c in list(left) + list(right))
    return pairs
''',
    ],
    "loss": [
        # bmm for the negatives' dot products and softplus: -log σ(x) = softplus(-x)
        '''
def negative_sampling_loss(center, context, negatives):
    pos_score = (center * context).sum(dim=1)
    neg_score = torch.bmm(negatives, center.unsqueeze(2)).squeeze(2)
    per_pair = F.softplus(-pos_score) + F.softplus(neg_score).sum(dim=1)
    return per_pair.mean()
''',
        # einsum and logsigmoid, the positive and negative terms averaged separately
        '''
def negative_sampling_loss(center, context, negatives):
    positive = torch.einsum("bd,bd->b", center, context)
    negative = torch.einsum("bkd,bd->bk", negatives, center)
    return -F.logsigmoid(positive).mean() - F.logsigmoid(-negative).sum(dim=1).mean()
''',
    ],
    "similar": [
        # the word's own similarity set to -inf, a stable sort, then the first min(k, V - 1)
        '''
def most_similar(word, embeddings, words, k=5):
    i = words.index(word)
    sims = cosine_similarity(embeddings[i].unsqueeze(0), embeddings).squeeze(0)
    masked = sims.clone()
    masked[i] = float("-inf")
    order = masked.sort(descending=True, stable=True).indices[:min(k, len(words) - 1)]
    return sims[order], [words[j] for j in order.tolist()]
''',
        # Python's sorted (stable) on the similarities as floats, indices back into a tensor
        '''
def most_similar(word, embeddings, words, k=5):
    i = words.index(word)
    sims = cosine_similarity(embeddings[i:i + 1], embeddings)[0]
    values = sims.tolist()
    ranked = sorted((j for j in range(len(words)) if j != i), key=lambda j: -values[j])[:k]
    index = torch.tensor(ranked, dtype=torch.long, device=embeddings.device)
    return sims[index], [words[j] for j in ranked]
''',
    ],
}
