"""Plausible wrong answers for 03_rnns: each must cost exactly its own test's points."""

# answer cell grade_id -> a wrong version of that cell
WRONG = {
    # forgets the tanh: a linear recurrence
    "rnn": '''
def rnn_forward(x, W_ih, W_hh, b_ih, b_hh, h0=None):
    B, T, _ = x.shape
    h = torch.zeros(B, W_hh.size(0), dtype=x.dtype, device=x.device) if h0 is None else h0
    states = []
    for t in range(T):
        h = x[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh
        states.append(h)
    outputs = torch.stack(states, dim=1) if states else x.new_zeros(B, 0, W_hh.size(0))
    return outputs, h
''',
    # the gates in the order (i, f, o, g) instead of PyTorch's (i, f, g, o)
    "lstm": '''
def lstm_cell(x, state, W_ih, W_hh, b_ih, b_hh):
    h, c = state
    a = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    a_i, a_f, a_o, a_g = a.chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)
    c_next = f * c + i * g
    return o * torch.tanh(c_next), c_next
''',
    # clips each parameter's gradient to max_norm on its own, instead of one norm over all of them
    "clip": '''
def clip_grad_norm(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    for g in grads:
        g.mul_(min(1.0, max_norm / (float(g.norm()) + 1e-6)))
    return float(torch.sqrt(sum((g ** 2).sum() for g in grads)))
''',
    # the gradients with respect to the inputs x_t, not the hidden states h_t
    "grad_norms": '''
def gradient_norms_through_time(model, x):
    x = x.detach().requires_grad_()
    h = model.initial_state(x.size(0))
    for t in range(x.size(1)):
        h = model.step(x[:, t], h)
    (grad,) = torch.autograd.grad(model.loss(h), [x])
    return grad.norm(dim=-1)
''',
}

# graded test cell -> the answer cell it tests
TESTED_BY = {"test_rnn": "rnn", "test_lstm": "lstm", "test_clip": "clip", "test_grad_norms": "grad_norms"}

