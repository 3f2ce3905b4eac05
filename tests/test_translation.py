"""The translation task of chapters 04, 05, 06 and 08: data, splits, tokenizer, scores."""
import json
import subprocess
import sys
import unicodedata

import numpy as np
import pytest
import torch
from sacrebleu.metrics import BLEU, CHRF

from coursekit import corpora
from coursekit import translation as tr

EXPECTED = {  # pairs, source words, target words, dropped for length / alignment / duplicate
    "train": (25_722, 573_222, 612_297, 308, 51, 0),
    "val": (1_425, 31_776, 34_152, 21, 7, 27),
    "test": (2_991, 66_754, 71_304, 35, 6, 58),
}
TEST_BUCKETS = {"1-10": 211, "11-20": 1_232, "21-30": 968, "31-40": 450, "41-50": 130}


def sample(pairs, k=250):
    """Every n-th pair: a deterministic sample spread over the whole split."""
    return pairs[:: max(1, len(pairs) // k)]


# ------------------------------------------------------------------------------------- data, splits

def test_every_verse_is_loaded_once_in_canonical_order():
    verses = tr.verses()
    assert len(verses) == 30_651
    assert len({p.key for p in verses}) == len(verses)
    assert verses[0].key == ("Gen", 1, 1) and verses[-1].book == "Rev"
    assert all(p.src and p.tgt for p in verses)


def test_split_sizes():
    summary = tr.split_summary()
    for name, (pairs, src_words, tgt_words, length, alignment, duplicate) in EXPECTED.items():
        assert summary[name] == {"pairs": pairs, "src_words": src_words, "tgt_words": tgt_words,
                                 "length": length, "alignment": alignment, "duplicate": duplicate}, name
    # every verse is kept in one split or dropped by one filter
    assert sum(s["pairs"] + s["length"] + s["alignment"] + s["duplicate"] for s in summary.values()) == 30_651


def test_splits_follow_the_chapter_rule_and_share_no_chapter():
    index = {}
    for pair in tr.verses():
        index.setdefault((pair.book, pair.chapter), len(index))
    assert len(index) == 1_166
    chapters = {}
    for name in tr.SPLITS:
        chapters[name] = {(p.book, p.chapter) for p in tr.split(name)}
        for book, chapter in chapters[name]:
            k = index[(book, chapter)]
            assert tr._split_of_chapter(k) == name == ("val" if k % 20 == 9 else "test" if k % 20 in (4, 14)
                                                       else "train")
    assert not chapters["train"] & chapters["val"]
    assert not chapters["train"] & chapters["test"]
    assert not chapters["val"] & chapters["test"]
    assert {p.book for p in tr.split("test")} >= {"Gen", "Ps", "Isa", "Matt", "Acts"}, "test spans the Bible"
    for name in tr.SPLITS:  # canonical order within each split
        keys = [(index[(p.book, p.chapter)], p.verse) for p in tr.split(name)]
        assert keys == sorted(keys), name


def test_no_sentence_is_shared_between_splits():
    texts = {name: ([p.src for p in tr.split(name)], [p.tgt for p in tr.split(name)]) for name in tr.SPLITS}
    for side in (0, 1):
        train, val, test = (set(texts[name][side]) for name in tr.SPLITS)
        assert not train & val and not train & test and not val & test, side
        for name in ("val", "test"):
            assert len(set(texts[name][side])) == len(texts[name][side]), f"{name} repeats a sentence"


def test_length_and_alignment_filters():
    for name in tr.SPLITS:
        for pair in tr.split(name):
            n_src, n_tgt = pair.src_words, tr.source_words(pair.tgt)
            assert 1 <= n_src <= tr.MAX_SOURCE_WORDS
            longer, shorter = max(n_src, n_tgt), min(n_src, n_tgt)
            assert longer <= tr.RATIO_MIN_WORDS or longer <= tr.MAX_LENGTH_RATIO * shorter, pair.key
    longest = max(tr.verses(), key=lambda p: p.src_words)
    assert longest.src_words > tr.MAX_SOURCE_WORDS  # the filter has work to do
    assert max(p.src_words for p in tr.split("test")) == tr.MAX_SOURCE_WORDS  # and keeps all it allows
    assert tr.source_words("¿Y dijo Dios: Sea la luz?") == 6


def test_length_buckets_and_their_test_sizes():
    sizes = tr.bucket_sizes("test")
    assert sizes == TEST_BUCKETS
    assert sum(sizes.values()) == len(tr.split("test")), "the buckets cover the test split"
    for name in tr.SPLITS:
        assert sum(tr.bucket_sizes(name).values()) == len(tr.split(name))
    assert [tr.length_bucket(n) for n in (0, 1, 10, 11, 50, 51)] == [None, "1-10", "1-10", "11-20", "41-50", None]
    assert tr.bucket_sizes("test", buckets=[(1, 25), (26, 50)]) == {
        "1-25": sum(1 for p in tr.split("test") if p.src_words <= 25),
        "26-50": sum(1 for p in tr.split("test") if p.src_words > 25)}


def test_normalise():
    assert tr.normalise("  Dijo:\t “Sea la luz” –\u00a0y ‘fué’\n ") == 'Dijo: "Sea la luz" — y \'fué\''
    decomposed = unicodedata.normalize("NFD", "fué Jehová")
    assert decomposed != "fué Jehová" and tr.normalise(decomposed) == "fué Jehová"
    for pair in sample(tr.verses(), 500):  # what corpora.normalise does, plus whitespace
        for text in (pair.src, pair.tgt):
            assert tr.normalise(text) == text == " ".join(corpora.normalise(text).split())
    assert not any(c in p.tgt + p.src for p in tr.verses() for c in "“”‘’–")


def test_drop_capitals_are_recased_and_other_capitals_kept():
    by_key = {p.key: p for p in tr.verses()}
    assert by_key[("Gen", 1, 1)].src == "En el principio crió Dios los cielos y la tierra."
    assert by_key[("Ps", 23, 1)].src == "Salmo de David. Jehová es mi pastor; nada me faltará."
    assert by_key[("Luke", 17, 1)].src.startswith("Y á sus discípulos dice:")
    assert by_key[("Ps", 120, 1)].src.startswith("Cántico gradual. A Jehová llamé")
    assert "YO SOY EL QUE SOY" in by_key[("Exod", 3, 14)].src  # not a chapter opening: unchanged
    assert by_key[("Gen", 1, 1)].tgt == "In the beginning, God created the heavens and the earth."
    assert tr._fix_drop_capitals("ESCRIBE al ángel en EFESO:", {}) == "Escribe al ángel en EFESO:"
    assert tr._fix_drop_capitals("Dijo PABLO:", {}) == "Dijo PABLO:", "capitals in mid-sentence stay"


# ------------------------------------------------------------------------------------------- tokenizer

def test_tokenizer_size_and_special_ids():
    tok = tr.tokenizer()
    assert tok.get_vocab_size() == tr.VOCAB_SIZE == 4000
    assert [tok.token_to_id(t) for t in tr.SPECIAL_TOKENS] == [tr.PAD, tr.BOS, tr.EOS, tr.UNK] == [0, 1, 2, 3]
    assert tr.tokenizer() is tok, "cached"


@pytest.mark.parametrize("name", tr.SPLITS)
def test_round_trip_on_every_split(name):
    pairs = sample(tr.split(name))
    texts = [p.src for p in pairs] + [p.tgt for p in pairs]
    ids = tr.token_ids(texts)
    assert not any(tr.UNK in row for row in ids), "every character of the data is in the alphabet"
    assert tr.decode([row + [tr.EOS] for row in ids]) == texts
    batch = tr.encode(texts)
    assert tr.decode(batch) == texts


def test_tokenizer_normalises_as_normalise_does():
    for text in ["  Dijo:\t “Sea la luz” –\u00a0y ‘fué’\n ", unicodedata.normalize("NFD", "¿Quién? Él, Jehová."),
                 'He said, "Let there be light."', "", "   ", "Moisés (Moses) — 1909"]:
        assert tr.decode(tr.encode(text)) == [tr.normalise(text)], repr(text)
        assert tr.token_ids(text) == [tr.tokenizer().encode(text, add_special_tokens=False).ids], repr(text)
    texts = [t for p in sample(tr.split("test"), 100) for t in (p.src, p.tgt)]
    assert tr.token_ids(texts) == [e.ids for e in tr.tokenizer().encode_batch(texts, add_special_tokens=False)]
    # characters outside the alphabet become <unk>, which decoding drops
    ids = tr.token_ids("a ☃ b")[0]
    assert tr.UNK in ids and tr.decode(ids) == "a b"


def test_encode_pads_batch_first():
    texts = ["Y dijo Dios: Sea la luz.", "Jesús lloró.", ""]
    ids = tr.token_ids(texts)
    src = tr.encode(texts)
    assert src.dtype == torch.long and src.shape == (3, max(len(r) for r in ids) + 1)
    assert tr.lengths(src).tolist() == [len(r) + 1 for r in ids]
    for row, n in zip(src, tr.lengths(src)):
        assert row[n - 1] == tr.EOS and (row[n:] == tr.PAD).all() and (row[:n - 1] > tr.UNK).all()
    tgt = tr.encode(texts, bos=True)
    assert (tgt[:, 0] == tr.BOS).all() and tgt.shape[1] == src.shape[1] + 1
    assert tr.encode(texts, bos=False, eos=False).shape == (3, max(len(r) for r in ids))
    cut = tr.encode(texts, bos=True, max_len=5)
    assert cut.shape == (3, 5) and (cut[:2, -1] == tr.EOS).all()
    assert tr.encode("Jesús lloró.").shape == (1, len(ids[1]) + 1)
    assert tr.decode(tgt) == texts and tr.decode(src[1]) == texts[1]
    assert tr.decode([[tr.BOS, *ids[1], tr.EOS, *ids[0]]]) == [texts[1]], "stops at the first <eos>"


def test_batches_cover_the_split_once_and_are_seeded():
    val = tr.split("val")
    got = list(tr.batches("val", batch_size=100, seed=3))
    assert sum(s.shape[0] for s, _ in got) == len(val)
    assert all(s.shape[0] == t.shape[0] <= 100 for s, t in got)
    assert all((t[:, 0] == tr.BOS).all() and (tr.lengths(s) > 0).all() for s, t in got)
    sources = sorted(text for s, _ in got for text in tr.decode(s))
    assert sources == sorted(p.src for p in val)
    again = list(tr.batches("val", batch_size=100, seed=3))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(got, again))
    other = list(tr.batches("val", batch_size=100, seed=4))
    assert not all(a[0].shape == b[0].shape and torch.equal(a[0], b[0]) for a, b in zip(got, other))
    # unshuffled: canonical order, sorted by source length within pools of 50 batches
    plain = list(tr.batches("val", batch_size=4, shuffle=False))
    first_pool = [tr.lengths(s).tolist() for s, _ in plain[:50]]
    assert sum(first_pool, []) == sorted(len(ids) + 1 for ids in tr.encoded("val")[0][:200])


def test_the_shipped_tokenizer_is_what_training_makes():
    """Trained again on the training split, the tokenizer is the shipped file (BPE training is deterministic)."""
    assert tr.training_texts()[:2] == [tr.split("train")[0].src, tr.split("train")[0].tgt]
    assert json.loads(tr.train_tokenizer().to_str()) == json.loads(tr.TOKENIZER_FILE.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------- scores

HYPS = ["a b c d x f", "a b c d"]
REFS = ["a b c d e f", "a b c d e f"]


def test_bleu_worked_by_hand():
    # sentence 1: clipped precisions 5/6, 3/5, 2/4, 1/3, same length: BLEU = (5/6*3/5*2/4*1/3)^(1/4)
    assert tr.bleu(HYPS[:1], REFS[:1]).score == pytest.approx(100 * (1 / 12) ** 0.25)
    # sentence 2: every n-gram matches, 4 words for 6: brevity penalty exp(1 - 6/4)
    assert tr.bleu(HYPS[1:], REFS[1:]).score == pytest.approx(100 * np.exp(-0.5))
    # the corpus sums the counts (9/10, 6/8, 4/6, 2/4; 10 words for 12), not the sentence scores
    corpus = (9 / 10 * 6 / 8 * 4 / 6 * 2 / 4) ** 0.25 * np.exp(1 - 12 / 10)
    assert tr.bleu(HYPS, REFS).score == pytest.approx(100 * corpus)
    assert tr.bleu(["the cat"], ["the cat"]).score == 0.0, "under 4 words, no 4-gram: 0 (no effective order)"
    assert tr.bleu(REFS, REFS).score == pytest.approx(100.0)
    with pytest.raises(ValueError):
        tr.bleu(HYPS, REFS[:1])


def test_bleu_and_chrf_agree_with_the_sacrebleu_command_line(tmp_path):
    refs = [p.tgt for p in tr.split("test")[:40]]
    hyps = [" ".join(r.split()[: max(1, len(r.split()) * (3 + i % 3) // 5)]) for i, r in enumerate(refs)]
    (tmp_path / "ref.txt").write_text("\n".join(refs) + "\n", encoding="utf-8")
    (tmp_path / "hyp.txt").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "sacrebleu", str(tmp_path / "ref.txt"), "-i", str(tmp_path / "hyp.txt"),
                          "-m", "bleu", "chrf", "-b", "-w", "4"], capture_output=True, text=True, check=True)
    cli_bleu, cli_chrf = json.loads(run.stdout)
    assert round(tr.bleu(hyps, refs).score, 4) == cli_bleu
    assert round(tr.chrf(hyps, refs).score, 4) == cli_chrf
    scores = tr.evaluate(hyps, refs, n_boot=200)
    assert scores["bleu"].score == pytest.approx(cli_bleu, abs=1e-4)
    assert scores["chrf"].score == pytest.approx(cli_chrf, abs=1e-4)
    assert scores["bleu"].signature == "nrefs:1|bs:200|seed:12345|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
    assert scores["chrf"].signature.startswith("nrefs:1|bs:200|seed:12345|case:mixed|eff:yes|nc:6|nw:0")
    assert str(scores["bleu"]).startswith("BLEU ")


def _noisy_system(refs, keep_every):
    return [" ".join(w for j, w in enumerate(r.split()) if j % keep_every) for r in refs]


def test_bootstrap_intervals_are_sacrebleus_seeded_and_hold_the_estimate(monkeypatch):
    monkeypatch.delenv("SACREBLEU_SEED", raising=False)
    refs = [p.tgt for p in tr.split("val")[:300]]
    hyps = _noisy_system(refs, 4)
    for name, metric in (("bleu", BLEU()), ("chrf", CHRF())):
        score, samples = tr.bootstrap(hyps, refs, name, n_boot=300)
        assert score.low < score.score < score.high, score
        theirs = metric.corpus_score(hyps, [refs], n_bootstrap=300)  # sacreBLEU's own, seed 12345
        assert score.score == pytest.approx(theirs.score)
        # the same draws; sacreBLEU sums the statistics in float32, hence the relative tolerance
        assert samples.mean() == pytest.approx(theirs._mean, rel=1e-6)
        assert (score.high - score.low) / 2 == pytest.approx(theirs._ci, rel=1e-5)
    again = tr.bootstrap(hyps, refs, "bleu", n_boot=300)[0]
    other = tr.bootstrap(hyps, refs, "bleu", n_boot=300, seed=1)[0]
    assert again == tr.bootstrap(hyps, refs, "bleu", n_boot=300)[0]
    assert (other.low, other.high) != (again.low, again.high) and other.score == again.score


def test_paired_bootstrap():
    refs = [p.tgt for p in tr.split("val")[:200]]
    worse, better = _noisy_system(refs, 3), _noisy_system(refs, 6)
    same = tr.paired_bootstrap(worse, worse, refs, n_boot=200)
    assert same["delta"] == 0 and same["p_value"] == 1.0
    result = tr.paired_bootstrap(worse, better, refs, n_boot=200)
    assert result["b"].score > result["a"].score and result["delta"] > 0
    assert result["delta_low"] <= result["delta"] <= result["delta_high"] and result["p_value"] < 0.05
    assert result["a"].score == pytest.approx(tr.bleu(worse, refs).score)


def test_bleu_by_length():
    test = sample(tr.split("test"), 600)
    refs, sources = [p.tgt for p in test], [p.src for p in test]
    hyps = _noisy_system(refs, 5)
    rows = tr.bleu_by_length(hyps, refs, sources, n_boot=100)
    assert [r["bucket"] for r in rows] == list(TEST_BUCKETS)
    assert sum(r["n"] for r in rows) == len(test)
    for row in rows:
        members = [i for i, s in enumerate(sources) if tr.length_bucket(tr.source_words(s)) == row["bucket"]]
        assert row["n"] == len(members)
        assert row["bleu"] == pytest.approx(tr.bleu([hyps[i] for i in members], [refs[i] for i in members]).score)
        assert row["bleu_low"] <= row["bleu"] <= row["bleu_high"]
        assert row["chrf_low"] <= row["chrf"] <= row["chrf_high"]
