"""Chapter 09's data and its simplest model (coursekit.polarity): one fixed stratified split, a Wilson interval,
and a bag-of-n-grams logistic regression that is what its formula says."""
import math

import pytest
import torch

from coursekit import polarity


def test_split_is_stratified_disjoint_and_complete():
    texts, labels = polarity.sentences()
    assert len(texts) == 10_662 and sum(labels) == 5_331
    seen = set()
    for name in polarity.SPLITS:
        part, part_labels = polarity.split(name)
        indices = set(polarity._indices()[name])
        assert not indices & seen, f"{name} shares sentences with an earlier split"
        seen |= indices
        assert sum(part_labels) * 2 == len(part_labels), f"{name} is not half positive"
        assert len(part) == pytest.approx(len(texts) * polarity.SPLIT_FRACTIONS[polarity.SPLITS.index(name)], abs=2)
    assert seen == set(range(len(texts)))


def test_wilson_interval_is_the_score_tests_acceptance_region():
    # Wilson's interval holds the p0 that a score test at z = 1.96 does not reject: |p - p0| <= z sqrt(p0 (1 - p0) / n).
    # Its ends, found by bisection instead of the closed form:
    def end(p, n, inside, outside):
        for _ in range(100):
            mid = (inside + outside) / 2
            inside, outside = (mid, outside) if abs(p - mid) <= 1.96 * math.sqrt(mid * (1 - mid) / n) else (inside, mid)
        return 100 * inside

    acc, low, high = polarity.accuracy_interval([1] * 81 + [0] * 19, [1] * 100)
    assert acc == 81
    assert low == pytest.approx(end(0.81, 100, 0.81, 0.0), abs=1e-6)
    assert high == pytest.approx(end(0.81, 100, 0.81, 1.0), abs=1e-6)
    _, low_big, high_big = polarity.accuracy_interval([1] * 810 + [0] * 190, [1] * 1000)
    assert high_big - low_big < (high - low) / 3
    with pytest.raises(ValueError):
        polarity.accuracy_interval([1, 0], [1])


def test_bag_of_ngrams_marks_each_seen_word_and_bigram_once():
    vocabulary = polarity.ngram_vocabulary(["a good film", "a bad film", "good good"], min_count=1)
    X = polarity.bag_of_ngrams(["a good good film", "unseen words"], vocabulary)
    marked = {g for g, i in vocabulary.items() if X[0, i] == 1}
    assert marked == {"a", "good", "film", "a good", "good good", "good film"}
    assert X[1].sum() == 0


def test_logistic_regression_minimises_its_objective():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 5, generator=g, dtype=torch.float64)
    y = (X @ torch.tensor([1.0, -2.0, 0.5, 0.0, 0.0], dtype=torch.float64) > 0).double()
    w, b = polarity.logistic_regression(X, y, l2=0.1)

    def objective(w, b):
        return torch.nn.functional.binary_cross_entropy_with_logits(X @ w + b, y) + 0.05 * (w @ w)

    best = objective(w, b)
    for _ in range(20):  # no nearby point does better: a minimum, found by other means than the fit's
        step = 1e-3 * torch.randn(6, generator=g, dtype=torch.float64)
        assert objective(w + step[:5], b + step[5]) >= best - 1e-12
    grad_w = X.T @ (torch.sigmoid(X @ w + b) - y) / len(y) + 0.1 * w  # the gradient, by hand, is zero
    assert grad_w.abs().max() < 1e-5 and not math.isnan(float(best))


def test_results_round_trip_with_their_command_and_predictions(tmp_path, monkeypatch):
    from coursekit.tables import table_command

    monkeypatch.setattr(polarity, "RESULTS", tmp_path)
    val_labels, test_labels = polarity.split("val")[1], polarity.split("test")[1]
    test = [1 - y if i % 10 == 0 else y for i, y in enumerate(test_labels)]  # one in ten wrong
    path = polarity.write_result("m", "a model", val_labels, test, 1.5, 7, "python -m somewhere")
    (row,) = polarity.read_results().values()
    assert table_command(path) == "python -m somewhere" and row["model"] == "m"
    assert row["test_predictions"] == test and row["val_accuracy"] == 100
    assert row["test_accuracy"] == pytest.approx(100 * (1 - 107 / 1066), abs=1e-4)
    assert row["test_low"] < row["test_accuracy"] < row["test_high"]


