"""Worked examples of every kind of exercise the hidden tests grade (autograder/cases/__init__.py):
integer results, modules with learned weights (and buffers, and methods other than forward), a
callback as input, results made in place, randomness as an input, inputs kept away from ties;
and partial credit per group of hidden cases, from the record the sandbox writes to the score."""
from __future__ import annotations

import torch
import torch.nn as nn
import pytest

from autograder.cases import uniform_clear_of, untied
from autograder.checks import BUILD, PARAMETER, call_case, compare_case, plain, record_outputs, inputs_path
from autograder.expected import random_weights, reference_output
from autograder.verdict import judge_groups

CPU = torch.device("cpu")


def expected(reference, case: dict) -> dict:
    case = dict(case, kind=case.get("kind", "function"), id=case.get("id", "example"))
    if case["kind"] == "module" and case.get("state_dict") is None:
        case["state_dict"] = random_weights(reference, case.get("init", {}), torch.Generator().manual_seed(0))
    case["expected"] = reference_output(reference, case)
    return case


def verdict(student, case: dict) -> str | None:
    """None if the student's code matches the reference on ``case`` (run as the sandbox runs it), else why."""
    try:
        compare_case(plain(call_case(student, case, CPU, case.get("dtype", torch.float32))), case, "f", CPU)
    except AssertionError as failure:
        return str(failure)
    return None


# --------------------------------------------------------------------------- integer results


def top_ids(scores, k):
    """The ids of the k largest scores, largest first: (k,) int64."""
    return torch.topk(scores, k).indices


def test_integer_results_are_compared_exactly_and_say_where_they_differ():
    case = expected(top_ids, dict(args=[untied(torch.Generator().manual_seed(1), 12), 4]))
    assert verdict(lambda s, k: torch.argsort(s, descending=True)[:k].int(), case) is None, "int32 is an integer too"
    assert verdict(lambda s, k: torch.argsort(s, descending=True)[:k].tolist(), case) is not None, \
        "a list is not the tensor the docstring promises"
    message = verdict(lambda s, k: torch.argsort(s, descending=True)[1:k + 1], case)
    assert "entries differ (the first at index (0,))" in message
    assert "integer dtype" in verdict(lambda s, k: torch.argsort(s, descending=True)[:k].float(), case)
    count = expected(lambda n: n * 100, dict(args=[100]))
    assert verdict(lambda n: n * 100 + 1, count) is not None, "10001 is not 10000"
    ids = expected(lambda text: [ord(c) for c in text], dict(args=["banana"]))
    assert "(the first at position 2)" in verdict(lambda text: [ord(c) for c in text.replace("n", "m")], ids)


# --------------------------------------------------------------------------- modules


class Reference(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        return torch.tanh(self.proj(x)).cumsum(1)

    def generate(self, x, steps: int):
        for _ in range(steps):
            x = torch.cat([x, self(x)[:, -1:]], dim=1)
        return x


class WithBuffer(Reference):
    """Right, and keeps a causal mask as a buffer (as nanoGPT does): the grader must not mind."""

    def __init__(self, d: int):
        super().__init__(d)
        self.register_buffer("mask", torch.ones(8, 8, dtype=torch.bool).tril())


class Renamed(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.linear = nn.Linear(d, d)

    def forward(self, x):
        return torch.tanh(self.linear(x)).cumsum(1)


def test_modules_load_the_references_weights_by_name_and_buffers_are_free():
    case = expected(Reference, dict(kind="module", init=dict(d=4), args=[torch.randn(2, 3, 4)]))
    assert sorted(case["state_dict"]) == ["proj.bias", "proj.weight"], "weights drawn by the reference's own names"
    assert verdict(WithBuffer, case) is None
    assert "must be named" in verdict(Renamed, case)


def test_a_method_other_than_forward_is_graded():
    case = expected(Reference, dict(kind="module", init=dict(d=4), method="generate",
                                    args=[torch.randn(2, 3, 4)], kwargs=dict(steps=3)))
    assert verdict(WithBuffer, case) is None

    class OneStepShort(Reference):
        def generate(self, x, steps):
            return super().generate(x, steps - 1)
    assert "shape" in verdict(OneStepShort, case)


# --------------------------------------------------------------------------- a callback as input


def greedy(step_fn, start: int, steps: int):
    """Greedy decoding with a step function: (1, T) long ids of the start token and `steps` more."""
    tokens = torch.tensor([[start]])
    for _ in range(steps):
        tokens = torch.cat([tokens, step_fn(tokens).argmax(-1, keepdim=True)], dim=1)
    return tokens


def test_a_step_function_is_built_from_the_support_package_on_both_sides():
    table = untied(torch.Generator().manual_seed(2), 6, 6, scale=3.0)
    step = {BUILD: "coursekit.toy_models:TableStepFunction", "kwargs": {"log_probs": table}}
    case = expected(greedy, dict(args=[step, 0, 5]))

    def sampled_not_greedy(step_fn, start, steps):
        tokens = torch.tensor([[start]])
        for _ in range(steps):
            tokens = torch.cat([tokens, step_fn(tokens).argmin(-1, keepdim=True)], dim=1)
        return tokens
    assert verdict(greedy, case) is None
    assert verdict(sampled_not_greedy, case) is not None
    with pytest.raises(ValueError, match="only from coursekit"):
        call_case(greedy, dict(case, args=[{BUILD: "os:system", "kwargs": {}}, 0, 1]), CPU, torch.float32)


# --------------------------------------------------------------------------- results made in place


def clip(parameters, max_norm: float) -> float:
    """Scale the gradients in place so that their joint norm is at most max_norm; return the norm before."""
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in parameters))
    for p in parameters:
        p.grad.mul_(min(1.0, max_norm / (float(norm) + 1e-6)))
    return float(norm)