# answer cell grade_id -> more wrong versions of that cell, each a different mistake
MORE_WRONG = {
    "rnn": [
        # ignores h0: always starts from zeros
        '''
def rnn_forward(x, W_ih, W_hh, b_ih, b_hh, h0=None):
    B, T, _ = x.shape
    h = torch.zeros(B, W_hh.size(0), dtype=x.dtype, device=x.device)
    states = []
    for t in range(T):
        h = torch.tanh(x[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
        states.append(h)
    outputs = torch.stack(states, dim=1) if states else x.new_zeros(B, 0, W_hh.size(0))
    return outputs, h
''',
        # W_hh not transposed: h @ W_hh multiplies by the transpose of PyTorch's matrix
        '''
def rnn_forward(x, W_ih, W_hh, b_ih, b_hh, h0=None):
    B, T, _ = x.shape
    h = torch.zeros(B, W_hh.size(0), dtype=x.dtype, device=x.device) if h0 is None else h0
    states = []
    for t in range(T):
        h = torch.tanh(x[:, t] @ W_ih.T + b_ih + h @ W_hh + b_hh)
        states.append(h)
    outputs = torch.stack(states, dim=1) if states else x.new_zeros(B, 0, W_hh.size(0))
    return outputs, h
''',
        # one bias only: b_hh is left out
        '''
def rnn_forward(x, W_ih, W_hh, b_ih, b_hh, h0=None):
    B, T, _ = x.shape
    h = torch.zeros(B, W_hh.size(0), dtype=x.dtype, device=x.device) if h0 is None else h0
    states = []
    for t in range(T):
        h = torch.tanh(x[:, t] @ W_ih.T + h @ W_hh.T + b_ih)
        states.append(h)
    outputs = torch.stack(states, dim=1) if states else x.new_zeros(B, 0, W_hh.size(0))
    return outputs, h
''',
        # the state is not carried: every step starts again from h0
        '''
def rnn_forward(x, W_ih, W_hh, b_ih, b_hh, h0=None):
    B, T, _ = x.shape
    start = torch.zeros(B, W_hh.size(0), dtype=x.dtype, device=x.device) if h0 is None else h0
    states = [torch.tanh(x[:, t] @ W_ih.T + b_ih + start @ W_hh.T + b_hh) for t in range(T)]
    outputs = torch.stack(states, dim=1) if states else x.new_zeros(B, 0, W_hh.size(0))
    return outputs, outputs[:, -1] if T else start
''',
        # off by one: the outputs are h_0 .. h_{T-1} (the state before each step, not after)
        '''
def rnn_forward(x, W_ih, W_hh, b_ih, b_hh, h0=None):
    B, T, _ = x.shape
    h = torch.zeros(B, W_hh.size(0), dtype=x.dtype, device=x.device) if h0 is None else h0
    states = []
    for t in range(T):
        states.append(h)
        h = torch.tanh(x[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
    outputs = torch.stack(states, dim=1) if states else x.new_zeros(B, 0, W_hh.size(0))
    return outputs, h
''',
    ],
    "lstm": [
        # forgets the tanh of the new cell state: h = o * c
        '''
def lstm_cell(x, state, W_ih, W_hh, b_ih, b_hh):
    h, c = state
    a = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    a_i, a_f, a_g, a_o = a.chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)
    c_next = f * c + i * g
    return o * c_next, c_next
''',
        # squashes the old memory: f * tanh(c) instead of f * c
        '''
def lstm_cell(x, state, W_ih, W_hh, b_ih, b_hh):
    h, c = state
    a = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    a_i, a_f, a_g, a_o = a.chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)
    c_next = f * torch.tanh(c) + i * g
    return o * torch.tanh(c_next), c_next
''',
        # a sigmoid for the candidate g too: the memory can only grow
        '''
def lstm_cell(x, state, W_ih, W_hh, b_ih, b_hh):
    h, c = state
    a = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    i, f, g, o = torch.sigmoid(a).chunk(4, dim=-1)
    c_next = f * c + i * g
    return o * torch.tanh(c_next), c_next
''',
        # returns the state as (c, h), the wrong way round
        '''
def lstm_cell(x, state, W_ih, W_hh, b_ih, b_hh):
    h, c = state
    a = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    a_i, a_f, a_g, a_o = a.chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)
    c_next = f * c + i * g
    return c_next, o * torch.tanh(c_next)
''',
        # TensorFlow's gate order (i, g, f, o), as in tf.compat.v1's LSTMCell
        '''
def lstm_cell(x, state, W_ih, W_hh, b_ih, b_hh):
    h, c = state
    a = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    a_i, a_g, a_f, a_o = a.chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)
    c_next = f * c + i * g
    return o * torch.tanh(c_next), c_next
''',
    ],
    "clip": [
        # not in place: scales copies of the gradients and leaves p.grad as it was
        '''
def clip_grad_norm(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    total = torch.sqrt(sum((g ** 2).sum() for g in grads))
    coefficient = min(1.0, max_norm / (float(total) + 1e-6))
    grads = [g * coefficient for g in grads]
    return float(total)
''',
        # returns the norm after clipping, not before
        '''
def clip_grad_norm(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    total = torch.sqrt(sum((g ** 2).sum() for g in grads))
    coefficient = min(1.0, max_norm / (float(total) + 1e-6))
    for g in grads:
        g.mul_(coefficient)
    return float(torch.sqrt(sum((g ** 2).sum() for g in grads)))
''',
        # the coefficient is not clamped to 1: small gradients are scaled up to max_norm
        '''
def clip_grad_norm(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    total = torch.sqrt(sum((g ** 2).sum() for g in grads))
    for g in grads:
        g.mul_(max_norm / (total + 1e-6))
    return float(total)
''',
        # the squared norm: the square root is forgotten
        '''
def clip_grad_norm(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    total = sum((g ** 2).sum() for g in grads)
    coefficient = min(1.0, max_norm / (float(total) + 1e-6))
    for g in grads:
        g.mul_(coefficient)
    return float(total)
''',
        # gives the parameters without a gradient a zero one (they must keep None)
        '''
def clip_grad_norm(parameters, max_norm):
    for p in parameters:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    total = torch.sqrt(sum((p.grad ** 2).sum() for p in parameters))
    coefficient = min(1.0, max_norm / (float(total) + 1e-6))
    for p in parameters:
        p.grad.mul_(coefficient)
    return float(total)
''',
    ],
    "grad_norms": [
        # the norms in reverse order: h_T first
        '''
def gradient_norms_through_time(model, x):
    h = model.initial_state(x.size(0))
    states = []
    for t in range(x.size(1)):
        h = model.step(x[:, t], h)
        states.append(h)
    grads = torch.autograd.grad(model.loss(h), states)
    return torch.stack([g.norm(dim=-1) for g in reversed(grads)], dim=1)
''',
        # off by one: the states h_0 .. h_{T-1} that go into each step, not h_1 .. h_T
        '''
def gradient_norms_through_time(model, x):
    h = model.initial_state(x.size(0)).requires_grad_()
    inputs = []
    for t in range(x.size(1)):
        inputs.append(h)
        h = model.step(x[:, t], h)
    grads = torch.autograd.grad(model.loss(h), inputs)
    return torch.stack([g.norm(dim=-1) for g in grads], dim=1)
''',
        # truncated backpropagation: the state is detached between steps, so only the last step gets a gradient
        '''
def gradient_norms_through_time(model, x):
    h = model.initial_state(x.size(0))
    states = []
    for t in range(x.size(1)):
        h = model.step(x[:, t], h.detach())
        states.append(h)
    grads = torch.autograd.grad(model.loss(h), states, allow_unused=True, materialize_grads=True)
    return torch.stack([g.norm(dim=-1) for g in grads], dim=1)
''',
        # one norm per step over the whole batch: (T,) instead of (B, T)
        '''
def gradient_norms_through_time(model, x):
    h = model.initial_state(x.size(0))
    states = []
    for t in range(x.size(1)):
        h = model.step(x[:, t], h)
        states.append(h)
    grads = torch.autograd.grad(model.loss(h), states)
    return torch.stack([g.norm() for g in grads])
''',
        # starts from zeros instead of the model's initial state
        '''
def gradient_norms_through_time(model, x):
    h = torch.zeros(x.size(0), model.hidden_size, dtype=x.dtype, device=x.device)
    states = []
    for t in range(x.size(1)):
        h = model.step(x[:, t], h)
        states.append(h)
    grads = torch.autograd.grad(model.loss(h), states)
    return torch.stack([g.norm(dim=-1) for g in grads], dim=1)
''',
    ],
}

