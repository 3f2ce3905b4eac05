"""Chapter 09's tiny BERT (coursekit.bert): its tokenizer, BERT's 15% / 80-10-10 masking, and a model whose
[PAD] positions change nothing and whose masked-LM head is tied to its input embedding."""
import pytest
import torch

from coursekit import bert


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
