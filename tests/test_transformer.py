"""Chapter 08's Transformer (coursekit.transformer): its blocks are PyTorch's own layers given the same weights,
pre-norm and post-norm; the decoder never looks ahead; stepping equals teacher forcing; the attention maps are
the distributions the layers use; the shipped results are what the checkpoint and the outputs say."""
import math

import pytest
import torch
import torch.nn as nn

from coursekit import seq2seq as s2s
from coursekit import tables
from coursekit import transformer as tf
from coursekit import translation as tr

SRC = tr.pad([[5, 9, 7, 11], [6, 8], [13]])  # (3, 5), right-padded with 0
TGT = tr.pad([[20, 21, 22], [23], [24, 25]], bos=True)


def model(norm_first=True, layers=2):
    torch.manual_seed(0)
    return tf.Transformer(50, d_model=16, heads=4, layers=layers, d_ff=24, dropout=0.0,
                          norm_first=norm_first).double().eval()


def copy_attention(ours: tf.MultiHeadAttention, theirs: nn.MultiheadAttention) -> None:
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.cat([ours.W_q.weight, ours.W_k.weight, ours.W_v.weight]))
        theirs.in_proj_bias.copy_(torch.cat([ours.W_q.bias, ours.W_k.bias, ours.W_v.bias]))
        theirs.out_proj.weight.copy_(ours.W_o.weight)
        theirs.out_proj.bias.copy_(ours.W_o.bias)


def copy_feed_forward(ours: tf.FeedForward, theirs) -> None:
    theirs.linear1.load_state_dict(ours[0].state_dict())
    theirs.linear2.load_state_dict(ours[3].state_dict())


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_block_is_pytorchs_encoder_layer(norm_first):
    torch.manual_seed(1)
    ours = tf.EncoderBlock(16, 4, 24, dropout=0.0, norm_first=norm_first).double().eval()
    theirs = nn.TransformerEncoderLayer(16, 4, 24, dropout=0.0, batch_first=True, norm_first=norm_first).double().eval()
    copy_attention(ours.attention, theirs.self_attn)
    copy_feed_forward(ours.feed_forward, theirs)
    theirs.norm1.load_state_dict(ours.norm1.state_dict())
    theirs.norm2.load_state_dict(ours.norm2.state_dict())
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    padding = SRC == tr.PAD  # (3, 5), True at padding: PyTorch's convention, the opposite of ours
    out = ours(x, (~padding)[:, None, None, :])
    torch.testing.assert_close(out[~padding], theirs(x, src_key_padding_mask=padding)[~padding])


@pytest.mark.parametrize("norm_first", [True, False])
def test_decoder_block_is_pytorchs_decoder_layer(norm_first):
    torch.manual_seed(2)
    ours = tf.DecoderBlock(16, 4, 24, dropout=0.0, norm_first=norm_first).double().eval()
    theirs = nn.TransformerDecoderLayer(16, 4, 24, dropout=0.0, batch_first=True, norm_first=norm_first).double().eval()
    copy_attention(ours.self_attention, theirs.self_attn)
    copy_attention(ours.cross_attention, theirs.multihead_attn)
    copy_feed_forward(ours.feed_forward, theirs)
    for i in (1, 2, 3):
        getattr(theirs, f"norm{i}").load_state_dict(getattr(ours, f"norm{i}").state_dict())
    y, memory = torch.randn(3, 4, 16, dtype=torch.float64), torch.randn(3, 5, 16, dtype=torch.float64)
    padding = SRC == tr.PAD
    out = ours(y, memory, tf.causal_mask(4), (~padding)[:, None, None, :])
    expected = theirs(y, memory, tgt_mask=nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64),
                      memory_key_padding_mask=padding)
    torch.testing.assert_close(out, expected)


