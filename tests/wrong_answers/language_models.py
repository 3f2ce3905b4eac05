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

# answer cell grade_id -> more wrong versions of that cell, each a different mistake
MORE_WRONG = {
    "count_ngrams": [
        # off by one the other way: range(len - n + 2) also counts the short (n - 1)-token tail at the end
        '''
def count_ngrams(tokens, n):
    counts = {}
    for i in range(len(tokens) - n + 2):
        gram = tuple(tokens[i:i + n])
        counts[gram] = counts.get(gram, 0) + 1
    return counts
''',
        # windows that do not overlap: steps by n instead of by 1
        '''
def count_ngrams(tokens, n):
    counts = {}
    for i in range(0, len(tokens) - n + 1, n):
        gram = tuple(tokens[i:i + n])
        counts[gram] = counts.get(gram, 0) + 1
    return counts
''',
        # written for bigrams: zip(tokens, tokens[1:]) whatever n is
        '''
def count_ngrams(tokens, n):
    return dict(Counter(zip(tokens, tokens[1:])))
''',
    ],
    "ngram_probability": [
        # c(h) is the total of all the n-grams, not only those that start with the context
        '''
def ngram_probability(counts, context, token, vocab_size, k=0.0):
    context = tuple(context)
    total = sum(counts.values())
    if sum(c for gram, c in counts.items() if gram[:-1] == context) == 0:
        return 1.0 / vocab_size
    return (counts.get(context + (token,), 0) + k) / (total + k * vocab_size)
''',
        # no special case for an unseen context: fine for k > 0, ZeroDivisionError for k = 0
        '''
def ngram_probability(counts, context, token, vocab_size, k=0.0):
    context = tuple(context)
    total = sum(c for gram, c in counts.items() if gram[:-1] == context)
    return (counts.get(context + (token,), 0) + k) / (total + k * vocab_size)
''',
        # an unseen context gets probability 0 instead of 1 / V
        '''
def ngram_probability(counts, context, token, vocab_size, k=0.0):
    context = tuple(context)
    total = sum(c for gram, c in counts.items() if gram[:-1] == context)
    if total == 0:
        return 0.0
    return (counts.get(context + (token,), 0) + k) / (total + k * vocab_size)
''',
    ],
    "interpolated_probability": [
        # an undefined order falls back to the uniform 1 / V instead of the order below it
        '''
def interpolated_probability(counts_by_order, context, token, lambdas, vocab_size):
    context = tuple(context)
    mixture = lambdas[0] / vocab_size
    for j in range(1, len(lambdas)):
        p = 1.0 / vocab_size
        if j - 1 <= len(context):
            h = context[len(context) - (j - 1):]
            counts = counts_by_order[j - 1]
            total = sum(c for gram, c in counts.items() if gram[:-1] == h)
            if total > 0:
                p = counts.get(h + (token,), 0) / total
        mixture += lambdas[j] * p
    return mixture
''',
        # takes the first j - 1 tokens of the context instead of the last j - 1
        '''
def interpolated_probability(counts_by_order, context, token, lambdas, vocab_size):
    context = tuple(context)
    p = 1.0 / vocab_size
    mixture = lambdas[0] * p
    for j in range(1, len(lambdas)):
        if j - 1 <= len(context):
            h = context[:j - 1]
            counts = counts_by_order[j - 1]
            total = sum(c for gram, c in counts.items() if gram[:-1] == h)
            if total > 0:
                p = counts.get(h + (token,), 0) / total
        mixture += lambdas[j] * p
    return mixture
''',
        # off by one: the order-j context is the last j tokens instead of the last j - 1
        '''
def interpolated_probability(counts_by_order, context, token, lambdas, vocab_size):
    context = tuple(context)
    p = 1.0 / vocab_size
    mixture = lambdas[0] * p
    for j in range(1, len(lambdas)):
        if j <= len(context):
            h = context[len(context) - j:]
            counts = counts_by_order[j - 1]
            total = sum(c for gram, c in counts.items() if gram[:-1] == h)
            if total > 0:
                p = counts.get(h + (token,), 0) / total
        mixture += lambdas[j] * p
    return mixture
''',
    ],
    "perplexity": [
        # log base 10 for the likelihood, but e for the perplexity
        '''
def perplexity(tokens, counts_by_order, lambdas, vocab_size):
    n = len(lambdas) - 1
    nll = 0.0
    for i, token in enumerate(tokens):
        context = tuple(tokens[max(0, i - (n - 1)):i])
        nll -= math.log10(interpolated_probability(counts_by_order, context, token, lambdas, vocab_size))
    return math.exp(nll / len(tokens))
''',
        # the total negative log-likelihood instead of its mean over the tokens
        '''
def perplexity(tokens, counts_by_order, lambdas, vocab_size):
    n = len(lambdas) - 1
    nll = 0.0
    for i, token in enumerate(tokens):
        context = tuple(tokens[max(0, i - (n - 1)):i])
        nll -= math.log(interpolated_probability(counts_by_order, context, token, lambdas, vocab_size))
    return math.exp(nll)
''',
        # divides by N - 1 (the number of transitions) instead of N, the number of tokens scored
        '''
def perplexity(tokens, counts_by_order, lambdas, vocab_size):
    n = len(lambdas) - 1
    nll = 0.0
    for i, token in enumerate(tokens):
        context = tuple(tokens[max(0, i - (n - 1)):i])
        nll -= math.log(interpolated_probability(counts_by_order, context, token, lambdas, vocab_size))
    return math.exp(nll / (len(tokens) - 1))
''',
    ],
    "sample_next_token": [
        # off by one in the prefix: sum(probs[:i]) leaves out p_i, so the answer is one index too far
        '''
def sample_next_token(probs, u):
    for i in range(len(probs)):
        if sum(float(p) for p in probs[:i]) > u:
            return i
    return len(probs) - 1
''',
        # when rounding leaves u unexceeded, returns the last index even if its probability is 0
        '''
def sample_next_token(probs, u):
    cumulative = 0.0
    for i, p in enumerate(probs):
        cumulative += float(p)
        if cumulative > u:
            return i
    return len(probs) - 1
''',
        # when rounding leaves u unexceeded, returns the most probable token instead of the last non-zero one
        '''
def sample_next_token(probs, u):
    cumulative = 0.0
    for i, p in enumerate(probs):
        cumulative += float(p)
        if cumulative > u:
            return i
    return max(range(len(probs)), key=lambda i: float(probs[i]))
''',
    ],
}

