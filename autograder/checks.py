"""What hidden test cells call: compare a student's function with the reference solution.

A hidden test cell in ``solutions/NN_slug/NN_slug.ipynb`` reads::

    from autograder.checks import check_against_reference
    check_against_reference("07_self_attention", "causal_mask", causal_mask)

The reference's outputs are never computed in the student's kernel: the trusted grader computes
them beforehand from the solution notebook (``autograder.expected``). When grading submissions, the
kernel runs in a sandbox that holds only the inputs; this module records the student's outputs there
and the grader compares them outside (``autograder.verdict``). When validating the reference, the
comparison happens here, with the expected outputs from ``$COURSE_EXPECTED_DIR/<assignment>.pt``.
The student's code runs on the grading device (CUDA when present, else CPU).

A failure raises ``AssertionError`` with what was checked, what differed and by how much; it
never prints the expected values themselves.
"""
from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

GRADING_DEVICE = "__grading_device__"  # placeholder in stored arguments, replaced by the device
ENV_EXPECTED_DIR = "COURSE_EXPECTED_DIR"  # trusted kernels: compare here
ENV_RECORD_DIR = "COURSE_RECORD_DIR"      # sandboxed kernels: record outputs for the grader


def grading_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def tolerance(device: torch.device, dtype: torch.dtype) -> tuple[float, float]:
    """(rtol, atol) for comparing a result computed on ``device`` in ``dtype`` with the reference.

    CUDA matmuls may run in TF32 (10-bit mantissa) and its kernels are not deterministic, so CUDA
    gets a looser tolerance. Wrong answers in these exercises differ by far more (tenths, not
    thousandths).
    """
    if dtype == torch.float64:
        return 1e-7, 1e-9
    if device.type == "cuda":
        return 5e-3, 5e-3
    return 1e-4, 1e-5


def expected_path(assignment: str) -> Path:
    directory = os.environ.get(ENV_EXPECTED_DIR)
    if not directory:
        raise RuntimeError(f"{ENV_EXPECTED_DIR} is not set: hidden tests run only inside the grader "
                           "(make grade / python -m autograder grade).")
    return Path(directory) / f"{assignment}.pt"


def load_expected(assignment: str) -> dict:
    path = expected_path(assignment)
    if not path.exists():
        raise RuntimeError(f"no expected outputs at {path}: run the grader, which creates them")
    return torch.load(path, weights_only=True)


# --------------------------------------------------------------------------- moving data


