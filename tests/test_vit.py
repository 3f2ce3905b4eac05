"""coursekit.vit (chapter 11) against independent oracles: F.unfold for the patches, a strided Conv2d for the
patch embedding, PyTorch's own nn.TransformerEncoderLayer for the ViT's encoder, a per-image loop for the
augmentation and a per-entry sum for attention rollout."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from coursekit import vit


@pytest.mark.parametrize("channels, size, patch", [(1, 28, 4), (1, 28, 7), (3, 12, 3), (2, 8, 8)])
def test_patchify_is_unfold_with_stride_equal_to_the_patch(channels, size, patch):
    x = torch.randn(3, channels, size, size, generator=torch.Generator().manual_seed(size))
    expected = F.unfold(x, patch, stride=patch).transpose(1, 2)  # (B, N, C p²), the same reading order
    assert torch.equal(vit.patchify(x, patch), expected)


def test_patchify_refuses_an_image_that_does_not_cut_into_patches():
    with pytest.raises(ValueError, match="5x5 patches"):
        vit.patchify(torch.zeros(1, 1, 28, 28), 5)


def test_patch_embedding_is_a_convolution_with_stride_equal_to_kernel():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 16, kernel_size=4, stride=4)
    embed = vit.PatchEmbedding(3, 4, 16)
    with torch.no_grad():
        embed.proj.weight.copy_(conv.weight.reshape(16, -1))
        embed.proj.bias.copy_(conv.bias)
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(embed(x), conv(x).flatten(2).transpose(1, 2), rtol=1e-5, atol=1e-5)


def _pytorch_layer(block) -> nn.TransformerEncoderLayer:
    """nn.TransformerEncoderLayer (pre-norm, ReLU) holding the weights of one of chapter 08's encoder blocks."""
    att, ff = block.attention, block.feed_forward
    d = att.W_q.in_features
    layer = nn.TransformerEncoderLayer(d, att.heads, ff[0].out_features, dropout=0.0, batch_first=True,
                                       norm_first=True)
    with torch.no_grad():
        layer.self_attn.in_proj_weight.copy_(torch.cat([att.W_q.weight, att.W_k.weight, att.W_v.weight]))
        layer.self_attn.in_proj_bias.copy_(torch.cat([att.W_q.bias, att.W_k.bias, att.W_v.bias]))
        layer.self_attn.out_proj.weight.copy_(att.W_o.weight)
        layer.self_attn.out_proj.bias.copy_(att.W_o.bias)
        layer.linear1.load_state_dict(ff[0].state_dict())
        layer.linear2.load_state_dict(ff[3].state_dict())
        layer.norm1.load_state_dict(block.norm1.state_dict())
        layer.norm2.load_state_dict(block.norm2.state_dict())
    return layer.eval()


def test_vit_is_patches_class_token_positions_and_pytorchs_encoder():
    torch.manual_seed(1)
    config = vit.ViTConfig(image_size=12, patch=4, d_model=16, heads=2, layers=2, d_ff=24, dropout=0.0)
    model = vit.ViT(config).eval()
    with torch.no_grad():
        model.cls.normal_()
    x = torch.randn(5, 1, 12, 12)
    with torch.no_grad():
        patches = F.unfold(x, 4, stride=4).transpose(1, 2) @ model.embed.proj.weight.T + model.embed.proj.bias
        z = torch.cat([model.cls.expand(5, 1, 16), patches], 1) + model.pos
        for block in model.blocks:
            z = _pytorch_layer(block)(z)
        expected = model.head(model.norm(z[:, 0]))
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)