# answer cell grade_id -> correct versions of that cell, written differently from the reference
ALTERNATIVES = {
    "count_ngrams": [
        # a Counter over n shifted copies of the sequence zipped together
        '''
def count_ngrams(tokens, n):
    return Counter(zip(*(tokens[i:] for i in range(n))))
''',
        # a Counter fed by a generator of tuple slices
        '''
def count_ngrams(tokens, n):
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
''',
    ],
    "ngram_probability": [
        # an explicit loop for c(h) (comparing the first n - 1 tokens), `in` instead of .get
        '''
def ngram_probability(counts, context, token, vocab_size, k=0.0):
    h = tuple(context)
    total = 0
    for gram, c in counts.items():
        if gram[:len(h)] == h:
            total += c
    if not total:
        return 1 / vocab_size
    gram = h + (token,)
    seen = counts[gram] if gram in counts else 0
    return (seen + k) / (total + k * vocab_size)
''',
    ],
    "interpolated_probability": [
        # the estimates of every order in a list (each defaulting to the one before), then a weighted sum
        '''
def interpolated_probability(counts_by_order, context, token, lambdas, vocab_size):
    context = tuple(context)
    estimates = [1 / vocab_size]
    for j in range(1, len(lambdas)):
        estimate = estimates[-1]
        if len(context) >= j - 1:
            h = context[-(j - 1):] if j > 1 else ()
            totals = Counter()
            for gram, c in counts_by_order[j - 1].items():
                totals[gram[:-1]] += c
            if totals[h] > 0:
                estimate = counts_by_order[j - 1].get(h + (token,), 0) / totals[h]
        estimates.append(estimate)
    return sum(weight * p for weight, p in zip(lambdas, estimates))
''',
    ],
    "perplexity": [
        # base-2 logarithms and 2 ** (mean bits): the same number, since 2 ** log2(x) = e ** ln(x)
        '''
def perplexity(tokens, counts_by_order, lambdas, vocab_size):
    n = len(lambdas) - 1
    bits = []
    for i in range(len(tokens)):
        start = max(0, i - n + 1)
        p = interpolated_probability(counts_by_order, tuple(tokens[start:i]), tokens[i], lambdas, vocab_size)
        bits.append(-math.log2(p))
    return 2 ** (sum(bits) / len(bits))
''',
        # the log-probabilities in a list comprehension, summed with math.fsum
        '''
def perplexity(tokens, counts_by_order, lambdas, vocab_size):
    n = len(lambdas) - 1
    logs = [math.log(interpolated_probability(counts_by_order, tuple(tokens[i - min(i, n - 1):i]), tokens[i],
                                              lambdas, vocab_size))
            for i in range(len(tokens))]
    return math.exp(-math.fsum(logs) / len(logs))
''',
    ],
    "sample_next_token": [
        # a while loop over the indices; the fall-back walks back from the end past the zeros
        '''
def sample_next_token(probs, u):
    total = 0.0
    i = 0
    while i < len(probs):
        total = total + float(probs[i])
        if total > u:
            return i
        i += 1
    last = len(probs) - 1
    while float(probs[last]) == 0:
        last -= 1
    return last
''',
        # torch.searchsorted(right=True) on float64 cumulative sums: the first index with F_i > u
        '''
def sample_next_token(probs, u):
    p = torch.as_tensor(probs, dtype=torch.float64).cpu()
    cdf = p.cumsum(0)
    i = int(torch.searchsorted(cdf, torch.tensor([u], dtype=torch.float64), right=True)[0])
    if i < len(p):
        return i
    return int(p.nonzero()[-1, 0])
''',
    ],
}
