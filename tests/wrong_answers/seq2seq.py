"""Plausible wrong answers for 04_seq2seq: each must cost exactly its own test's points."""

# answer cell grade_id -> a wrong version of that cell
WRONG = {
    # no clipping: every candidate n-gram found in some reference counts, however often it repeats
    "bleu": '''
def bleu(candidates, references, max_n=4):
    matches, totals = [0] * max_n, [0] * max_n
    c = r = 0
    for candidate, refs in zip(candidates, references):
        c += len(candidate)
        r += min((len(ref) for ref in refs), key=lambda length: (abs(length - len(candidate)), length))
        for n in range(1, max_n + 1):
            grams = [tuple(candidate[i:i + n]) for i in range(len(candidate) - n + 1)]
            found = set(tuple(ref[i:i + n]) for ref in refs for i in range(len(ref) - n + 1))
            matches[n - 1] += sum(g in found for g in grams)
            totals[n - 1] += len(grams)
    if c == 0 or 0 in matches:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_n
    return 100 * (1.0 if c > r else math.exp(1 - r / c)) * math.exp(log_precision)
''',
    # runs the cell over the padding too: the pads' states are outputs and the last one is h_last
    "encoder": '''
def encoder_forward(embedding, cell, src, pad_id=0):
    x = embedding(src)
    h = x.new_zeros(src.size(0), cell.hidden_size)
    outputs = []
    for s in range(src.size(1)):
        h = cell(x[:, s], h)
        outputs.append(h)
    return torch.stack(outputs, dim=1), h
''',
    # feeds the model its own predictions (free running) instead of the reference's tokens
    "teacher": '''
def teacher_forcing_loss(model, src, tgt, pad_id=0):
    memory, state = model.encode(src)
    src_mask = src != pad_id
    prev, steps = tgt[:, 0], []
    for t in range(tgt.size(1) - 1):
        logits, state = model.decode_step(prev, state, memory, src_mask)
        steps.append(logits)
        prev = logits.argmax(dim=-1)
    logits = torch.stack(steps, dim=1)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt[:, 1:].reshape(-1), ignore_index=pad_id)
''',
    # leaves the <eos> out of the translation
    "greedy": '''
def greedy_decode(model, src, max_len):
    with torch.no_grad():
        src = src[None]
        memory, state = model.encode(src)
        prev = torch.full((1,), BOS, dtype=torch.long, device=src.device)
        out = []
        for _ in range(max_len):
            logits, state = model.decode_step(prev, state, memory, src != PAD)
            prev = logits.argmax(dim=-1)
            if int(prev) == EOS:
                break
            out.append(int(prev))
    return out
''',
}

# graded test cell -> the answer cell it tests
TESTED_BY = {"test_bleu": "bleu", "test_encoder": "encoder", "test_teacher": "teacher", "test_greedy": "greedy"}