def test_paired_difference_is_the_mean_gap_with_a_bootstrap_interval():
    labels = [1] * 1000
    a = [1] * 900 + [0] * 100  # 90% right
    b = [1] * 850 + [0] * 150  # 85% right, wrong wherever a is
    diff, low, high = polarity.paired_difference(a, b, labels)
    assert diff == pytest.approx(5.0)
    # The sentences where they differ: 50 of 1000, each +1: the gap's standard error is sqrt(p (1 - p) / n) with
    # p = 0.05, 0.69 points; a 95% interval is about +-1.35.
    assert low == pytest.approx(5.0 - 1.96 * 0.689, abs=0.3) and high == pytest.approx(5.0 + 1.96 * 0.689, abs=0.3)
    assert polarity.paired_difference(a, a, labels) == (0.0, 0.0, 0.0)


def test_every_shipped_result_is_what_its_predictions_score():
    from coursekit.tables import table_command

    results = polarity.read_results()
    assert {"bow", "minilm-frozen-mean", "minilm-finetuned"} <= set(results)
    test_labels = polarity.split("test")[1]
    for name, row in results.items():
        assert len(row["test_predictions"]) == len(test_labels) == polarity.TEST_SIZE
        accuracy, low, high = polarity.accuracy_interval(row["test_predictions"], test_labels)
        assert (row["test_accuracy"], row["test_low"], row["test_high"]) == pytest.approx((accuracy, low, high), abs=1e-3)
        assert table_command(polarity.RESULTS / f"polarity_{name}.csv").startswith("python -m coursekit.")


def test_the_bag_of_words_baseline_is_refitted_to_its_shipped_result():
    """A convex fit: refitting at the shipped L2 gives the shipped predictions (all but a near-tie or two)."""
    row = polarity.read_results()["bow"]
    l2 = float(row["description"].rsplit("L2 ", 1)[1].rstrip(")"))
    texts, labels = polarity.split("train")
    vocabulary = polarity.ngram_vocabulary(texts)
    w, b = polarity.logistic_regression(polarity.bag_of_ngrams(texts, vocabulary), labels, l2)
    test = ((polarity.bag_of_ngrams(polarity.split("test")[0], vocabulary) @ w + b) > 0).long().tolist()
    assert sum(p != q for p, q in zip(test, row["test_predictions"])) <= 2


def test_fine_tuning_loop_sees_every_sentence_once_an_epoch_and_keeps_the_best_epoch():
    train_size = len(polarity.split("train")[1])
    features = torch.randn(train_size, 3, generator=torch.Generator().manual_seed(0))
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen, snapshots, batch = [], [], 1000
    scripted = iter([50.0, 70.0, 60.0])  # the second epoch is the best

    def logits_of(picked):
        seen.extend(picked)
        return model(features[picked])

    def val_accuracy():
        snapshots.append({k: t.clone() for k, t in model.state_dict().items()})
        return next(scripted)

    history = polarity.fine_tune_by_epochs(model, opt, logits_of, 3, batch, 0.1, val_accuracy,
                                           torch.Generator().manual_seed(1), log=lambda _: None)
    steps = train_size // batch
    for epoch in range(3):
        one_epoch = seen[epoch * steps * batch:(epoch + 1) * steps * batch]
        assert len(set(one_epoch)) == len(one_epoch) == steps * batch  # no sentence twice, the remainder dropped
    assert seen[:steps * batch] != seen[steps * batch:2 * steps * batch]  # a new order each epoch
    assert history["epoch"] == [1, 2, 3] and history["val_accuracy"] == [50.0, 70.0, 60.0]
    assert all(torch.equal(t, snapshots[1][k]) for k, t in model.state_dict().items())
    assert not torch.equal(snapshots[1]["weight"], snapshots[2]["weight"])