def test_vit_sees_every_patch_and_the_position_embeddings_tell_patches_apart():
    torch.manual_seed(2)
    model = vit.ViT(vit.ViTConfig(patch=4, d_model=32, heads=2, layers=1, d_ff=32, dropout=0.0)).eval()
    x = torch.randn(1, 1, 28, 28)
    with torch.no_grad():
        base = model(x)
        for row, col in [(0, 0), (3, 5), (6, 6)]:
            y = x.clone()
            y[..., 4 * row:4 * row + 4, 4 * col:4 * col + 4] += 1
            assert (model(y) - base).abs().max() > 1e-4, f"patch ({row}, {col}) does not reach the class token"
        swapped = x.clone()  # two patches exchanged: without positions the class token could not tell
        swapped[..., 0:4, 0:4], swapped[..., 24:28, 24:28] = x[..., 24:28, 24:28], x[..., 0:4, 0:4]
        assert (model(swapped) - base).abs().max() > 1e-4
        model.pos.zero_()
        assert torch.allclose(model(swapped), model(x), atol=1e-5)  # ... and indeed it cannot


def test_attention_rollout_is_the_product_of_head_averaged_layers_with_the_residual():
    g = torch.Generator().manual_seed(3)
    weights = [torch.rand(2, 3, 5, 5, generator=g).softmax(-1) for _ in range(3)]
    got = vit.attention_rollout(weights)
    for b in range(2):
        joint = torch.eye(5)
        for w in weights:
            a = [[0.5 * sum(w[b, h, i, j] for h in range(3)) / 3 + 0.5 * (i == j) for j in range(5)] for i in range(5)]
            a = torch.tensor(a)
            a = a / a.sum(-1, keepdim=True)
            joint = torch.stack([torch.stack([sum(a[i, k] * joint[k, j] for k in range(5)) for j in range(5)])
                                 for i in range(5)])
        torch.testing.assert_close(got[b], joint, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.sum(-1), torch.ones(2, 5))


def test_attention_weights_are_each_layers_softmax_and_are_not_kept_afterwards():
    torch.manual_seed(4)
    model = vit.ViT(vit.ViTConfig(patch=4, d_model=16, heads=2, layers=3, d_ff=16, dropout=0.0)).eval()
    x = torch.randn(2, 1, 28, 28)
    weights = vit.attention_weights(model, x)
    assert [tuple(w.shape) for w in weights] == [(2, 2, 50, 50)] * 3
    torch.testing.assert_close(weights[0].sum(-1), torch.ones(2, 2, 50))
    h = model.blocks[0].norm1(torch.cat([model.cls.expand(2, 1, 16), model.embed(x)], 1) + model.pos)
    att = model.blocks[0].attention
    q = att.W_q(h).view(2, 50, 2, 8).transpose(1, 2)
    k = att.W_k(h).view(2, 50, 2, 8).transpose(1, 2)
    torch.testing.assert_close(weights[0], (q @ k.transpose(-1, -2) / 8 ** 0.5).softmax(-1), rtol=1e-4, atol=1e-6)
    assert all(not b.attention.keep_weights and b.attention.weights is None for b in model.blocks)


def test_augment_shifts_within_the_padding_and_flips_per_image():
    x = torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(5))
    out = vit.augment(x, torch.Generator().manual_seed(6))
    g = torch.Generator().manual_seed(6)  # the same draws, in the same order
    dy, dx = (torch.randint(0, 5, (16,), generator=g) for _ in range(2))
    flip = torch.rand(16, generator=g) < 0.5
    padded = F.pad(x, (2, 2, 2, 2), value=float(x.amin()))
    for b in range(16):
        expected = padded[b, :, dy[b]:dy[b] + 28, dx[b]:dx[b] + 28]
        assert torch.equal(out[b], expected.flip(-1) if flip[b] else expected)
    assert 0 < int(flip.sum()) < 16 and len(set(zip(dy.tolist(), dx.tolist()))) > 1


def test_data_and_stratified_subsets():
    x, y = vit.images("train")
    assert tuple(x.shape) == (10_000, 1, 28, 28) and x.dtype == torch.float32
    assert x.mean().item() == pytest.approx(0, abs=0.05) and x.std().item() == pytest.approx(1, abs=0.05)
    assert torch.bincount(y).tolist() == [1000] * 10
    assert torch.bincount(vit.images("test")[1]).tolist() == [200] * 10
    small, large = vit.stratified_subset(y, 1000), vit.stratified_subset(y, 5000)
    assert torch.bincount(y[small]).tolist() == [100] * 10
    assert set(small.tolist()) <= set(large.tolist())  # the curve adds images to a smaller set
    assert len(set(vit.stratified_subset(y, 10_000).tolist())) == 10_000


