"""Compute the reference's outputs on the hidden cases, in the trusted grader's process.

The result, ``<out_dir>/<assignment>.pt``, is what ``autograder.checks`` compares students' code
with. The reference runs through the same ``call_case`` as a student's code, on the CPU in float64,
so the expected values are more precise than any float32 answer they are compared with.
"""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import torch

from autograder.cases import cases_module
from autograder.checks import UNSTORABLE, call_case, plain, prepare
from autograder.reference import load_reference

CPU = torch.device("cpu")


def reference_output(obj: Any, case: dict) -> Any:
    torch.manual_seed(0)
    value = plain(call_case(obj, case, CPU, torch.float64))
    if UNSTORABLE in repr(value):
        raise TypeError(f"the reference returned something the grader cannot store for {case['id']!r}: {value}")
    return value


def random_weights(module_class: type, init: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Weights for every parameter the reference module has, by its own names: a student's module
    is loaded with them, so the names in the cases cannot drift from the reference's."""
    module = module_class(**prepare(init, CPU, torch.float64))
    weights = {}
    for name, parameter in module.named_parameters():
        scale = parameter.shape[-1] ** -0.5 if parameter.dim() > 1 else 0.1
        weights[name] = torch.randn(parameter.shape, generator=generator, dtype=torch.float64) * scale
    return weights


def case_seed(assignment: str, name: str) -> int:
    """A fixed seed per graded name, so adding a case to one name leaves the others unchanged."""
    return zlib.crc32(f"{assignment}/{name}".encode())


def draw_cases(assignment: str, name: str) -> tuple[list[dict], torch.Generator]:
    """The hidden cases of one graded name as the grader draws them (its fixed seed), without expected outputs,
    and the generator, left where drawing them left it."""
    generator = torch.Generator().manual_seed(case_seed(assignment, name))
    cases = cases_module(assignment).CASES[name](generator)
    return [dict(case, kind=case.get("kind", "function")) for case in cases], generator


def build_expected(assignment: str, out_dir: Path) -> Path:
    reference = load_reference(assignment)
    all_cases = {}
    for name in cases_module(assignment).CASES:
        cases, generator = draw_cases(assignment, name)
        for case in cases:
            if case["kind"] == "module" and case.get("state_dict") is None:
                case["state_dict"] = random_weights(reference[name], case.get("init", {}), generator)
            case["expected"] = reference_output(reference[name], case)
        all_cases[name] = cases
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{assignment}.pt"
    torch.save({"assignment": assignment, "cases": all_cases}, path)
    return path


def write_inputs(expected_file: Path, out: Path) -> Path:
    """The hidden cases without their expected outputs: all a sandboxed kernel may see."""
    data = torch.load(expected_file, weights_only=True)
    for cases in data["cases"].values():
        for case in cases:
            case.pop("expected", None)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, out)
    return out
