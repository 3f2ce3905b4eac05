"""Plausible wrong answers for 06_beam_search: each must cost exactly its own test's points."""

# answer cell grade_id -> a wrong version of that cell
WRONG = {
    # divides by T whatever alpha is: the mean per token, alpha ignored
    "score": '''
def length_normalised_score(log_prob, length, alpha, penalty="average"):
    if penalty == "average":
        return log_prob / length
    if penalty == "gnmt":
        return log_prob / ((5 + length) / 6)
    raise ValueError(f"unknown penalty {penalty!r}")
''',
    # forgets the bos: the first token is never scored, and every prefix lacks its first id
    "log_prob": '''
def sequence_log_prob(step_fn, bos, tokens):
    total = 0.0
    for t in range(1, len(tokens)):
        total += float(step_fn(torch.tensor([tokens[:t]]))[0, tokens[t]])
    return total
''',
    # ranks the candidates by the new token's log-probability alone, forgetting the hypothesis's
    "beam": '''
def beam_search(step_fn, bos, eos, beam_width, max_len, alpha=0.0):
    prefixes = torch.tensor([[bos]])
    scores = torch.zeros(1)
    finished = []
    for _ in range(max_len):
        log_probs = step_fn(prefixes)
        prefixes, scores = prefixes.to(log_probs.device), scores.to(log_probs)
        V = log_probs.size(1)
        k = min(beam_width - len(finished), log_probs.numel())
        _, index = log_probs.flatten().topk(k)
        rows, tokens = index // V, index % V
        best = scores[rows] + log_probs[rows, tokens]
        prefixes = torch.cat([prefixes[rows], tokens[:, None]], dim=1)
        ends = tokens == eos
        finished += [(ids[1:], lp) for ids, lp in zip(prefixes[ends].tolist(), best[ends].tolist())]
        prefixes, scores = prefixes[~ends], best[~ends]
        if len(prefixes) == 0:
            break
    finished += [(ids[1:], lp) for ids, lp in zip(prefixes.tolist(), scores.tolist())]
    ranked = [(ids, float(length_normalised_score(lp, len(ids), alpha))) for ids, lp in finished]
    return sorted(ranked, key=lambda pair: pair[1], reverse=True)
''',
    # the share over every sentence, the right ones included, not over the errors
    "blame": '''
def blame(step_fn, bos, references, hypotheses, alpha=0.0):
    def score(tokens):
        return length_normalised_score(sequence_log_prob(step_fn, bos, tokens), len(tokens), alpha)
    labels = []
    for reference, hypothesis in zip(references, hypotheses):
        if list(hypothesis) == list(reference):
            labels.append("none")
        elif score(reference) > score(hypothesis):
            labels.append("search")
        else:
            labels.append("model")
    errors = len(labels) - labels.count("none")
    return labels, labels.count("search") / len(labels) if errors else float("nan")
''',
}

# graded test cell -> the answer cell it tests
TESTED_BY = {"test_score": "score", "test_log_prob": "log_prob", "test_beam": "beam", "test_blame": "blame"}

_BEAM_HEAD = '''
def beam_search(step_fn, bos, eos, beam_width, max_len, alpha=0.0):
    prefixes = torch.tensor([[bos]])
    scores = torch.zeros(1)
    finished = []
    for _ in range(max_len):
        log_probs = step_fn(prefixes)
        prefixes, scores = prefixes.to(log_probs.device), scores.to(log_probs)
        candidates = (scores[:, None] + log_probs).flatten()
        best, index = candidates.topk(min(beam_width - len(finished), candidates.numel()))
        rows, tokens = index // log_probs.size(1), index % log_probs.size(1)
        prefixes = torch.cat([prefixes[rows], tokens[:, None]], dim=1)
        ends = tokens == eos
        finished += [(ids[1:], lp) for ids, lp in zip(prefixes[ends].tolist(), best[ends].tolist())]
        prefixes, scores = prefixes[~ends], best[~ends]
'''

_BLAME_HEAD = '''
def blame(step_fn, bos, references, hypotheses, alpha=0.0):
    def score(tokens):
        return length_normalised_score(sequence_log_prob(step_fn, bos, tokens), len(tokens), alpha)
    labels = []
'''