@pytest.mark.parametrize("model", ["vit", "cnn"])
def test_a_short_training_run_learns_and_is_reproducible(model):
    config = vit.TrainConfig(model=model, train_size=1000, steps=30, batch_size=32, warmup=5)
    first, history = vit.train(config, log=lambda _: None)
    again, _ = vit.train(config, log=lambda _: None)
    assert history["train"][-1] < history["train"][0] < 2.5
    x = vit.images("test")[0][:50]
    assert torch.equal(vit.predict(first, x), vit.predict(again, x))


def test_results_rows_are_replaced_by_key_and_read_back_as_numbers(tmp_path):
    from coursekit import tables
    path = tmp_path / "results.csv"
    tables.upsert_row(path, {"model": "vit", "train_size": 1000, "test_accuracy": 80.5, "command": "a b"},
                      ("model", "train_size"))
    tables.upsert_row(path, {"model": "cnn", "train_size": 1000, "test_accuracy": 85.0, "command": "c"},
                      ("model", "train_size"))
    tables.upsert_row(path, {"model": "vit", "train_size": 1000, "test_accuracy": 81.0, "command": "a b"},
                      ("model", "train_size"))
    assert tables.read_rows(path) == [
        {"model": "cnn", "train_size": 1000, "test_accuracy": 85.0, "command": "c"},
        {"model": "vit", "train_size": 1000, "test_accuracy": 81.0, "command": "a b"}]


@pytest.fixture(scope="module", params=["vit", "cnn"])
def shipped(request):
    return request.param, *vit.load(request.param)


def test_shipped_checkpoint_gives_its_recorded_predictions_and_row(shipped):
    from coursekit import polarity, tables
    name, model, info = shipped
    path = vit.checkpoint_path(name)
    assert path.stat().st_size <= 5 * 2**20, "checkpoints stay under 5 MB"
    (row,) = [r for r in tables.read_rows(vit.RESULTS_PATH) if r["model"] == name]
    assert row == info["row"]
    assert row["command"] == f"python -m coursekit.vit train --model {name} --threads 1"
    assert row["params"] == vit.n_parameters(model) and row["train_size"] == 10_000
    # Trained with today's recipe, so the page's description of it is the checkpoint's:
    assert (info["config"].steps, info["config"].lr) == (vit.RECIPES[name]["steps"], vit.RECIPES[name]["lr"])
    assert info["config"] == vit.TrainConfig(model=name, threads=1, command=row["command"])
    x, y = vit.images("test")
    predictions = vit.predict(model, x)
    assert torch.equal(predictions, info["test_predictions"].long())
    accuracy, low, high = polarity.accuracy_interval(predictions.tolist(), y.tolist())
    assert (row["test_accuracy"], row["low"], row["high"]) == pytest.approx((accuracy, low, high), abs=1e-9)
    assert accuracy > 75  # far above chance (10%): the claim chapter 11 starts from


def test_data_size_curve_has_both_models_at_every_size_with_the_shipped_budget():
    from coursekit import tables
    rows = tables.read_rows(vit.CURVE_PATH)
    shipped_steps = {r["model"]: r["steps"] for r in tables.read_rows(vit.RESULTS_PATH)}
    for name in ("vit", "cnn"):
        mine = {r["train_size"]: r for r in rows if r["model"] == name}
        assert sorted(mine) == list(vit.CURVE_SIZES), name
        assert {r["steps"] for r in mine.values()} == {shipped_steps[name]}, "the same steps at every size"
        for r in mine.values():  # the sizes may have been trained by several commands, side by side
            command = r["command"].split()
            assert command[:6] == f"python -m coursekit.vit curve --model {name}".split(), r["command"]
            assert "--steps" not in command and command[-2:] == ["--threads", "1"], r["command"]
