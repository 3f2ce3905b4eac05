"""Compute the reference's outputs on the hidden cases, in the trusted grader's process.

The result, ``<out_dir>/<assignment>.pt``, is what ``autograder.checks`` compares students' code
with. The reference runs on the CPU in float64 wherever it takes floating-point inputs, so the
expected values are more precise than any float32 answer they are compared with.
"""
from __future__ import annotations

import numbers
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from autograder.cases import cases_module
from autograder.checks import GRADING_DEVICE
from autograder.reference import load_reference


def to_float64(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.double() if value.is_floating_point() else value
    if isinstance(value, str) and value == GRADING_DEVICE:
        return torch.device("cpu")
    if isinstance(value, (list, tuple)):
        return type(value)(to_float64(v) for v in value)
    if isinstance(value, dict):
        return {k: to_float64(v) for k, v in value.items()}
    return value


def detach(value: Any) -> Any:
    """Plain, storable values (torch.load(weights_only=True) takes no Counter or numpy types)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, (list, tuple)):
        return tuple(detach(v) for v in value)
    if isinstance(value, Mapping):
        return {detach(k): detach(v) for k, v in value.items()}
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


def reference_output(obj: Any, case: dict) -> Any:
    args, kwargs = to_float64(case.get("args", [])), to_float64(case.get("kwargs", {}))
    if case.get("kind", "function") == "function":
        return detach(obj(*args, **kwargs))
    module = obj(**case["init"]).double()
    module.load_state_dict(to_float64(case["state_dict"]))
    with torch.no_grad():
        return detach(module.eval()(*args, **kwargs))


def case_seed(assignment: str, name: str) -> int:
    """A fixed seed per graded name, so adding a case to one name leaves the others unchanged."""
    return zlib.crc32(f"{assignment}/{name}".encode())


def build_expected(assignment: str, out_dir: Path) -> Path:
    reference = load_reference(assignment)
    all_cases = {}
    for name, make_cases in cases_module(assignment).CASES.items():
        generator = torch.Generator().manual_seed(case_seed(assignment, name))
        cases = [dict(case, kind=case.get("kind", "function")) for case in make_cases(generator)]
        for case in cases:
            torch.manual_seed(0)
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