# answer cell grade_id -> more wrong versions of that cell, each a different mistake
MORE_WRONG = {
    "score": [
        # multiplies by the penalty instead of dividing
        '''
def length_normalised_score(log_prob, length, alpha, penalty="average"):
    if penalty == "average":
        return log_prob * length ** alpha
    if penalty == "gnmt":
        return log_prob * ((5 + length) / 6) ** alpha
    raise ValueError(f"unknown penalty {penalty!r}")
''',
        # GNMT's penalty without its power alpha
        '''
def length_normalised_score(log_prob, length, alpha, penalty="average"):
    if penalty == "average":
        return log_prob / length ** alpha
    if penalty == "gnmt":
        return log_prob / ((5 + length) / 6)
    raise ValueError(f"unknown penalty {penalty!r}")
''',
        # integer division of the lengths: (5 + T) // 6 is 1 for every T up to 6
        '''
def length_normalised_score(log_prob, length, alpha, penalty="average"):
    if penalty == "average":
        return log_prob / length ** alpha
    if penalty == "gnmt":
        return log_prob / ((5 + length) // 6) ** alpha
    raise ValueError(f"unknown penalty {penalty!r}")
''',
    ],
    "log_prob": [
        # off by one: token t scored by the distribution after it (the prefix includes it)
        '''
def sequence_log_prob(step_fn, bos, tokens):
    ids = [bos] + list(tokens)
    return sum(float(step_fn(torch.tensor([ids[:t + 1]]))[0, ids[t]]) for t in range(1, len(ids)))
''',
        # drops the last token (the <eos>)
        '''
def sequence_log_prob(step_fn, bos, tokens):
    total = 0.0
    for t in range(len(tokens) - 1):
        total += float(step_fn(torch.tensor([[bos, *tokens[:t]]]))[0, tokens[t]])
    return total
''',
        # sums the probabilities, then takes the log of the sum
        '''
def sequence_log_prob(step_fn, bos, tokens):
    if not tokens:
        return 0.0
    ids = [bos] + list(tokens)
    total = sum(float(step_fn(torch.tensor([ids[:t]]))[0, ids[t]].exp()) for t in range(1, len(ids)))
    return math.log(total)
''',
    ],
    "beam": [
        # the beam does not narrow: B live hypotheses at every step (finished ones set aside as they
        # come), until B have finished; the B best at the end
        '''
def beam_search(step_fn, bos, eos, beam_width, max_len, alpha=0.0):
    beam, finished = [([bos], 0.0)], []
    for _ in range(max_len):
        candidates = []
        for ids, lp in beam:
            row = step_fn(torch.tensor([ids]))[0].tolist()
            candidates += [(lp + p, ids + [v]) for v, p in enumerate(row)]
        candidates.sort(key=lambda c: -c[0])
        beam = []
        for lp, ids in candidates:
            if ids[-1] == eos:
                finished.append((ids, lp))
            else:
                beam.append((ids, lp))
            if len(beam) == beam_width:
                break
        if len(finished) >= beam_width or not beam:
            break
    finished += beam
    ranked = [(ids[1:], float(length_normalised_score(lp, len(ids) - 1, alpha))) for ids, lp in finished]
    return sorted(ranked, key=lambda pair: pair[1], reverse=True)[:beam_width]
''',
        # ranks the finished hypotheses by their raw log-probability: alpha only in the scores shown
        _BEAM_HEAD + '''        if len(prefixes) == 0:
            break
    finished += [(ids[1:], lp) for ids, lp in zip(prefixes.tolist(), scores.tolist())]
    finished.sort(key=lambda pair: pair[1], reverse=True)
    return [(ids, float(length_normalised_score(lp, len(ids), alpha))) for ids, lp in finished]
''',
        # stops as soon as one hypothesis has finished (the live ones returned truncated)
        _BEAM_HEAD + '''        if len(prefixes) == 0 or ends.any():
            break
    finished += [(ids[1:], lp) for ids, lp in zip(prefixes.tolist(), scores.tolist())]
    ranked = [(ids, float(length_normalised_score(lp, len(ids), alpha))) for ids, lp in finished]
    return sorted(ranked, key=lambda pair: pair[1], reverse=True)
''',
        # drops the hypotheses still live at max_len instead of returning them truncated
        _BEAM_HEAD + '''        if len(prefixes) == 0:
            break
    ranked = [(ids, float(length_normalised_score(lp, len(ids), alpha))) for ids, lp in finished]
    return sorted(ranked, key=lambda pair: pair[1], reverse=True)
''',
    ],
    "blame": [
        # ignores alpha: compares the raw log-probabilities
        '''
def blame(step_fn, bos, references, hypotheses, alpha=0.0):
    labels = []
    for reference, hypothesis in zip(references, hypotheses):
        if list(hypothesis) == list(reference):
            labels.append("none")
        elif sequence_log_prob(step_fn, bos, reference) > sequence_log_prob(step_fn, bos, hypothesis):
            labels.append("search")
        else:
            labels.append("model")
    errors = len(labels) - labels.count("none")
    return labels, labels.count("search") / errors if errors else float("nan")
''',
        # the comparison inverted: blames the search when the model prefers the hypothesis
        '''
def blame(step_fn, bos, references, hypotheses, alpha=0.0):
    def score(tokens):
        return length_normalised_score(sequence_log_prob(step_fn, bos, tokens), len(tokens), alpha)
    labels = []
    for reference, hypothesis in zip(references, hypotheses):
        if list(hypothesis) == list(reference):
            labels.append("none")
        elif score(reference) < score(hypothesis):
            labels.append("search")
        else:
            labels.append("model")
    errors = len(labels) - labels.count("none")
    return labels, labels.count("search") / errors if errors else float("nan")
''',
        # a tie counted as the search's fault
        _BLAME_HEAD + '''    for reference, hypothesis in zip(references, hypotheses):
        if list(hypothesis) == list(reference):
            labels.append("none")
        elif score(reference) >= score(hypothesis):
            labels.append("search")
        else:
            labels.append("model")
    errors = len(labels) - labels.count("none")
    return labels, labels.count("search") / errors if errors else float("nan")
''',
    ],
}

