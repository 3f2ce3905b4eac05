"""Chapter 04's encoder-decoder (coursekit.seq2seq): the model against step-by-step and from-scratch
computations, the synthetic task's definition, and the shipped checkpoints and results files against
what they claim."""
import math

import pytest
import torch
import torch.nn.functional as F

from coursekit import seq2seq as s2s
from coursekit import translation as tr


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return s2s.Seq2Seq(50, embed=8, hidden=12, dropout=0.0).double().eval()


def _sources():
    return tr.pad([[5, 9, 7, 11], [6, 8], [13]])  # (3, 5): ids <eos>, right-padded with 0


def test_encoder_state_ignores_padding(model):
    memory, c = model.encode(_sources())
    for i, row in enumerate(_sources()):
        alone = row[row != tr.PAD].unsqueeze(0)  # the same sentence without padding
        m1, c1 = model.encode(alone)
        torch.testing.assert_close(c[i], c1[0])
        torch.testing.assert_close(memory[i, :alone.size(1)], m1[0])
        assert (memory[i, alone.size(1):] == 0).all(), "memory is zero at the padding"


def test_teacher_forcing_equals_stepping_the_decoder(model):
    src = _sources()
    tgt = tr.pad([[20, 21, 22], [23], [24, 25]], bos=True)  # (3, 5)
    logits = model(src, tgt[:, :-1])  # (3, 4, V)
    memory, state = model.encode(src)
    for t in range(tgt.size(1) - 1):
        step, state = model.decode_step(tgt[:, t], state, memory, src != tr.PAD)
        torch.testing.assert_close(logits[:, t], step)


def test_decoder_depends_on_the_source(model):
    tgt = tr.pad([[20, 21]], bos=True)
    a = model(tr.pad([[5, 6, 7]]), tgt[:, :-1])
    b = model(tr.pad([[8, 9, 10]]), tgt[:, :-1])
    assert (a - b).abs().max() > 1e-3


def test_loss_per_token_is_the_mean_over_real_target_tokens(model):
    src = _sources()
    tgt = tr.pad([[20, 21, 22], [23], [24, 25]], bos=True)
    logp = torch.log_softmax(model(src, tgt[:, :-1]), dim=-1)
    nll = [-logp[b, t, tgt[b, t + 1]] for b in range(3) for t in range(tgt.size(1) - 1) if tgt[b, t + 1] != tr.PAD]
    assert len(nll) == 3 + 1 + 2 + 3  # each row's words and its <eos>
    torch.testing.assert_close(s2s.loss_per_token(model, src, tgt), torch.stack(nll).mean())


def test_greedy_picks_the_argmax_of_the_full_forward_at_every_step(model):
    src = _sources()
    out = model.greedy(src, max_len=7)
    for b in range(src.size(0)):
        prefix = [tr.BOS]
        for t in range(out.size(1)):
            token = int(out[b, t])
            if prefix[-1] == tr.EOS:
                assert token == tr.PAD, "after <eos> a row is padding"
                continue
            logits = model(src[b:b + 1], torch.tensor([prefix]))[0, -1]  # recomputed from scratch
            assert token == int(logits.argmax())
            prefix.append(token)


def test_greedy_stops_when_every_row_has_ended():
    model = s2s.Seq2Seq(10, embed=4, hidden=4, dropout=0.0).eval()
    with torch.no_grad():
        model.to_embedding.bias.zero_()
        model.to_embedding.weight.zero_()
        model.embedding.weight.zero_()
        model.embedding.weight[tr.EOS, 0] = 1.0
        model.to_embedding.bias[0] = 1.0  # every logit is 0 except <eos>'s
    out = model.greedy(tr.pad([[5, 6], [7]]), max_len=50)
    assert out.tolist() == [[tr.EOS], [tr.EOS]]


def test_learning_rate_warms_up_then_decays_to_a_tenth():
    config = s2s.TrainConfig(lr=1e-3, warmup=10, max_steps=110)
    assert s2s.learning_rate(0, config) == pytest.approx(1e-4)
    assert s2s.learning_rate(9, config) == pytest.approx(1e-3)
    assert s2s.learning_rate(60, config) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))
    assert s2s.learning_rate(110, config) == pytest.approx(1e-4)


def test_synthetic_task_is_a_one_to_one_lexicon_in_source_order():
    task = s2s.SyntheticTask(words=12, min_len=3, max_len=9, seed=1)
    assert sorted(task.lexicon.tolist()) == list(range(12)), "the lexicon is one-to-one"
    srcs, tgts = task.sample(200, seed=3)
    w = 12
    for src, tgt in zip(srcs, tgts):
        assert 3 <= len(src) <= 9
        assert tgt == [4 + w + int(task.lexicon[i - 4]) for i in src]
    assert {len(src) for src in srcs} == set(range(3, 10)), "every length occurs"
    assert task.text([4, 4 + w]) == f"{task.source_words[0]} {task.target_words[0]}"
    assert task.vocab_size == 4 + 2 * w