# answer cell grade_id -> correct versions of that cell, written differently from the reference
ALTERNATIVES = {
    "rnn": [
        # one product with the inputs and the state side by side, [x_t, h] @ [W_ih, W_hh]ᵀ, into a preallocated tensor
        '''
def rnn_forward(x, W_ih, W_hh, b_ih, b_hh, h0=None):
    B, T, _ = x.shape
    H = W_hh.shape[0]
    h = h0 if h0 is not None else x.new_zeros(B, H)
    W = torch.cat([W_ih, W_hh], dim=1)
    b = b_ih + b_hh
    outputs = x.new_empty(B, T, H)
    for t in range(T):
        h = torch.tanh(torch.cat([x[:, t], h], dim=1) @ W.T + b)
        outputs[:, t] = h
    return outputs, h
''',
        # in float64 with torch.addmm and einsum, one sequence position at a time, and a list of states
        '''
def rnn_forward(x, W_ih, W_hh, b_ih, b_hh, h0=None):
    B, T, I = x.shape
    H = W_ih.shape[0]
    x64, W_ih64, W_hh64 = x.double(), W_ih.double(), W_hh.double()
    h = torch.zeros(B, H, dtype=torch.float64, device=x.device) if h0 is None else h0.double()
    hs = []
    for t in range(T):
        pre = torch.addmm(b_hh.double(), h, W_hh64.t()) + torch.einsum("bi,hi->bh", x64[:, t], W_ih64) + b_ih.double()
        h = pre.tanh()
        hs.append(h)
    if T == 0:
        return torch.empty(B, 0, H, dtype=torch.float64, device=x.device), h
    return torch.stack(hs, 1), hs[-1]
''',
    ],
    "lstm": [
        # four separate products with the weights' row blocks, one per gate
        '''
def lstm_cell(x, state, W_ih, W_hh, b_ih, b_hh):
    h_prev, c_prev = state
    H = h_prev.shape[-1]

    def block(k):
        rows = slice(k * H, (k + 1) * H)
        return x @ W_ih[rows].T + h_prev @ W_hh[rows].T + b_ih[rows] + b_hh[rows]

    input_gate, forget_gate = torch.sigmoid(block(0)), torch.sigmoid(block(1))
    candidate, output_gate = torch.tanh(block(2)), torch.sigmoid(block(3))
    c = forget_gate * c_prev + input_gate * candidate
    h = output_gate * torch.tanh(c)
    return (h, c)
''',
        # [x, h] against the stacked weights with torch.addmm, a sigmoid written as 1 / (1 + e^-a), in float64
        '''
def lstm_cell(x, state, W_ih, W_hh, b_ih, b_hh):
    h, c = (s.double() for s in state)
    W = torch.cat([W_ih, W_hh], dim=1).double()
    a = torch.addmm((b_ih + b_hh).double(), torch.cat([x.double(), h], dim=1), W.T)
    H = h.size(1)
    sig = 1 / (1 + torch.exp(-a))
    i, f, o = sig[:, :H], sig[:, H:2 * H], sig[:, 3 * H:]
    g = torch.tanh(a[:, 2 * H:3 * H])
    c_new = torch.addcmul(i * g, f, c)
    return o * c_new.tanh(), c_new
''',
    ],
    "clip": [
        # one vector_norm over the flattened gradients, clipping only above the threshold (no 1e-6), p.grad reassigned
        '''
def clip_grad_norm(parameters, max_norm):
    with_grads = [p for p in parameters if p.grad is not None]
    if len(with_grads) == 0:
        return 0.0
    total = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in with_grads]))
    if total > max_norm:
        for p in with_grads:
            p.grad = p.grad * (max_norm / total)
    return total
''',
        # Python floats for the norm, and the per-parameter norms combined as in PyTorch
        '''
def clip_grad_norm(parameters, max_norm):
    norms = [p.grad.norm().item() for p in parameters if p.grad is not None]
    total = math.sqrt(sum(n * n for n in norms))
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for p in parameters:
            if p.grad is not None:
                p.grad.mul_(scale)
    return total
''',
    ],
    "grad_norms": [
        # backpropagation through time by hand: one vector-Jacobian product per step, from h_T back to h_1
        '''
def gradient_norms_through_time(model, x):
    B, T, _ = x.shape
    inputs, outputs = [], []
    h = model.initial_state(B)
    for t in range(T):
        h_in = h.detach().requires_grad_()
        h = model.step(x[:, t], h_in)
        inputs.append(h_in)
        outputs.append(h)
    (g,) = torch.autograd.grad(model.loss(outputs[-1]), outputs[-1])
    norms = [g.norm(dim=1)]
    for t in range(T - 1, 0, -1):  # ∂L/∂h_t = (∂h_{t+1}/∂h_t)ᵀ ∂L/∂h_{t+1}
        (g,) = torch.autograd.grad(outputs[t], inputs[t], grad_outputs=g)
        norms.append(g.norm(dim=1))
    return torch.stack(norms[::-1], dim=1)
''',
        # retain_grad on every state, loss.backward(), and the norms in float64
        '''
def gradient_norms_through_time(model, x):
    h = model.initial_state(x.shape[0])
    states = []
    for x_t in x.unbind(1):
        h = model.step(x_t, h)
        h.retain_grad()
        states.append(h)
    model.loss(h).backward()
    return torch.linalg.vector_norm(torch.stack([s.grad.double() for s in states], dim=1), dim=-1)
''',
    ],
}
