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