def test_copy_test_set_has_every_length_equally_often():
    src, _ = s2s.copy_test_set(per_length=3)
    counts = {n: sum(len(s) == n for s in src) for n in range(s2s.COPY_TASK.min_len, s2s.COPY_TASK.max_len + 1)}
    assert set(counts.values()) == {3}


# --------------------------------------------------------------------------- what is shipped

SHIPPED = [(task, model) for model in ("seq2seq", "attention-additive") for task in s2s.TASKS] + [("bible", "transformer")]


@pytest.mark.parametrize("task, name", SHIPPED)
def test_checkpoint_is_small_and_its_validation_loss_is_the_best_of_its_history(task, name):
    path = s2s.checkpoint_path(task, name)
    assert path.stat().st_size < 10 * 2**20, f"{path.name} is {path.stat().st_size / 2**20:.1f} MiB"
    torch.set_num_threads(1)
    model, ckpt = s2s.load(task, model=name)
    config = s2s.TrainConfig(**ckpt["config"])
    assert config.name == name
    assert ckpt["config"]["command"].startswith("python -m coursekit.seq2seq train")
    history = ckpt["history"]
    assert history["step"][-1] == config.max_steps
    measured = s2s.mean_loss(model, s2s.validation_batches(config), "cpu")
    # the float16 weights as shipped against the float32 ones the history measured
    assert measured == pytest.approx(min(history["val"]), abs=0.02)


@pytest.mark.parametrize("task, name", SHIPPED)
def test_shipped_outputs_are_the_checkpoints_greedy_translations(task, name):
    rows = s2s.read_outputs(task, name)
    sources, refs, _ = s2s.test_pairs(task)
    assert [r["source"] for r in rows] == sources and [r["reference"] for r in rows] == refs
    torch.set_num_threads(1)
    model, _ = s2s.load(task, model=name)
    if task == "copy":
        src, _ = s2s.copy_test_set()
        picked = list(range(0, len(src), 37))
        hyps = s2s.COPY_TASK.decode(model.greedy(tr.pad([src[i] for i in picked]), 60))
    else:
        picked = list(range(0, len(rows), 97))
        hyps = s2s.translate(model, [sources[i] for i in picked])
    same = sum(h == rows[i]["hypothesis"] for h, i in zip(hyps, picked))
    # Batches of other sizes round differently; a near-tie of two tokens may flip, nothing more.
    assert same >= math.ceil(0.95 * len(picked)), f"{same} of {len(picked)} re-decoded sentences agree"


@pytest.mark.parametrize("task, name", SHIPPED)
def test_bleu_by_length_file_is_recomputed_from_the_outputs(task, name):
    rows = s2s.read_outputs(task, name)
    _, _, texts = s2s.test_pairs(task)
    again = tr.bleu_by_length([r["hypothesis"] for r in rows], [r["reference"] for r in rows], texts,
                              s2s.buckets(task), n_boot=200)
    shipped = s2s.read_by_length(task, name)
    assert [r["bucket"] for r in shipped] == [r["bucket"] for r in again]
    for a, b in zip(shipped, again):
        assert a["n"] == b["n"]
        assert a["bleu"] == pytest.approx(b["bleu"], abs=0.01) and a["chrf"] == pytest.approx(b["chrf"], abs=0.01)
        assert a["bleu_low"] <= a["bleu"] <= a["bleu_high"]


def test_linear_probe_recovers_a_linear_map_and_hits_are_counted_per_distinct_subword():
    g = torch.Generator().manual_seed(0)
    X, W = torch.randn(200, 6, generator=g), torch.randn(6, 9, generator=g)
    probe = s2s.LinearProbe.fit(X, X @ W + 0.5, ridge=1e-9)
    torch.testing.assert_close(probe(X), X @ W + 0.5, atol=1e-4, rtol=1e-4)
    scores = torch.tensor([[9.0, 9.0, 9.0, 9.0, 1.0, 3.0, 2.0]])  # the specials' scores never count
    recall, positions = s2s.probe_hits(scores, [[4, 5, 4, 6]])  # distinct {4, 5, 6}: the guess is {5, 6, 4}
    assert recall[0] == 1.0 and positions[0].tolist() == [True] * 4
    recall, positions = s2s.probe_hits(scores, [[4, 6]])  # guess {5, 6}: half of {4, 6}
    assert recall[0] == 0.5 and positions[0].tolist() == [False, True]


def test_greedy_steps_are_greedy_decoding(model):
    steps = s2s.greedy_steps(model, [5, 9, 7], k=4, max_len=6)
    assert [st["id"] for st in steps] == [i for i in model.greedy(tr.pad([[5, 9, 7]]), 6)[0].tolist() if i != tr.PAD]
    assert all(st["top"][0] == (st["id"], st["p"]) and len(st["top"]) == 4 and "alpha" not in st for st in steps)
