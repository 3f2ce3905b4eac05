"""Chapter 09's tiny BERT (coursekit.bert): its tokenizer, BERT's 15% / 80-10-10 masking, and a model whose
[PAD] positions change nothing and whose masked-LM head is tied to its input embedding."""
import math

import pytest
import torch

from coursekit import bert, polarity


def test_tokenizer_is_bert_style_wordpiece_with_its_template():
    tok = bert.tokenizer()
    assert [tok.id_to_token(i) for i in range(5)] == list(bert.SPECIAL_TOKENS)
    e = tok.encode("The man went to [MASK] store", "penguin [MASK] are flightless birds")
    assert e.tokens[0] == "[CLS]" and e.tokens.count("[SEP]") == 2 and "[MASK]" in e.tokens
    assert e.type_ids[:e.tokens.index("[SEP]") + 1] == [0] * (e.tokens.index("[SEP]") + 1)
    assert set(e.type_ids[e.tokens.index("[SEP]") + 1:]) == {1}
    assert any(t.startswith("##") for t in e.tokens), "a rare word is split into pieces"


def test_encode_cuts_long_sentences_keeping_their_sep():
    ids, special = bert.encode(["word " * 200, "short"], max_len=16)
    assert ids.shape == (2, 16) and ids[0, -1] == bert.SEP and ids[0, 0] == bert.CLS
    assert special.tolist() == (ids <= bert.MASK).tolist() and special[1, 3:].all()


def test_masking_follows_berts_proportions_and_spares_special_tokens():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (400, 250), generator=g)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    inputs, labels = bert.mask_for_mlm(ids, special, g, vocab_size=1000)
    chosen = labels != bert.IGNORE
    n = int(chosen.sum())
    assert not chosen[special].any() and (inputs[special] == ids[special]).all()
    assert n / (~special).sum().item() == pytest.approx(0.15, abs=0.005)  # 99,200 positions: sd 0.0011
    assert (labels[chosen] == ids[chosen]).all() and (inputs[~chosen] == ids[~chosen]).all()
    masked = (inputs[chosen] == bert.MASK).float().mean().item()
    kept = (inputs[chosen] == ids[chosen]).float().mean().item()
    assert masked == pytest.approx(0.8, abs=0.015) and kept == pytest.approx(0.1 + 0.1 / 995, abs=0.01)
    assert ((inputs[chosen] >= len(bert.SPECIAL_TOKENS)) | (inputs[chosen] == bert.MASK)).all()


def test_padding_changes_nothing_and_the_head_is_tied():
    torch.manual_seed(0)
    model = bert.TinyBert(vocab_size=50, d_model=16, heads=2, layers=2, d_ff=32, dropout=0.0).eval()
    ids = torch.tensor([[bert.CLS, 7, 8, 9, bert.SEP, bert.PAD, bert.PAD]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids)[:, :5], model(ids[:, :5]))
        h = torch.randn(3, 16)
        expected = model.mlm_transform(h) @ model.embeddings.token.weight.T + model.mlm_bias
        torch.testing.assert_close(model.mlm_logits(h), expected)


def test_pretraining_sequences_run_the_text_together_without_padding():
    rows = bert.pretraining_sequences(["one two three four five six"] * 10, max_len=8)
    assert all(r[0] == bert.CLS and r[-1] == bert.SEP for r in rows)
    assert all(len(r) == 8 for r in rows[:-1]) and bert.PAD not in sum(rows, [])


def test_mask_with_is_the_rule_its_docstring_states_position_by_position():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 60, (7, 40), generator=g)
    special = torch.rand(7, 40, generator=g) < 0.2
    u = torch.rand(7, 40, 3, generator=g)
    u[0, :3, 0] = 0.15  # exactly the rate: not chosen
    u[1, :4, :2] = torch.tensor([0.0, 0.8])  # exactly 0.8: a random piece, not [MASK]
    u[2, :4, :2] = torch.tensor([0.0, 0.9])  # exactly 0.9: unchanged
    before = ids.clone()
    inputs, labels = bert.mask_with(ids, special, u, vocab_size=60)
    assert torch.equal(ids, before), "the ids are not changed in place"
    rate, mask, random = (torch.tensor(x).item() for x in (0.15, 0.8, 0.9))  # the thresholds as float32 sees them
    for b in range(7):
        for t in range(40):
            choose, action, piece = u[b, t].tolist()
            if special[b, t] or not choose < rate:
                assert (inputs[b, t], labels[b, t]) == (ids[b, t], bert.IGNORE)
                continue
            assert labels[b, t] == ids[b, t]
            expected = bert.MASK if action < mask else 5 + math.floor(piece * 55) if action < random else ids[b, t]
            assert inputs[b, t] == expected


def test_parameter_count_is_that_of_transformers_bert():
    from transformers import BertConfig, BertModel

    for d, layers, heads, d_ff in ((64, 2, 4, 256), (96, 3, 3, 200)):
        config = BertConfig(vocab_size=300, hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=d_ff, max_position_embeddings=40, type_vocab_size=2)
        expected = sum(p.numel() for p in BertModel(config).parameters())
        assert bert.parameter_count(300, d, layers, d_ff, max_positions=40)["total"] == expected
    base = bert.parameter_count(30522, 768, 12, 3072)["total"]
    large = bert.parameter_count(30522, 1024, 24, 4096)["total"]
    assert 109e6 < base < 110e6 and 334e6 < large < 336e6  # Devlin et al.: 110M and 340M


def test_fill_mask_ranks_the_pieces_by_the_heads_probabilities():
    torch.manual_seed(0)
    model = bert.TinyBert(vocab_size=50, d_model=16, heads=2, layers=1, d_ff=32)
    ids = torch.tensor([bert.CLS, 7, bert.MASK, 9, bert.SEP])
    pieces, probabilities = bert.fill_mask(model, ids, k=3)
    assert not model.training and pieces.shape == probabilities.shape == (5, 3)
    with torch.no_grad():
        full = torch.softmax(model.mlm_logits(model(ids[None])[0]), -1)
    order = full.argsort(-1, descending=True)[:, :3]
    assert torch.equal(pieces, order) and torch.allclose(probabilities, full.gather(1, order))


def test_the_shipped_classifier_loads_and_gives_its_recorded_test_predictions():
    model, ckpt = bert.load_finetuned()
    texts, _ = polarity.split("test")
    recorded = polarity.read_results()["bert-tiny"]["test_predictions"]
    assert bert.predict(model, list(texts[:200])) == list(recorded[:200])
    assert ckpt["config"]["pretrained"] is True
