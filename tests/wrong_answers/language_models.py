"""Plausible wrong answers for 01_language_models: each must cost exactly its own test's points."""

# answer cell grade_id -> a wrong version of that cell
WRONG = {
    # off by one: the window stops before the last n-gram
    "count_ngrams": '''
def count_ngrams(tokens, n):
    counts = {}
    for i in range(len(tokens) - n):
        gram = tuple(tokens[i:i + n])
        counts[gram] = counts.get(gram, 0) + 1
    return counts
''',
    # adds k once to the denominator instead of k for each of the V tokens: not a distribution
    "ngram_probability": '''
def ngram_probability(counts, context, token, vocab_size, k=0.0):
    context = tuple(context)
    total = sum(c for gram, c in counts.items() if gram[:-1] == context)
    if total == 0:
        return 1.0 / vocab_size
    return (counts.get(context + (token,), 0) + k) / (total + k)
''',
    # an unseen context contributes 0 instead of falling back to the order below
    "interpolated_probability": '''
def interpolated_probability(counts_by_order, context, token, lambdas, vocab_size):
    context = tuple(context)
    mixture = lambdas[0] / vocab_size
    for j in range(1, len(lambdas)):
        h = context[len(context) - (j - 1):] if j > 1 else ()
        counts = counts_by_order[j - 1]
        total = sum(c for gram, c in counts.items() if gram[:-1] == h)
        if total > 0 and len(h) == j - 1:
            mixture += lambdas[j] * counts.get(h + (token,), 0) / total
    return mixture
''',
    # skips the first n - 1 tokens, those without a full context
    "perplexity": '''
def perplexity(tokens, counts_by_order, lambdas, vocab_size):
    n = len(lambdas) - 1
    scored = range(min(n - 1, len(tokens) - 1), len(tokens))
    nll = 0.0
    for i in scored:
        context = tuple(tokens[i - (n - 1):i]) if n > 1 else ()
        nll -= math.log(interpolated_probability(counts_by_order, context, tokens[i], lambdas, vocab_size))
    return math.exp(nll / len(scored))
''',
    # ">=" instead of ">": draws tokens of probability 0 and the wrong token at segment boundaries
    "sample_next_token": '''
def sample_next_token(probs, u):
    cumulative = 0.0
    for i, p in enumerate(probs):
        cumulative += float(p)
        if cumulative >= u:
            return i
    return len(probs) - 1
''',
}

# graded test cell -> the answer cell it tests
TESTED_BY = {
    "test_count_ngrams": "count_ngrams",
    "test_ngram_probability": "ngram_probability",
    "test_interpolated_probability": "interpolated_probability",
    "test_perplexity": "perplexity",
    "test_sample_next_token": "sample_next_token",
}