# answer cell grade_id -> more wrong versions of that cell, each a different mistake
MORE_WRONG = {
    "bleu": [
        # the mean of the sentences' BLEU scores instead of one score from the corpus's pooled counts
        '''
def bleu(candidates, references, max_n=4):
    def sentence(candidate, refs):
        if not candidate:
            return 0.0
        log_precision = 0.0
        for n in range(1, max_n + 1):
            counts = Counter(tuple(candidate[i:i + n]) for i in range(len(candidate) - n + 1))
            most = Counter()
            for ref in refs:
                most |= Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
            matched = sum(min(k, most[g]) for g, k in counts.items())
            if matched == 0:
                return 0.0
            log_precision += math.log(matched / sum(counts.values())) / max_n
        r = min((len(ref) for ref in refs), key=lambda length: (abs(length - len(candidate)), length))
        c = len(candidate)
        return 100 * (1.0 if c > r else math.exp(1 - r / c)) * math.exp(log_precision)
    scores = [sentence(c, refs) for c, refs in zip(candidates, references)]
    return sum(scores) / len(scores) if scores else 0.0
''',
        # the brevity penalty against the shortest reference, not the closest in length
        '''
def bleu(candidates, references, max_n=4):
    matches, totals = [0] * max_n, [0] * max_n
    c = r = 0
    for candidate, refs in zip(candidates, references):
        c += len(candidate)
        r += min(len(ref) for ref in refs)
        for n in range(1, max_n + 1):
            counts = Counter(tuple(candidate[i:i + n]) for i in range(len(candidate) - n + 1))
            most = Counter()
            for ref in refs:
                most |= Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
            matches[n - 1] += sum(min(k, most[g]) for g, k in counts.items())
            totals[n - 1] += sum(counts.values())
    if c == 0 or 0 in matches:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_n
    return 100 * (1.0 if c > r else math.exp(1 - r / c)) * math.exp(log_precision)
''',
        # the arithmetic mean of the precisions instead of the geometric mean
        '''
def bleu(candidates, references, max_n=4):
    matches, totals = [0] * max_n, [0] * max_n
    c = r = 0
    for candidate, refs in zip(candidates, references):
        c += len(candidate)
        r += min((len(ref) for ref in refs), key=lambda length: (abs(length - len(candidate)), length))
        for n in range(1, max_n + 1):
            counts = Counter(tuple(candidate[i:i + n]) for i in range(len(candidate) - n + 1))
            most = Counter()
            for ref in refs:
                most |= Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
            matches[n - 1] += sum(min(k, most[g]) for g, k in counts.items())
            totals[n - 1] += sum(counts.values())
    if c == 0 or 0 in matches:
        return 0.0
    precision = sum(m / t for m, t in zip(matches, totals)) / max_n
    return 100 * (1.0 if c > r else math.exp(1 - r / c)) * precision
''',
        # a tie between two reference lengths goes to the longer one
        '''
def bleu(candidates, references, max_n=4):
    matches, totals = [0] * max_n, [0] * max_n
    c = r = 0
    for candidate, refs in zip(candidates, references):
        c += len(candidate)
        r += min((len(ref) for ref in refs), key=lambda length: (abs(length - len(candidate)), -length))
        for n in range(1, max_n + 1):
            counts = Counter(tuple(candidate[i:i + n]) for i in range(len(candidate) - n + 1))
            most = Counter()
            for ref in refs:
                most |= Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
            matches[n - 1] += sum(min(k, most[g]) for g, k in counts.items())
            totals[n - 1] += sum(counts.values())
    if c == 0 or 0 in matches:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_n
    return 100 * (1.0 if c > r else math.exp(1 - r / c)) * math.exp(log_precision)
''',
        # clipped by the counts of all the references together (summed) instead of the largest in one
        '''
def bleu(candidates, references, max_n=4):
    matches, totals = [0] * max_n, [0] * max_n
    c = r = 0
    for candidate, refs in zip(candidates, references):
        c += len(candidate)
        r += min((len(ref) for ref in refs), key=lambda length: (abs(length - len(candidate)), length))
        for n in range(1, max_n + 1):
            counts = Counter(tuple(candidate[i:i + n]) for i in range(len(candidate) - n + 1))
            pooled = Counter()
            for ref in refs:
                pooled += Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
            matches[n - 1] += sum(min(k, pooled[g]) for g, k in counts.items())
            totals[n - 1] += sum(counts.values())
    if c == 0 or 0 in matches:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_n
    return 100 * (1.0 if c > r else math.exp(1 - r / c)) * math.exp(log_precision)
''',
    ],
    "encoder": [
        # zeros the outputs at the padding, but lets the state run on through it
        '''
def encoder_forward(embedding, cell, src, pad_id=0):
    x = embedding(src)
    real = (src != pad_id).unsqueeze(-1)
    h = x.new_zeros(src.size(0), cell.hidden_size)
    outputs = []
    for s in range(src.size(1)):
        h = cell(x[:, s], h)
        outputs.append(h * real[:, s])
    return torch.stack(outputs, dim=1), h
''',
        # keeps the state at the padding, but outputs that kept state there instead of zeros
        '''
def encoder_forward(embedding, cell, src, pad_id=0):
    x = embedding(src)
    real = (src != pad_id).unsqueeze(-1)
    h = x.new_zeros(src.size(0), cell.hidden_size)
    outputs = []
    for s in range(src.size(1)):
        h = torch.where(real[:, s], cell(x[:, s], h), h)
        outputs.append(h)
    return torch.stack(outputs, dim=1), h
''',
        # the last column of the outputs as h_last: zeros for every padded row
        '''
def encoder_forward(embedding, cell, src, pad_id=0):
    x = embedding(src)
    real = (src != pad_id).unsqueeze(-1)
    h = x.new_zeros(src.size(0), cell.hidden_size)
    outputs = []
    for s in range(src.size(1)):
        h_new = cell(x[:, s], h)
        outputs.append(torch.where(real[:, s], h_new, torch.zeros_like(h_new)))
        h = torch.where(real[:, s], h_new, h)
    outputs = torch.stack(outputs, dim=1)
    return outputs, outputs[:, -1]
''',
        # the padding id hard-coded as 0, whatever pad_id says
        '''
def encoder_forward(embedding, cell, src, pad_id=0):
    x = embedding(src)
    real = (src != 0).unsqueeze(-1)
    h = x.new_zeros(src.size(0), cell.hidden_size)
    outputs = []
    for s in range(src.size(1)):
        h_new = cell(x[:, s], h)
        outputs.append(torch.where(real[:, s], h_new, torch.zeros_like(h_new)))
        h = torch.where(real[:, s], h_new, h)
    return torch.stack(outputs, dim=1), h
''',
    ],
    "teacher": [
        # the mean of each sentence's mean loss: a short sentence weighs as much as a long one
        '''
def teacher_forcing_loss(model, src, tgt, pad_id=0):
    memory, state = model.encode(src)
    src_mask = src != pad_id
    steps = []
    for t in range(tgt.size(1) - 1):
        logits, state = model.decode_step(tgt[:, t], state, memory, src_mask)
        steps.append(F.cross_entropy(logits, tgt[:, t + 1], ignore_index=pad_id, reduction="none"))
    losses = torch.stack(steps, dim=1)
    real = (tgt[:, 1:] != pad_id).to(losses.dtype)
    return ((losses * real).sum(1) / real.sum(1)).mean()
''',
        # the padding scored too: no ignore_index
        '''
def teacher_forcing_loss(model, src, tgt, pad_id=0):
    memory, state = model.encode(src)
    src_mask = src != pad_id
    steps = []
    for t in range(tgt.size(1) - 1):
        logits, state = model.decode_step(tgt[:, t], state, memory, src_mask)
        steps.append(logits)
    logits = torch.stack(steps, dim=1)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt[:, 1:].reshape(-1))
''',
        # off by one: each step scored on the token it has just read, tgt[:, t]
        '''
def teacher_forcing_loss(model, src, tgt, pad_id=0):
    memory, state = model.encode(src)
    src_mask = src != pad_id
    steps = []
    for t in range(tgt.size(1) - 1):
        logits, state = model.decode_step(tgt[:, t], state, memory, src_mask)
        steps.append(logits)
    logits = torch.stack(steps, dim=1)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt[:, :-1].reshape(-1), ignore_index=pad_id)
''',
        # the decoder started from zeros: the source is encoded, and then forgotten
        '''
def teacher_forcing_loss(model, src, tgt, pad_id=0):
    memory, state = model.encode(src)
    state = torch.zeros_like(state)
    src_mask = src != pad_id
    steps = []
    for t in range(tgt.size(1) - 1):
        logits, state = model.decode_step(tgt[:, t], state, memory, src_mask)
        steps.append(logits)
    logits = torch.stack(steps, dim=1)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt[:, 1:].reshape(-1), ignore_index=pad_id)
''',
    ],
    "greedy": [
        # does not stop at <eos>: always max_len tokens
        '''
def greedy_decode(model, src, max_len):
    with torch.no_grad():
        src = src[None]
        memory, state = model.encode(src)
        prev = torch.full((1,), BOS, dtype=torch.long, device=src.device)
        out = []
        for _ in range(max_len):
            logits, state = model.decode_step(prev, state, memory, src != PAD)
            prev = logits.argmax(dim=-1)
            out.append(int(prev))
    return out
''',
        # feeds <bos> at every step instead of the token just chosen
        '''
def greedy_decode(model, src, max_len):
    with torch.no_grad():
        src = src[None]
        memory, state = model.encode(src)
        bos = torch.full((1,), BOS, dtype=torch.long, device=src.device)
        out = []
        for _ in range(max_len):
            logits, state = model.decode_step(bos, state, memory, src != PAD)
            out.append(int(logits.argmax(dim=-1)))
            if out[-1] == EOS:
                break
    return out
''',
        # one token too many: the loop runs while len(out) <= max_len
        '''
def greedy_decode(model, src, max_len):
    with torch.no_grad():
        src = src[None]
        memory, state = model.encode(src)
        prev = torch.full((1,), BOS, dtype=torch.long, device=src.device)
        out = []
        while len(out) <= max_len:
            logits, state = model.decode_step(prev, state, memory, src != PAD)
            prev = logits.argmax(dim=-1)
            out.append(int(prev))
            if out[-1] == EOS:
                break
    return out
''',
        # the translation starts with the <bos> it was given
        '''
def greedy_decode(model, src, max_len):
    with torch.no_grad():
        src = src[None]
        memory, state = model.encode(src)
        out = [BOS]
        while len(out) < max_len:
            logits, state = model.decode_step(torch.tensor([out[-1]], device=src.device), state, memory, src != PAD)
            out.append(int(logits.argmax(dim=-1)))
            if out[-1] == EOS:
                break
    return out[:max_len]
''',
        # the decoder started from zeros: every source gets the same translation
        '''
def greedy_decode(model, src, max_len):
    with torch.no_grad():
        src = src[None]
        memory, state = model.encode(src)
        state = torch.zeros_like(state)
        prev = torch.full((1,), BOS, dtype=torch.long, device=src.device)
        out = []
        for _ in range(max_len):
            logits, state = model.decode_step(prev, state, memory, src != PAD)
            prev = logits.argmax(dim=-1)
            out.append(int(prev))
            if out[-1] == EOS:
                break
    return out
''',
    ],
}