def test_positions_follow_the_papers_formula():
    pe = tf.sinusoidal_positions(30, 8)
    for p in (0, 7, 29):
        for i in range(4):
            angle = p / 10000 ** (2 * i / 8)
            assert pe[p, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert pe[p, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


@pytest.mark.parametrize("norm_first", [True, False])
def test_the_decoder_never_looks_ahead(norm_first):
    m = model(norm_first)
    logits = m(SRC, TGT[:, :-1])  # (3, 4, V)
    changed = TGT[:, :-1].clone()
    changed[:, 2:] = 33  # every future token from position 2 on
    again = m(SRC, changed)
    torch.testing.assert_close(again[:, :2], logits[:, :2])
    assert not torch.allclose(again[:, 2], logits[:, 2]), "position 2 must read its own input"


@pytest.mark.parametrize("norm_first", [True, False])
def test_teacher_forcing_equals_stepping_the_decoder(norm_first):
    m = model(norm_first)
    logits = m(SRC, TGT[:, :-1])
    memory, prefix = m.encode(SRC)
    for t in range(TGT.size(1) - 1):
        step, prefix = m.decode_step(TGT[:, t], prefix, memory, SRC != tr.PAD)
        torch.testing.assert_close(step, logits[:, t])
    assert prefix.tolist() == TGT[:, :-1].tolist(), "the state is the prefix read so far"


def test_padding_changes_nothing():
    m = model()
    alone = SRC[1:2, :3]  # the second sentence without its padding
    torch.testing.assert_close(m(alone, TGT[1:2, :-1]), m(SRC, TGT[:, :-1])[1:2])


def test_output_is_tied_to_the_embedding():
    m = model()
    assert not any(p is not m.embedding.weight and p.shape == m.embedding.weight.shape for p in m.parameters())
    y = torch.randn(2, 16, dtype=torch.float64)
    torch.testing.assert_close(m.logits(y), y @ m.embedding.weight.T)


def test_attention_maps_are_the_weights_the_layers_use():
    m = model()
    maps = m.attention_maps(SRC, TGT[:, :-1])
    # (layers, B, heads, queries, keys): S = 5 source positions, T = 4 decoder inputs
    assert maps["encoder"].shape == (2, 3, 4, 5, 5) and maps["cross"].shape == (2, 3, 4, 4, 5)
    assert maps["decoder"].shape == (2, 3, 4, 4, 4)
    for weights in maps.values():
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
    padding = (SRC == tr.PAD)[None, :, None, None, :]  # (1, B, 1, 1, S)
    assert (maps["encoder"].masked_select(padding) == 0).all() and (maps["cross"].masked_select(padding) == 0).all()
    assert (maps["decoder"].triu(diagonal=1) == 0).all(), "no weight on the future"
    # the explicit path that keeps the weights computes what the fused kernel computes
    assert all(not a.keep_weights for group in m.attention_modules().values() for a in group)
    for a in (a for group in m.attention_modules().values() for a in group):
        a.keep_weights = True
    kept = m(SRC, TGT[:, :-1])
    for a in (a for group in m.attention_modules().values() for a in group):
        a.keep_weights = False
    torch.testing.assert_close(kept, m(SRC, TGT[:, :-1]))


def test_train_config_builds_and_names_the_transformer():
    config = s2s.TrainConfig(layers=2, embed=16, heads=4, d_ff=24)
    assert config.name == "transformer" and isinstance(config.model(50), tf.Transformer)
    assert s2s.TrainConfig(layers=2, norm_first=False).name == "transformer-postnorm"


# --------------------------------------------------------------------------- what is shipped

def test_comparison_is_recomputed_from_the_outputs_and_the_measured_throughput():
    rows = {r["model"]: r for r in tables.read_table(tf.COMPARISON_PATH)}
    speed = {(r["model"], r["batch_size"]): r for r in tables.read_table(tf.THROUGHPUT_PATH)}
    references = [p.tgt for p in tr.split("test")]
    assert set(rows) == set(tf.COMPARED)
    for name, row in rows.items():
        hyps = [r["hypothesis"] for r in s2s.read_outputs("bible", name)]
        assert row["bleu"] == pytest.approx(tr.bleu(hyps, references).score, abs=1e-3)
        assert row["chrf"] == pytest.approx(tr.chrf(hyps, references).score, abs=1e-3)
        assert row["bleu_low"] <= row["bleu"] <= row["bleu_high"]
        _, ckpt = s2s.load("bible", model=name)
        assert row["steps"] == ckpt["history"]["step"][-1] and row["parameters"] == speed[name, 64]["parameters"]
        assert row["training_minutes"] == pytest.approx(row["steps"] * speed[name, 64]["seconds_per_step"] / 60,
                                                        rel=1e-3)
    beam = [r["beam"] for r in tables.read_table(tf.BEAM_OUTPUTS_PATH, ["beam"])]
    assert rows["transformer"]["beam_bleu"] == pytest.approx(tr.bleu(beam, references).score, abs=1e-3)


def test_generation_file_covers_every_length_for_both_models():
    rows = tables.read_table(tf.GENERATION_PATH)
    for name in tf.COMPARED[1:]:
        times = [r for r in rows if r["model"] == name]
        assert [r["tokens_so_far"] for r in times] == list(tf.GENERATION_LENGTHS)
        assert all(r["ms_per_token"] > 0 for r in times)
