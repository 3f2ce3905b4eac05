"""Hidden cases for 11_vit: seeded inputs the student never sees, edge cases included.

Patches: images of one, two and three channels (where the order within a patch shows: channel first, then rows, then
columns), square and not (H != W, so that the grid's rows and columns cannot be mixed up), patches of 1, 2, 3, 4, 7
pixels and one patch as large as the image, B = 1, float64 inputs, real Fashion-MNIST images. (That an image which
does not cut into patches raises ValueError is checked in the test cell's hidden part: an error is no output the
reference can give.)

The patch embedding and the ViT are graded as modules in eval mode, with weights drawn here for the parameter names of
coursekit.vit's modules, which are the reference's (tests/test_oracles_11.py checks it): matrices N(0, 1/fan_in), biases
N(0, 0.2²), layer-norm gains 1 + N(0, 0.2²) and biases N(0, 0.2²); the ViT's class token N(0, 1) and its position
embeddings N(0, 0.5²), far from their initial zeros and 0.02, so that a class token left out, put at the end or
without its position, and positions left out, all change the logits by far more than the tolerance. Dropout is 0 (and
the modules run in eval mode).

Rollout: lists of softmax weights (several layers, heads and lengths), weights whose rows do not sum to one (so that
renormalising matters: their rows sum to 0.3 ... 3), edge cases (one layer, one head, T = 1, B = 1, a tuple, float64),
and the attention weights of a real ViT (coursekit.vit.attention_weights of a seeded coursekit.vit.ViT on
Fashion-MNIST test images).
"""
import torch

from autograder.cases import randn
from coursekit import vit as kit

F64 = torch.float64


def _images(start: int, count: int) -> torch.Tensor:
    """Fashion-MNIST test images (count, 1, 28, 28), standardised as the chapter's."""
    return kit.images("test")[0][start:start + count]


# --------------------------------------------------------------------------- patchify


def patchify(g):
    def case(group, note, x, patch, **kw):
        return dict(id=f"x {tuple(x.shape)}, patch={patch}: {note}", group=group, args=[x, patch], **kw)

    group = "square images"
    yield case(group, "one channel, 4 x 4 patches", randn(g, 3, 1, 16, 16), 4)
    yield case(group, "three channels, 4 x 4 patches", randn(g, 2, 3, 12, 12), 4)
    yield case(group, "two channels, 3 x 3 patches", randn(g, 4, 2, 9, 9), 3)
    yield case(group, "three channels, 2 x 2 patches", randn(g, 2, 3, 8, 8), 2)
    yield case(group, "Fashion-MNIST images, 7 x 7 patches", _images(10, 4), 7)
    yield case(group, "Fashion-MNIST images, 4 x 4 patches", _images(20, 3), 4)

    group = "images that are not square"
    yield case(group, "H < W, one channel", randn(g, 2, 1, 8, 12), 4)
    yield case(group, "H > W, three channels", randn(g, 2, 3, 12, 8), 4)
    yield case(group, "one row of patches, two channels", randn(g, 3, 2, 3, 15), 3)
    yield case(group, "one column of patches, three channels", randn(g, 2, 3, 10, 2), 2)

    group = "edge cases"
    yield case(group, "one image (B=1), two channels", randn(g, 1, 2, 6, 6), 3)
    yield case(group, "patch=1: every pixel a patch of C numbers", randn(g, 2, 3, 4, 5), 1)
    yield case(group, "one patch as large as the image", randn(g, 2, 3, 6, 6), 6)
    yield case(group, "float64 images", torch.randn(2, 2, 8, 4, generator=g, dtype=F64), 4, dtype=F64)


# --------------------------------------------------------------------------- PatchEmbedding


def _embedding_weights(g, in_channels, patch, d_model):
    fan_in = in_channels * patch * patch
    return {"proj.weight": randn(g, d_model, fan_in, scale=fan_in ** -0.5), "proj.bias": randn(g, d_model, scale=0.2)}