# answer cell grade_id -> correct versions written differently
ALTERNATIVES = {
    "score": [
        # one formula for both penalties, through logarithms, with math for numbers and torch for tensors
        '''
def length_normalised_score(log_prob, length, alpha, penalty="average"):
    offsets = {"average": (0, 1), "gnmt": (5, 6)}
    if penalty not in offsets:
        raise ValueError(f"penalty must be 'average' or 'gnmt', not {penalty!r}")
    shift, scale = offsets[penalty]
    if torch.is_tensor(log_prob) or torch.is_tensor(length):
        length = torch.as_tensor(length, device=log_prob.device).to(log_prob.dtype)
        return log_prob * torch.exp(-alpha * torch.log((shift + length) / scale))
    return log_prob * math.exp(-alpha * math.log((shift + length) / scale))
''',
    ],
    "log_prob": [
        # recursive: the prefix's log P plus the last token's
        '''
def sequence_log_prob(step_fn, bos, tokens):
    if len(tokens) == 0:
        return 0.0
    head = sequence_log_prob(step_fn, bos, tokens[:-1])
    return head + float(step_fn(torch.tensor([[bos] + list(tokens[:-1])]))[0, tokens[-1]])
''',
        # the prefix grown as a tensor on the model's device; a 0-d tensor returned
        '''
def sequence_log_prob(step_fn, bos, tokens):
    prefix = torch.tensor([[bos]])
    terms = []
    for token in tokens:
        log_probs = step_fn(prefix)
        prefix = prefix.to(log_probs.device)
        terms.append(log_probs[0, token])
        prefix = torch.cat([prefix, torch.tensor([[token]], device=prefix.device)], dim=1)
    return torch.stack(terms).sum() if terms else torch.tensor(0.0)
''',
    ],
    "beam": [
        # one hypothesis at a time (N = 1), Python lists and floats, sorted in float64
        '''
def beam_search(step_fn, bos, eos, beam_width, max_len, alpha=0.0):
    beam, finished = [([bos], 0.0)], []
    for _ in range(max_len):
        candidates = []
        for ids, lp in beam:
            row = step_fn(torch.tensor([ids]))[0].double().tolist()
            candidates += [(lp + p, ids + [v]) for v, p in enumerate(row)]
        candidates.sort(key=lambda c: c[0], reverse=True)
        kept = candidates[:beam_width - len(finished)]
        beam = [(ids, lp) for lp, ids in kept if ids[-1] != eos]
        finished += [(ids, lp) for lp, ids in kept if ids[-1] == eos]
        if not beam:
            break
    finished += beam
    ranked = [(ids[1:], length_normalised_score(lp, len(ids) - 1, alpha)) for ids, lp in finished]
    return sorted(ranked, key=lambda pair: pair[1], reverse=True)
''',
        # each hypothesis's own top k first, then the k best of their union; tensor scores returned
        '''
def beam_search(step_fn, bos, eos, beam_width, max_len, alpha=0.0):
    live = [[bos]]
    live_scores = None
    done = []
    for _ in range(max_len):
        k = beam_width - len(done)
        log_probs = step_fn(torch.tensor(live))
        if live_scores is None:
            live_scores = torch.zeros(len(live), dtype=log_probs.dtype, device=log_probs.device)
        top = (live_scores[:, None] + log_probs).topk(min(k, log_probs.size(1)), dim=1)
        pool = [(top.values[i, j], live[i] + [int(top.indices[i, j])])
                for i in range(len(live)) for j in range(top.values.size(1))]
        pool.sort(key=lambda c: float(c[0]), reverse=True)
        live, kept_scores = [], []
        for score, ids in pool[:k]:
            if ids[-1] == eos:
                done.append((ids[1:], score))
            else:
                live.append(ids)
                kept_scores.append(score)
        if not live:
            break
        live_scores = torch.stack(kept_scores)
    if live:  # still live at max_len: truncated
        done += [(ids[1:], s) for ids, s in zip(live, live_scores)]
    return sorted([(ids, length_normalised_score(s, len(ids), alpha)) for ids, s in done],
                  key=lambda pair: float(pair[1]), reverse=True)
''',
    ],
    "blame": [
        # scores first, then the labels and the share from a Counter
        '''
def blame(step_fn, bos, references, hypotheses, alpha=0.0):
    from collections import Counter

    def score(y):
        return float(length_normalised_score(sequence_log_prob(step_fn, bos, y), len(y), alpha))

    labels = ["none" if list(h) == list(r) else ("search" if score(r) > score(h) else "model")
              for r, h in zip(references, hypotheses)]
    counts = Counter(labels)
    errors = counts["search"] + counts["model"]
    return labels, (counts["search"] / errors if errors else math.nan)
''',
    ],
}
