"""Plausible wrong answers for 11_vit: each must cost exactly its own test's points.

The patch variants are the reference with the axes put in another order (``_patchify``) or written another way; the
embeddings are whole classes (``_embedding``: the reference's ``__init__`` and another ``forward``); the ViT is the
given ``__init__`` with another ``forward`` (``_vit``); rollout is the reference's loop with one step changed
(``_rollout``) or written another way.
"""

# the reference's patches, with the lines that the wrong answers change
PATCHIFY = '''
def patchify(x, patch):
    B, C, H, W = x.shape
    if CHECK:
        raise ValueError(f"a {H}x{W} image does not cut into {patch}x{patch} patches")
    rows, cols = H // patch, W // patch
    x = x.reshape(B, C, rows, patch, cols, patch)
    x = x.permute(ORDER)
    return x.reshape(B, rows * cols, C * patch * patch)
'''


def _patchify(**changes) -> str:
    source = PATCHIFY
    for key, value in {**dict(CHECK="H % patch or W % patch", ORDER="0, 2, 4, 1, 3, 5"), **changes}.items():
        source = source.replace(key, value)
    return source


EMBEDDING_INIT = '''
class PatchEmbedding(nn.Module):
    def __init__(self, in_channels, patch, d_model):
        super().__init__()
        self.patch = patch
        self.proj = nn.Linear(in_channels * patch * patch, d_model)
'''


def _embedding(forward: str) -> str:
    return EMBEDDING_INIT + forward


VIT_INIT = '''
class ViT(nn.Module):
    def __init__(self, image_size=28, in_channels=1, patch=7, d_model=96, heads=4, layers=4, d_ff=384, classes=10,
                 dropout=0.0):
        super().__init__()
        patches = (image_size // patch) ** 2
        self.embed = PatchEmbedding(in_channels, patch, d_model)
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        self.pos = nn.Parameter(torch.randn(1, patches + 1, d_model) * 0.02)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(EncoderBlock(d_model, heads, d_ff, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, classes)
'''


def _vit(forward: str) -> str:
    return VIT_INIT + forward


# the reference's rollout, with the lines that the wrong answers change
ROLLOUT = '''
def attention_rollout(weights):
    rollout = None
    for w in weights:
        a = HEADS
        a = RESIDUAL
        a = NORMALISE
        rollout = a if rollout is None else PRODUCT
    return rollout
'''


def _rollout(**changes) -> str:
    source = ROLLOUT
    defaults = dict(HEADS="w.mean(dim=1)",
                    RESIDUAL="0.5 * a + 0.5 * torch.eye(a.size(-1), dtype=a.dtype, device=a.device)",
                    NORMALISE="a / a.sum(dim=-1, keepdim=True)", PRODUCT="a @ rollout")
    for key, value in {**defaults, **changes}.items():
        source = source.replace(key, value)
    return source


# answer cell grade_id -> a wrong version of that cell
WRONG = {
    # a plain reshape, without moving the axes: the "patches" are runs of pixels along the rows of one channel
    "patchify": '''
def patchify(x, patch):
    B, C, H, W = x.shape
    if H % patch or W % patch:
        raise ValueError(f"a {H}x{W} image does not cut into {patch}x{patch} patches")
    return x.reshape(B, (H // patch) * (W // patch), C * patch * patch)
''',
    # forgets the bias: x_p E^T only
    "embedding": _embedding('''
    def forward(self, x):
        return patchify(x, self.patch) @ self.proj.weight.T
'''),
    # the class token appended at the end of the sequence (and read there)
    "vit": _vit('''
    def forward(self, x):
        patches = self.embed(x)
        cls = self.cls.expand(x.size(0), -1, -1)
        z = self.dropout(torch.cat([patches, cls], dim=1) + self.pos)
        for block in self.blocks:
            z = block(z)
        return self.head(self.norm(z[:, -1]))
'''),
    # forgets the residual connection: the heads' mean alone
    "rollout": _rollout(RESIDUAL="a"),
}

# graded test cell -> the answer cell it tests
TESTED_BY = {"test_patchify": "patchify", "test_embedding": "embedding", "test_vit": "vit", "test_rollout": "rollout"}