def PatchEmbedding(g):
    def case(group, note, x, patch, d_model):
        init = dict(in_channels=x.size(1), patch=patch, d_model=d_model)
        return dict(id=f"x {tuple(x.shape)}, patch={patch}, d_model={d_model}: {note}", group=group, kind="module",
                    init=init, state_dict=_embedding_weights(g, x.size(1), patch, d_model), args=[x])

    group = "ordinary cases"
    yield case(group, "one channel", randn(g, 3, 1, 16, 16), 4, 16)
    yield case(group, "three channels", randn(g, 2, 3, 12, 12), 4, 24)
    yield case(group, "two channels, 3 x 3 patches", randn(g, 2, 2, 9, 9), 3, 8)
    yield case(group, "Fashion-MNIST images, patch 4 and d_model 96", _images(30, 4), 4, 96)

    group = "sizes"
    yield case(group, "an image that is not square (8 x 12), three channels", randn(g, 2, 3, 8, 12), 4, 16)
    yield case(group, "patch=1", randn(g, 2, 3, 3, 4), 1, 8)
    yield case(group, "one patch as large as the image", randn(g, 3, 2, 5, 5), 5, 12)
    yield case(group, "one image (B=1), d_model=1", randn(g, 1, 1, 8, 8), 2, 1)


# --------------------------------------------------------------------------- ViT


def vit_weights(g, **config) -> dict[str, torch.Tensor]:
    """Weights for coursekit.vit.ViT(ViTConfig(**config)), by its parameter names (see the module's docstring)."""
    model = kit.ViT(kit.ViTConfig(**config, dropout=0.0))
    weights = {}
    for name, parameter in model.named_parameters():
        shape = parameter.shape
        if name == "cls":
            weights[name] = randn(g, *shape)
        elif name == "pos":
            weights[name] = randn(g, *shape, scale=0.5)
        elif name.split(".")[-2].startswith("norm"):                    # norm, blocks.*.norm1, blocks.*.norm2
            weights[name] = randn(g, *shape, scale=0.2, shift=1.0 if name.endswith("weight") else 0.0)
        elif parameter.dim() > 1:
            weights[name] = randn(g, *shape, scale=shape[-1] ** -0.5)
        else:
            weights[name] = randn(g, *shape, scale=0.2)
    return weights


def ViT(g):
    def case(group, note, x, defaults=False, **config):
        config = dict(image_size=x.size(-1), in_channels=x.size(1), **config)
        weights = vit_weights(g, **config)
        init = dict(dropout=0.0) if defaults else dict(config, dropout=0.0)
        shown = ", ".join(f"{k}={v}" for k, v in config.items() if k not in ("image_size", "in_channels"))
        return dict(id=f"x {tuple(x.shape)}, {shown}: {note}", group=group, kind="module", init=init,
                    state_dict=weights, args=[x])

    group = "the class token and the positions"
    yield case(group, "two layers", randn(g, 4, 1, 12, 12), patch=4, d_model=16, heads=2, layers=2, d_ff=24,
               classes=5)
    yield case(group, "one layer, three channels", randn(g, 3, 3, 8, 8), patch=2, d_model=12, heads=3, layers=1,
               d_ff=16, classes=4)
    yield case(group, "three layers, four heads", randn(g, 2, 1, 16, 16), patch=4, d_model=32, heads=4, layers=3,
               d_ff=48, classes=10)

    group = "sizes"
    yield case(group, "no blocks (layers=0): the class token and its position only", randn(g, 3, 1, 8, 8),
               patch=4, d_model=8, heads=2, layers=0, d_ff=8, classes=3)
    yield case(group, "one patch as large as the image: T = 2", randn(g, 3, 2, 6, 6), patch=6, d_model=8, heads=2,
               layers=2, d_ff=16, classes=2)
    yield case(group, "one image (B=1), one class (a score)", randn(g, 1, 1, 12, 12), patch=3, d_model=16,
               heads=4, layers=2, d_ff=16, classes=1)

    group = "Fashion-MNIST images"
    yield case(group, "the chapter's model, the defaults: 28 x 28, patch 7, d_model 96, 4 heads, 4 layers",
               _images(40, 4), defaults=True, patch=7, d_model=96, heads=4, layers=4, d_ff=384, classes=10)
    yield case(group, "7 x 7 patches, two layers", _images(50, 6), patch=7, d_model=24, heads=2, layers=2, d_ff=32,
               classes=10)