def test_gradients_changed_in_place_are_observed():
    g = torch.Generator().manual_seed(3)
    parameters = [{PARAMETER: torch.randn(3, 4, generator=g), "grad": torch.randn(3, 4, generator=g) * 5},
                  {PARAMETER: torch.randn(4, generator=g), "grad": torch.randn(4, generator=g) * 5}]
    case = expected(clip, dict(args=[parameters, 1.0], observe=["return", "grads"], grad=False))
    assert verdict(clip, case) is None
    assert verdict(lambda ps, m: torch.nn.utils.clip_grad_norm_(ps, m).item(), case) is None, "the built-in agrees"

    def returns_but_does_not_clip(ps, max_norm):
        return float(torch.sqrt(sum((p.grad ** 2).sum() for p in ps)))
    assert "['grads']" in verdict(returns_but_does_not_clip, case)


# --------------------------------------------------------------------------- randomness and ties


def sample(probs, u: float) -> int:
    """The first index whose cumulative probability exceeds u (inverse-CDF sampling)."""
    return int(torch.searchsorted(probs.cumsum(-1), torch.tensor([u], dtype=probs.dtype), right=True))


def test_randomness_is_an_input_kept_clear_of_the_boundaries():
    g = torch.Generator().manual_seed(4)
    probs = torch.softmax(torch.randn(50, generator=g), dim=-1)
    u = uniform_clear_of(g, probs.cumsum(-1), gap=1e-4)
    assert ((probs.cumsum(-1).double() - u).abs() >= 1e-4).all()
    case = expected(sample, dict(args=[probs, u]))
    assert verdict(sample, case) is None
    assert verdict(lambda p, u: int((p.cumsum(-1) < u).sum()), case) is None, "a loop-free alternative agrees"
    assert verdict(lambda p, u: sample(p, 1 - u), case) is not None


def test_untied_scores_sort_the_same_in_every_precision():
    scores = untied(torch.Generator().manual_seed(5), 64, 40, gap=0.05)
    gaps = scores.sort(-1).values.diff(dim=-1)
    assert (gaps >= 0.05 - 1e-6).all()
    assert torch.equal(scores.argsort(-1), scores.double().argsort(-1))
    assert torch.equal(scores.argsort(-1), scores.half().argsort(-1)), "even float16 keeps the order"


# --------------------------------------------------------------------------- partial credit


def test_partial_credit_per_group_from_the_record_to_the_verdict(tmp_path, monkeypatch):
    """A function wrong only on its edge case loses only that group's share."""
    def cumulative_max(x):
        return x.cummax(-1).values

    cases = [expected(cumulative_max, dict(id=f"random {i}", group="ordinary", args=[torch.randn(5)])) for i in range(3)]
    cases.append(expected(cumulative_max, dict(id="empty", group="edge cases", args=[torch.zeros(0)])))
    torch.save({"cases": {"cummax": [{k: v for k, v in c.items() if k != "expected"} for c in cases]}},
               inputs_path(tmp_path, "toy"))

    def fails_on_empty(x):
        return torch.stack([x[: i + 1].max() for i in range(len(x))])  # torch.stack([]) raises
    record_outputs("toy", "cummax", fails_on_empty, tmp_path, {})
    groups = judge_groups("cummax", tmp_path, cases, CPU)
    assert groups["ordinary"] is None
    assert "hidden case 'empty'" in groups["edge cases"] and "raised" in groups["edge cases"]


def test_nbgrader_scores_a_partly_passing_cell_by_its_share_of_groups():
    from nbformat.v4 import new_code_cell
    from nbgrader.utils import determine_grade

    from autograder.verdict import _score_groups

    def cell():
        made = new_code_cell("check_against_reference(...)")
        made.metadata["nbgrader"] = {"grade": True, "grade_id": "t", "points": 3, "solution": False}
        made.outputs = []
        return made
    groups = {("f", "ordinary"): None, ("f", "masks"): "f, hidden case 'x': differ", ("g", "all"): None}
    partly = cell()
    assert "2 of 3 groups" in _score_groups(partly, groups, 3.0)
    assert determine_grade(partly) == (2.0, 3.0)
    none_pass = cell()
    _score_groups(none_pass, {k: "failed" for k in groups}, 3.0)
    assert determine_grade(none_pass) == (0, 3.0)
    all_pass = cell()
    assert _score_groups(all_pass, {k: None for k in groups}, 3.0) is None and determine_grade(all_pass) == (3.0, 3.0)