# answer cell grade_id -> more wrong versions of that cell, each a different mistake
MORE_WRONG = {
    "patchify": [
        # each patch flattened pixel by pixel, the channels innermost (row, column, channel): not a Conv2d's layout
        _patchify(ORDER="0, 2, 4, 3, 5, 1"),
        # the grid read column by column instead of row by row
        _patchify(ORDER="0, 4, 2, 1, 3, 5"),
        # within a patch, column before row (each patch transposed)
        _patchify(ORDER="0, 2, 4, 1, 5, 3"),
        # F.unfold without the check: an image that does not cut into patches loses its last rows and columns
        '''
def patchify(x, patch):
    return F.unfold(x, patch, stride=patch).transpose(1, 2)
''',
        # checks the height only: a width that is not a multiple of the patch goes through (and fails in reshape)
        _patchify(CHECK="H % patch"),
    ],
    "embedding": [
        # the convolution with stride 1: overlapping patches, one per pixel position
        _embedding('''
    def forward(self, x):
        d, p = self.proj.out_features, self.patch
        weight = self.proj.weight.view(d, x.size(1), p, p)
        return F.conv2d(x, weight, self.proj.bias).flatten(2).transpose(1, 2)
'''),
        # the convolution's weight read as (d, p, p, C): the channels flattened last, which is not patchify's order
        _embedding('''
    def forward(self, x):
        d, p = self.proj.out_features, self.patch
        weight = self.proj.weight.view(d, p, p, x.size(1)).permute(0, 3, 1, 2)
        return F.conv2d(x, weight, self.proj.bias, stride=p).flatten(2).transpose(1, 2)
'''),
        # the convolution's output flattened without the transpose: (B, d_model, N)
        _embedding('''
    def forward(self, x):
        d, p = self.proj.out_features, self.patch
        weight = self.proj.weight.view(d, x.size(1), p, p)
        return F.conv2d(x, weight, self.proj.bias, stride=p).flatten(2)
'''),
        # the pixels through the layer in the image's own memory order, not cut into patches
        _embedding('''
    def forward(self, x):
        B, C, H, W = x.shape
        p = self.patch
        return self.proj(x.reshape(B, (H // p) * (W // p), C * p * p))
'''),
    ],
    "vit": [
        # the position embeddings added to the patches only, not to the class token
        _vit('''
    def forward(self, x):
        patches = self.embed(x) + self.pos[:, 1:]
        cls = self.cls.expand(x.size(0), -1, -1)
        z = self.dropout(torch.cat([cls, patches], dim=1))
        for block in self.blocks:
            z = block(z)
        return self.head(self.norm(z[:, 0]))
'''),
        # the head on the mean of all the tokens instead of the class token
        _vit('''
    def forward(self, x):
        patches = self.embed(x)
        cls = self.cls.expand(x.size(0), -1, -1)
        z = self.dropout(torch.cat([cls, patches], dim=1) + self.pos)
        for block in self.blocks:
            z = block(z)
        return self.head(self.norm(z.mean(dim=1)))
'''),
        # forgets the final layer norm
        _vit('''
    def forward(self, x):
        patches = self.embed(x)
        cls = self.cls.expand(x.size(0), -1, -1)
        z = self.dropout(torch.cat([cls, patches], dim=1) + self.pos)
        for block in self.blocks:
            z = block(z)
        return self.head(z[:, 0])
'''),
        # no class token: the first patch classified in its place
        _vit('''
    def forward(self, x):
        z = self.dropout(self.embed(x) + self.pos[:, 1:])
        for block in self.blocks:
            z = block(z)
        return self.head(self.norm(z[:, 0]))
'''),
        # the position embeddings added after the blocks instead of before
        _vit('''
    def forward(self, x):
        patches = self.embed(x)
        cls = self.cls.expand(x.size(0), -1, -1)
        z = self.dropout(torch.cat([cls, patches], dim=1))
        for block in self.blocks:
            z = block(z)
        z = z + self.pos
        return self.head(self.norm(z[:, 0]))
'''),
    ],
    "rollout": [
        # no renormalisation: right for softmax weights, wrong for weights whose rows do not sum to one
        _rollout(NORMALISE="a"),
        # multiplied in the wrong order: the first layer last
        _rollout(PRODUCT="rollout @ a"),
        # the heads combined by their maximum instead of their mean
        _rollout(HEADS="w.max(dim=1).values"),
        # renormalised before the identity is added
        _rollout(RESIDUAL="a / a.sum(dim=-1, keepdim=True)", NORMALISE="0.5 * a + 0.5 * torch.eye(a.size(-1), "
                 "dtype=a.dtype, device=a.device)"),
        # the heads summed instead of averaged (renormalising does not undo it: the identity's share shrinks)
        _rollout(HEADS="w.sum(dim=1)"),
    ],
}