# --------------------------------------------------------------------------- attention_rollout


def _softmax_weights(g, layers, batch, heads, size):
    return [torch.randn(batch, heads, size, size, generator=g, dtype=F64).mul(2).softmax(-1).float()
            for _ in range(layers)]


def _unnormalised_weights(g, layers, batch, heads, size):
    """Non-negative weights whose rows sum to 0.3 ... 3, some of them exactly zero (pruned)."""
    weights = []
    for _ in range(layers):
        w = torch.rand(batch, heads, size, size, generator=g, dtype=F64)
        w = torch.where(torch.rand(batch, heads, size, size, generator=g) < 0.3, 0.0, w)
        w[..., 0] += 0.05  # every row keeps a positive sum
        w = w / w.sum(-1, keepdim=True) * (0.3 + 2.7 * torch.rand(batch, heads, size, 1, generator=g, dtype=F64))
        weights.append(w.float())
    return weights


def real_vit_weights(seed: int, count: int, start: int, **config) -> list[torch.Tensor]:
    """coursekit.vit.attention_weights of a ViT seeded with ``seed`` on ``count`` Fashion-MNIST test images."""
    model = kit.ViT(kit.ViTConfig(**config, dropout=0.0)).double().eval()
    weights = vit_weights(torch.Generator().manual_seed(seed), **config)
    model.load_state_dict({k: v.double() for k, v in weights.items()})
    return [w.float() for w in kit.attention_weights(model, _images(start, count).double())]


def attention_rollout(g):
    def case(group, note, weights, **kw):
        B, heads, T, _ = weights[0].shape
        return dict(id=f"{len(weights)} layers of (B={B}, heads={heads}, T={T}): {note}", group=group,
                    args=[weights], **kw)

    group = "softmax weights"
    yield case(group, "two layers", _softmax_weights(g, 2, 3, 2, 5))
    yield case(group, "four layers, four heads", _softmax_weights(g, 4, 2, 4, 9))
    yield case(group, "six layers, three heads", _softmax_weights(g, 6, 2, 3, 17))

    group = "weights whose rows do not sum to one"
    yield case(group, "two layers, rows summing to 0.3 ... 3, some weights zero", _unnormalised_weights(g, 2, 3, 2, 6))
    yield case(group, "three layers, one head", _unnormalised_weights(g, 3, 2, 1, 7))

    group = "edge cases"
    yield case(group, "one layer", _softmax_weights(g, 1, 3, 4, 6))
    yield case(group, "one head", _softmax_weights(g, 3, 2, 1, 5))
    yield case(group, "T=1: a single token", _softmax_weights(g, 3, 2, 2, 1))
    yield case(group, "one image (B=1)", _softmax_weights(g, 3, 1, 2, 8))
    yield case(group, "a tuple of layers", tuple(_softmax_weights(g, 3, 2, 2, 4)))
    yield case(group, "float64 weights", [w.double() for w in _unnormalised_weights(g, 3, 2, 2, 5)], dtype=F64)

    group = "a real ViT's attention"
    yield case(group, "coursekit.vit.attention_weights of a seeded ViT, 4 layers, patch 4, on test images",
               real_vit_weights(11, 2, 60, patch=4, d_model=32, heads=4, layers=4, d_ff=32))
    yield case(group, "coursekit.vit.attention_weights of a seeded ViT, 2 layers, patch 7, on test images",
               real_vit_weights(12, 3, 70, patch=7, d_model=16, heads=2, layers=2, d_ff=16))


CASES = {
    "patchify": patchify,
    "PatchEmbedding": PatchEmbedding,
    "ViT": ViT,
    "attention_rollout": attention_rollout,
}
