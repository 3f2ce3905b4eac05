"""The hidden-test machinery: the reference passes, wrong answers fail with a useful message."""
from __future__ import annotations

import pytest
import torch

from autograder.checks import GRADING_DEVICE, check_against_reference, compare, grading_device, tolerance
from autograder.course import assignments
from autograder.expected import build_expected
from autograder.reference import load_reference
from submissions import hidden_substitutes, solution_sources, student_namespace
from wrong_answers import wrong_answers


@pytest.mark.parametrize("assignment", assignments())
def test_reference_passes_its_hidden_cases(assignment, expected_dir, capsys):
    reference = load_reference(assignment)
    expected = torch.load(expected_dir / f"{assignment}.pt", weights_only=True)
    for name in expected["cases"]:
        check_against_reference(assignment, name, reference[name],
                                substitutes=hidden_substitutes(assignment, name, reference))
    assert capsys.readouterr().out.count("hidden cases passed") == len(expected["cases"])


@pytest.mark.parametrize("assignment, grade_id",
                         [(a, g) for a in assignments() for g in wrong_answers(a).WRONG])
def test_wrong_answer_fails_with_a_message(assignment, grade_id, expected_dir):
    source = wrong_answers(assignment).WRONG[grade_id]
    namespace = student_namespace(assignment, {grade_id: source})
    name = next(n for n in namespace if f"def {n}(" in source or f"class {n}(" in source)
    with pytest.raises(AssertionError) as failure:
        check_against_reference(assignment, name, namespace[name],
                                substitutes=hidden_substitutes(assignment, name, namespace))
    message = str(failure.value)
    assert name in message and "hidden case" in message
    assert "differ" in message or "shape" in message, message


def test_unimplemented_function_is_reported_as_such(expected_dir):
    def scaled_dot_product_attention(q, k, v, mask=None):
        raise NotImplementedError()
    with pytest.raises(AssertionError, match="not implemented"):
        check_against_reference("07_self_attention", "scaled_dot_product_attention", scaled_dot_product_attention)


def test_class_is_checked_with_a_correct_stand_in_for_the_helpers(expected_dir):
    """A broken scaled_dot_product_attention must not also cost the MultiHeadAttention points."""
    solution = solution_sources("07_self_attention")["mha"]
    namespace = student_namespace("07_self_attention", {"mha": solution})

    def broken(q, k, v, mask=None):
        raise NotImplementedError()
    namespace["scaled_dot_product_attention"] = broken
    check_against_reference("07_self_attention", "MultiHeadAttention", namespace["MultiHeadAttention"],
                            substitutes=hidden_substitutes("07_self_attention", "MultiHeadAttention", namespace))
    assert namespace["scaled_dot_product_attention"] is broken, "the student's function must be restored"


def test_outputs_that_only_pretend_to_be_equal_fail():
    class AlwaysEqual(torch.Tensor):
        def __eq__(self, other):
            return True
    fake = torch.zeros(3).as_subclass(AlwaysEqual)
    with pytest.raises(AssertionError, match="expected a torch.Tensor"):
        compare(fake, torch.ones(3), "x", torch.device("cpu"), None, None)


@pytest.mark.parametrize("got, message", [
    (torch.zeros(2, 3), "shape"),
    (torch.zeros(3, dtype=torch.int64), "floating-point"),
    (torch.tensor([1.0, 2.0, float("nan")]), "NaN"),
    (torch.tensor([1.0, 2.0, 3.5]), "largest difference 0.5 at index (2,)"),
])
def test_compare_says_what_differs(got, message):
    with pytest.raises(AssertionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compare(got, torch.tensor([1.0, 2.0, 3.0]), "x", torch.device("cpu"), None, None)


INF, NAN = float("inf"), float("nan")


@pytest.mark.parametrize("got, want, same", [
    (torch.tensor([1.0, INF, -INF, NAN]), torch.tensor([1.0, INF, -INF, NAN]), True),
    (torch.tensor([1.0, INF]), torch.tensor([1.0, -INF]), False),
    (torch.tensor([1.0, 1e30]), torch.tensor([1.0, INF]), False),
    (torch.tensor([NAN, 2.0]), torch.tensor([NAN, NAN]), False),
    (torch.tensor([0.0, 2.0]), torch.tensor([NAN, 2.0]), False),
    (NAN, torch.tensor(NAN), True),
    (INF, INF, True),
    (1.0, NAN, False),
    (INF, -INF, False),
])
def test_non_finite_results_match_only_the_same_non_finite_results(got, want, same):
    """A clipped gradient's norm can be inf or NaN; reproducing the reference's is right, and nothing else is."""
    if same:
        compare(got, want, "x", torch.device("cpu"))
    else:
        with pytest.raises(AssertionError):
            compare(got, want, "x", torch.device("cpu"))


def test_tolerances_are_looser_on_cuda_than_on_the_cpu():
    cpu, cuda = tolerance(torch.device("cpu"), torch.float32), tolerance(torch.device("cuda"), torch.float32)
    assert cuda[0] > cpu[0] and cuda[1] > cpu[1]
    assert cuda[1] <= 1e-2, "loose enough for TF32, far too tight for a wrong answer"


def test_hidden_cases_are_reproducible(tmp_path):
    a = torch.load(build_expected("07_self_attention", tmp_path / "a"), weights_only=True)
    b = torch.load(build_expected("07_self_attention", tmp_path / "b"), weights_only=True)
    for name, cases in a["cases"].items():
        for x, y in zip(cases, b["cases"][name]):
            for key in ("args", "kwargs", "expected"):
                assert repr(x.get(key)) == repr(y.get(key)), (name, x["id"], key)


def test_device_placeholder_is_replaced_by_the_grading_device(expected_dir):
    seen = []

    def causal_mask(size, device=None):
        seen.append(device)
        return torch.ones(size, size, dtype=torch.bool, device=device).tril()
    check_against_reference("07_self_attention", "causal_mask", causal_mask)
    assert GRADING_DEVICE not in seen and grading_device() in seen
    assert torch.device("meta") in seen, "a case asks for another device than the grader's"


def test_a_function_that_ignores_its_device_fails_even_on_a_cpu_grader(expected_dir):
    def causal_mask(size, device=None):
        return torch.ones(size, size, dtype=torch.bool).tril()  # always on the CPU
    with pytest.raises(AssertionError, match="meta"):
        check_against_reference("07_self_attention", "causal_mask", causal_mask)


def test_hidden_tests_work_under_plain_nbgrader(monkeypatch, tmp_path):
    """`nbgrader autograde` or formgrader run the hidden tests without the course's grader: the expected
    outputs come from a cache the instructor's process fills from solutions/."""
    monkeypatch.delenv("COURSE_EXPECTED_DIR", raising=False)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    reference = load_reference("07_self_attention")
    check_against_reference("07_self_attention", "causal_mask", reference["causal_mask"])
    assert list(tmp_path.glob("course-expected-*/07_self_attention.pt"))
    with pytest.raises(AssertionError):
        check_against_reference("07_self_attention", "causal_mask", lambda size, device=None: torch.ones(size, size))