def to_device(value: Any, device: torch.device) -> Any:
    """Tensors (also inside lists, tuples and dicts) to ``device``; the placeholder becomes it."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, str) and value == GRADING_DEVICE:
        return device
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------- comparing


def describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}, on {value.device}"
    return type(value).__name__


def compare(got: Any, want: Any, where: str, device: torch.device, rtol: float | None, atol: float | None,
            check_device: bool = True) -> None:
    """Raise AssertionError describing the first difference between ``got`` and ``want``.

    ``device`` is where ``got`` was computed: it sets the tolerance and, with ``check_device``, the
    device a tensor result must be on.
    """
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            raise AssertionError(f"{where}: expected a tuple of {len(want)} values, got {describe(got)}"
                                 + (f" of length {len(got)}" if isinstance(got, (tuple, list)) else ""))
        for i, (g, w) in enumerate(zip(got, want)):
            compare(g, w, f"{where}, returned value {i}", device, rtol, atol, check_device)
        return
    if isinstance(want, dict):
        if not isinstance(got, Mapping):
            raise AssertionError(f"{where}: expected a dict, got {describe(got)}")
        missing, extra = set(want) - set(got), set(got) - set(want)
        if missing or extra:
            raise AssertionError(f"{where}: {len(missing)} keys missing (e.g. {sorted(missing, key=repr)[:3]}), "
                                 f"{len(extra)} unexpected (e.g. {sorted(extra, key=repr)[:3]})")
        for key in want:
            compare(got[key], want[key], f"{where}[{key!r}]", device, rtol, atol, check_device)
        return
    if isinstance(want, bool) or want is None or isinstance(want, str):
        if type(got) is not type(want) or got != want:
            raise AssertionError(f"{where}: got {describe(got)} {got!r:.60}, which is not the expected value")
        return
    if isinstance(want, (int, float)):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if type(got) not in (int, float) and not isinstance(got, numbers.Real):
            raise AssertionError(f"{where}: expected a number, got {describe(got)}")
        default_rtol, default_atol = tolerance(torch.device("cpu"), torch.float32)
        rtol = default_rtol if rtol is None else max(rtol, default_rtol)
        atol = default_atol if atol is None else max(atol, default_atol)
        if not math.isclose(float(got), float(want), rel_tol=rtol, abs_tol=atol):
            raise AssertionError(f"{where}: differs from the reference by {abs(float(got) - float(want)):.3g} "
                                 f"(allowed: {atol:g} + {rtol:g}·|reference|)")
        return
    if not isinstance(want, torch.Tensor):
        raise TypeError(f"{where}: the grader cannot compare values of type {type(want).__name__}")
    if type(got) not in (torch.Tensor, torch.nn.Parameter):  # no subclasses with a home-made __eq__
        raise AssertionError(f"{where}: expected a torch.Tensor, got {describe(got)}")
    if tuple(got.shape) != tuple(want.shape):
        raise AssertionError(f"{where}: shape {tuple(got.shape)}, expected {tuple(want.shape)}")
    if check_device and got.device.type != device.type:
        raise AssertionError(f"{where}: result is on {got.device} but the inputs were on {device}; "
                             "create new tensors on the inputs' device (e.g. device=x.device)")
    if want.dtype == torch.bool:
        if got.dtype != torch.bool:
            raise AssertionError(f"{where}: dtype {got.dtype}, expected torch.bool")
        wrong = (got.cpu() != want)
        if wrong.any():
            first = tuple(wrong.nonzero()[0].tolist())
            raise AssertionError(f"{where}: {int(wrong.sum())} of {want.numel()} entries differ "
                                 f"(first at index {first}: got {bool(got.cpu()[first])})")
        return
    if not got.is_floating_point():
        raise AssertionError(f"{where}: dtype {got.dtype}, expected a floating-point tensor")
    default_rtol, default_atol = tolerance(device, got.dtype)
    rtol = default_rtol if rtol is None else max(rtol, default_rtol)
    atol = default_atol if atol is None else max(atol, default_atol)
    got64, want64 = got.detach().to("cpu", torch.float64), want.to(torch.float64)
    if torch.isnan(got64).any() and not torch.isnan(want64).any():
        raise AssertionError(f"{where}: {int(torch.isnan(got64).sum())} entries are NaN "
                             "(overflow in exp? masked rows?)")
    diff = (got64 - want64).abs()
    bad = ~(diff <= atol + rtol * want64.abs())
    if bad.any():
        worst = tuple(int(i) for i in torch.unravel_index(torch.nan_to_num(diff, nan=float("inf")).argmax(), diff.shape))
        raise AssertionError(
            f"{where}: {int(bad.sum())} of {want.numel()} entries differ from the reference; "
            f"largest difference {diff[worst].item():.3g} at index {worst} "
            f"(allowed: {atol:g} + {rtol:g}·|reference|)")


# --------------------------------------------------------------------------- calling


@contextmanager
def substituted(obj: Any, names: dict[str, Any]):
    """Temporarily replace global names seen by ``obj``'s code (its module or the notebook).

    Used so that a class that calls another graded function is checked with a correct version of
    that function: one mistake costs points once.
    """
    function = getattr(obj, "forward", obj)
    namespace = getattr(function, "__globals__", None)
    if not names or namespace is None:
        yield
        return
    missing = object()
    saved = {name: namespace.get(name, missing) for name in names}
    namespace.update(names)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                namespace.pop(name, None)
            else:
                namespace[name] = value


def run_case(obj: Any, case: dict, device: torch.device) -> Any:
    args = to_device(case.get("args", []), device)
    kwargs = to_device(case.get("kwargs", {}), device)
    if case["kind"] == "function":
        return obj(*args, **kwargs)
    # a module: build it, load the given weights, run forward
    module = obj(**case["init"])
    state = {k: v.to(torch.float32) for k, v in case["state_dict"].items()}
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise AssertionError(f"could not load the weights: the module's parameters must be named "
                             f"{sorted(state)} ({error})") from None
    module = module.to(device).eval()
    with torch.no_grad():
        return module(*args, **kwargs)


def run_student(obj: Any, case: dict, device: torch.device, substitutes: dict, where: str) -> Any:
    """The student's result on one case; their exceptions become AssertionErrors that say so."""
    torch.manual_seed(0)
    with substituted(obj, substitutes):
        try:
            return run_case(obj, case, device)
        except AssertionError as error:
            raise AssertionError(f"{where}: {error}") from None
        except NotImplementedError:
            raise AssertionError(f"{where}: not implemented yet (NotImplementedError)") from None
        except Exception as error:
            raise AssertionError(f"{where}: raised {type(error).__name__}: {error}") from None