# answer cell grade_id -> correct versions of that cell, written differently from the reference
ALTERNATIVES = {
    "bleu": [
        # dictionaries counted by hand, the precisions multiplied (no logarithms), the lengths sorted
        '''
def bleu(candidates, references, max_n=4):
    def grams(tokens, n):
        table = {}
        for i in range(len(tokens) - n + 1):
            key = " ".join(tokens[i:i + n])  # the tokens hold no spaces
            table[key] = table.get(key, 0) + 1
        return table

    hits = [0] * (max_n + 1)
    seen = [0] * (max_n + 1)
    hyp_len = ref_len = 0
    for hyp, refs in zip(candidates, references):
        hyp_len += len(hyp)
        ref_len += sorted((abs(len(x) - len(hyp)), len(x)) for x in refs)[0][1]  # closest, then shorter
        for n in range(1, max_n + 1):
            mine = grams(hyp, n)
            best = {}
            for ref in refs:
                for key, count in grams(ref, n).items():
                    best[key] = max(best.get(key, 0), count)
            for key, count in mine.items():
                hits[n] += min(count, best.get(key, 0))
                seen[n] += count
    if hyp_len == 0 or any(hits[n] == 0 for n in range(1, max_n + 1)):
        return 0.0
    product = 1.0
    for n in range(1, max_n + 1):
        product *= hits[n] / seen[n]
    penalty = math.exp(min(0.0, 1 - ref_len / hyp_len))
    return 100 * penalty * product ** (1 / max_n)
''',
        # exact fractions per order, the statistics of each sentence first, then summed with zip
        '''
from fractions import Fraction

def bleu(candidates, references, max_n=4):
    def stats(candidate, refs):
        closest = min(refs, key=lambda ref: (abs(len(ref) - len(candidate)), len(ref)))
        row = [len(candidate), len(closest)]
        for n in range(1, max_n + 1):
            hyp = Counter(zip(*(candidate[i:] for i in range(n))))
            clip = Counter()
            for ref in refs:
                for gram, k in Counter(zip(*(ref[i:] for i in range(n)))).items():
                    clip[gram] = max(clip[gram], k)
            row += [sum(min(k, clip[gram]) for gram, k in hyp.items()), sum(hyp.values())]
        return row

    totals = [sum(column) for column in zip(*(stats(c, refs) for c, refs in zip(candidates, references)))]
    if not totals or totals[0] == 0:
        return 0.0
    c, r, rest = totals[0], totals[1], totals[2:]
    precisions = [Fraction(rest[2 * i], rest[2 * i + 1]) if rest[2 * i + 1] else Fraction(0) for i in range(max_n)]
    if min(precisions) == 0:
        return 0.0
    geometric = math.exp(sum(math.log(p) for p in precisions) / max_n)
    return float(100 * geometric * (1 if c > r else math.exp(1 - r / c)))
''',
    ],
    "encoder": [
        # the mask as 0/1 numbers blending the new state with the old, into a preallocated tensor
        '''
def encoder_forward(embedding, cell, src, pad_id=0):
    B, S = src.shape
    x = embedding(src)
    keep = (src != pad_id).to(x.dtype)[..., None]  # (B, S, 1), 1.0 at real tokens
    h = torch.zeros(B, cell.hidden_size, dtype=x.dtype, device=src.device)
    outputs = torch.zeros(B, S, cell.hidden_size, dtype=x.dtype, device=src.device)
    for s in range(S):
        m = keep[:, s]
        candidate = cell(x[:, s], h)
        h = m * candidate + (1 - m) * h
        outputs[:, s] = m * candidate
    return outputs, h
''',
        # each sentence alone, over its own length, in float64, padded with zeros afterwards
        '''
def encoder_forward(embedding, cell, src, pad_id=0):
    lengths = (src != pad_id).sum(dim=1).tolist()
    rows, lasts = [], []
    for b, n in enumerate(lengths):
        x = embedding(src[b:b + 1, :n])
        h = torch.zeros(1, cell.hidden_size, dtype=x.dtype, device=x.device)
        states = []
        for s in range(n):
            h = cell(x[:, s], h)
            states.append(h[0])
        row = torch.zeros(src.size(1), cell.hidden_size, dtype=torch.float64, device=x.device)
        row[:n] = torch.stack(states).double()
        rows.append(row)
        lasts.append(h[0].double())
    return torch.stack(rows), torch.stack(lasts)
''',
    ],
    "teacher": [
        # per-step sums of the negative log-likelihoods, divided once by the number of real targets
        '''
def teacher_forcing_loss(model, src, tgt, pad_id=0):
    memory, state = model.encode(src)
    total = 0.0
    for t in range(tgt.shape[1] - 1):
        logits, state = model.decode_step(tgt[:, t], state, memory, src != pad_id)
        total = total + F.cross_entropy(logits, tgt[:, t + 1], ignore_index=pad_id, reduction="sum")
    return total / (tgt[:, 1:] != pad_id).sum()
''',
        # log_softmax and gather by hand, masked, in float64
        '''
def teacher_forcing_loss(model, src, tgt, pad_id=0):
    memory, state = model.encode(src)
    mask = src != pad_id
    log_likelihood, count = 0.0, 0
    for t, (read, target) in enumerate(zip(tgt[:, :-1].T, tgt[:, 1:].T)):
        logits, state = model.decode_step(read, state, memory, mask)
        log_p = torch.log_softmax(logits.double(), dim=-1).gather(1, target[:, None])[:, 0]
        real = target != pad_id
        log_likelihood = log_likelihood + torch.where(real, log_p, torch.zeros_like(log_p)).sum()
        count += int(real.sum())
    return -log_likelihood / count
''',
    ],
    "greedy": [
        # a for loop over max_len with topk(1), the tokens kept as tensors and turned into ints at the end
        '''
def greedy_decode(model, src, max_len):
    batch = src.unsqueeze(0)
    memory, state = model.encode(batch)
    token = torch.tensor([BOS], device=src.device)
    tokens = []
    for _ in range(max_len):
        logits, state = model.decode_step(token, state, memory, batch != PAD)
        token = logits.topk(1, dim=-1).indices[:, 0]
        tokens.append(token)
        if token.item() == EOS:
            break
    return [int(t) for t in tokens]
''',
        # Python's max over the logits as a list, in float64
        '''
def greedy_decode(model, src, max_len):
    memory, state = model.encode(src.reshape(1, -1))
    out = []
    previous = BOS
    while len(out) < max_len and (not out or out[-1] != EOS):
        logits, state = model.decode_step(torch.tensor([previous], dtype=torch.long, device=src.device),
                                          state, memory, src.reshape(1, -1) != PAD)
        scores = logits[0].double().tolist()
        previous = max(range(len(scores)), key=scores.__getitem__)
        out.append(previous)
    return out
''',
    ],
}