# answer cell grade_id -> correct versions of that cell, written differently from the reference
ALTERNATIVES = {
    "patchify": [
        # F.unfold, with the check
        '''
def patchify(x, patch):
    if x.shape[-2] % patch != 0 or x.shape[-1] % patch != 0:
        raise ValueError("the image does not cut into whole patches")
    return F.unfold(x, kernel_size=patch, stride=patch).transpose(1, 2)
''',
        # einsum on another view: (B, C, rows, i, cols, j) -> (B, rows, cols, C, i, j)
        '''
def patchify(x, patch):
    B, C, H, W = x.shape
    if H % patch or W % patch:
        raise ValueError("H and W must be multiples of patch")
    grid = torch.einsum("bcripj->brpcij", x.reshape(B, C, H // patch, patch, W // patch, patch))
    return grid.flatten(3).flatten(1, 2)
''',
        # Tensor.unfold twice: (B, C, rows, cols, i, j), then the channels moved after the grid
        '''
def patchify(x, patch):
    B, C, H, W = x.shape
    if H % patch or W % patch:
        raise ValueError("H and W must be multiples of patch")
    tiles = x.unfold(2, patch, patch).unfold(3, patch, patch)
    return tiles.permute(0, 2, 3, 1, 4, 5).contiguous().view(B, -1, C * patch * patch)
''',
        # a loop over the grid, row by row, each square flattened
        '''
def patchify(x, patch):
    B, C, H, W = x.shape
    if H % patch or W % patch:
        raise ValueError("H and W must be multiples of patch")
    squares = []
    for r in range(0, H, patch):
        for c in range(0, W, patch):
            squares.append(x[:, :, r:r + patch, c:c + patch].reshape(B, -1))
    return torch.stack(squares, dim=1)
''',
    ],
    "embedding": [
        # the strided convolution itself, with proj's weight reshaped to (d, C, p, p)
        _embedding('''
    def forward(self, x):
        d, p = self.proj.out_features, self.patch
        weight = self.proj.weight.reshape(d, x.shape[1], p, p)
        return F.conv2d(x, weight, self.proj.bias, stride=p).flatten(2).transpose(1, 2)
'''),
        # einsum with the weight, the bias added
        _embedding('''
    def forward(self, x):
        patches = patchify(x, self.patch)
        return torch.einsum("bnk,dk->bnd", patches, self.proj.weight) + self.proj.bias
'''),
    ],
    "vit": [
        # the class token's position added before it is concatenated; every token normed, then the first kept
        _vit('''
    def forward(self, x):
        B = x.shape[0]
        tokens = self.embed(x) + self.pos[:, 1:]
        first = (self.cls + self.pos[:, :1]).expand(B, 1, -1)
        z = self.dropout(torch.cat((first, tokens), 1))
        for block in self.blocks:
            z = block(z)
        return self.head(self.norm(z)[:, 0, :])
'''),
        # the patches through patchify and the embedding's own layer; the class token repeated with repeat
        _vit('''
    def forward(self, x):
        patches = self.embed.proj(patchify(x, self.embed.patch))
        z = torch.cat([self.cls.repeat(len(x), 1, 1), patches], dim=-2)
        z = self.dropout(z + self.pos.expand_as(z))
        for i in range(len(self.blocks)):
            z = self.blocks[i](z)
        cls = z.select(1, 0)
        return F.linear(self.norm(cls), self.head.weight, self.head.bias)
'''),
    ],
    "rollout": [
        # a loop over the layers and the images, from the identity, each row scaled by a division
        '''
def attention_rollout(weights):
    B, heads, T, _ = weights[0].shape
    eye = torch.eye(T, dtype=weights[0].dtype, device=weights[0].device)
    rollout = eye.repeat(B, 1, 1)
    for w in weights:
        new = torch.empty_like(rollout)
        for b in range(B):
            a = (w[b].sum(0) / heads + eye) / 2
            a = a / a.sum(1)[:, None]
            new[b] = a @ rollout[b]
        rollout = new
    return rollout
''',
        # the identity added to every head before averaging (the same), rows normalised by a diagonal, reduce with bmm
        '''
import functools


def attention_rollout(weights):
    T = weights[0].size(-1)
    eye = torch.eye(T, dtype=weights[0].dtype, device=weights[0].device)
    layers = []
    for w in weights:
        a = (0.5 * w + 0.5 * eye).mean(1)
        layers.append(torch.diag_embed(a.sum(-1).reciprocal()) @ a)
    return functools.reduce(lambda rollout, a: torch.bmm(a, rollout), layers[1:], layers[0])
''',
    ],
}