def where_of(name: str, case: dict) -> str:
    return f"{name}, hidden case '{case['id']}'"


def check_against_reference(assignment: str, name: str, obj: Any, substitutes: dict[str, Any] | None = None) -> None:
    """The hidden test of ``name``: run every stored case through ``obj``.

    ``substitutes`` ({global name: callable}) replace, for the duration of the check, other graded
    functions that ``obj`` calls, so that one mistake costs points once. They are the independent
    implementations the visible tests of the same cell define (on PyTorch built-ins, or written
    another way): a student sees them there already, so nothing the kernel holds during the check
    is worth taking. (The hidden cases, with stand-ins of their own, are not in the sandbox.)

    Two modes, chosen by the grader through the environment:

    - ``COURSE_RECORD_DIR`` (grading a submission, in the sandbox): the inputs are there, the
      expected outputs are not. Record the student's outputs; the grader compares them outside the
      sandbox (``autograder.verdict``), so nothing in the kernel can see or forge the verdict.
    - ``COURSE_EXPECTED_DIR`` (validating the reference, in a trusted kernel): compare here.

    Raises AssertionError for the first case that fails (or, when recording, that raises).
    Returns None on purpose: nbgrader reads a number displayed by a test cell as partial credit.
    """
    substitutes = substitutes or {}
    if os.environ.get(ENV_RECORD_DIR):
        record_outputs(assignment, name, obj, Path(os.environ[ENV_RECORD_DIR]), substitutes)
        return
    expected = load_expected(assignment)
    cases = expected["cases"].get(name)
    if not cases:
        raise RuntimeError(f"no hidden cases for {name!r} in {assignment}")
    device = grading_device()
    for case in cases:
        got = run_student(obj, case, device, substitutes, where_of(name, case))
        compare(got, case["expected"], where_of(name, case), device, case.get("rtol"), case.get("atol"))
    print(f"{name}: {len(cases)} hidden cases passed on {device.type}")


# --------------------------------------------------------------------------- recording (sandbox side)


def inputs_path(record_dir: Path, assignment: str) -> Path:
    return record_dir / f"{assignment}.inputs.pt"


def record_path(record_dir: Path, name: str) -> Path:
    return record_dir / "records" / f"{name}.pt"


def storable(value: Any) -> Any:
    """The student's output as plain data for torch.save; anything else is described, not stored."""
    if type(value) in (torch.Tensor, torch.nn.Parameter):
        return value.detach().to("cpu").clone()
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        return type(value)(storable(v) for v in value)
    if type(value) is dict or isinstance(value, Mapping) and type(value).__module__ == "collections":
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, numbers.Real) and type(value).__module__ == "numpy":
        return float(value)
    return {"__unstorable__": f"{type(value).__module__}.{type(value).__qualname__}"}


def tensors_in(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in tensors_in(v)]
    if isinstance(value, Mapping):
        return [t for v in value.values() for t in tensors_in(v)]
    return []


def record_outputs(assignment: str, name: str, obj: Any, record_dir: Path, substitutes: dict[str, Any]) -> None:
    cases = torch.load(inputs_path(record_dir, assignment), weights_only=True)["cases"].get(name, [])
    device = grading_device()
    outputs = []
    try:
        for case in cases:
            got = run_student(obj, case, device, substitutes, where_of(name, case))
            wrong = [t.device.type for t in tensors_in(got) if t.device.type != device.type]
            value = {"__wrong_device__": wrong[0]} if wrong else storable(got)
            outputs.append({"value": value})
    finally:  # what ran before a failure is kept: the grader reports the first failing case
        path = record_path(record_dir, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"name": name, "outputs": outputs}, path)
    print(f"{name}: ran {len(cases)} hidden cases; the grader compares them with the reference")
