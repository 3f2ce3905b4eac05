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

Both sides run a case the same way, through ``call_case``: the reference on the CPU in float64,
the student on the grading device in float32 (or the case's ``dtype``). What a case may hold and
ask for (the kinds of exercise) is listed in ``autograder/cases/__init__.py``.

A failure raises ``AssertionError`` with what was checked, what differed and by how much; it
never prints the expected values themselves.
"""
from __future__ import annotations

import contextlib
import importlib
import math
import numbers
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from coursekit.testing import swapped

GRADING_DEVICE = "__grading_device__"  # placeholder in stored arguments, replaced by the device
BUILD = "__build__"                    # {BUILD: "coursekit.module:factory", "kwargs": {...}}: an object to make
PARAMETER = "__parameter__"            # {PARAMETER: tensor, "grad": tensor or None}: a leaf with a gradient
DEVICE = "__device__"                  # {DEVICE: "meta"}: a given device (one that no result can be copied from)
UNSTORABLE = "__unstorable__"          # in a record: the student returned something that is not plain data
ENV_EXPECTED_DIR = "COURSE_EXPECTED_DIR"  # trusted kernels: compare here
ENV_RECORD_DIR = "COURSE_RECORD_DIR"      # sandboxed kernels: record outputs for the grader


def grading_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def tolerance(device: torch.device, dtype: torch.dtype) -> tuple[float, float]:
    """(rtol, atol) for a result computed on ``device`` from inputs given in ``dtype``.

    The precision is the inputs' (the case's), never the result's: a float64 answer to float32
    inputs is held to float32's tolerance, like everyone's. CUDA matmuls may run in TF32 (10-bit
    mantissa) and its kernels are not deterministic, so CUDA gets a looser tolerance. Wrong
    answers in these exercises differ by far more (tenths, not thousandths).
    """
    if dtype == torch.float64:
        return 1e-7, 1e-9
    if device.type == "cuda":
        return 5e-3, 5e-3
    return 1e-4, 1e-5


def expected_path(assignment: str) -> Path:
    """Where the reference's outputs are: ``$COURSE_EXPECTED_DIR`` (the course's grader sets it), or,
    when nbgrader runs the hidden tests itself (``nbgrader autograde``, ``validate``, formgrader), a
    cache the instructor's own process fills from solutions/ and refreshes when they change."""
    directory = os.environ.get(ENV_EXPECTED_DIR)
    if directory:
        return Path(directory) / f"{assignment}.pt"
    from autograder.course import REPO, source_notebook
    from autograder.expected import build_expected

    cache = Path(tempfile.gettempdir()) / f"course-expected-{os.getuid()}"
    path = cache / f"{assignment}.pt"
    slug = assignment.split("_", 1)[1]
    sources = [source_notebook(assignment), REPO / "autograder" / "cases" / f"{slug}.py"]
    if not path.exists() or path.stat().st_mtime < max(s.stat().st_mtime for s in sources):
        build_expected(assignment, cache)
    return path


def load_expected(assignment: str) -> dict:
    path = expected_path(assignment)
    if not path.exists():
        raise RuntimeError(f"no expected outputs at {path}: run the grader, which creates them")
    return torch.load(path, weights_only=True)


# --------------------------------------------------------------------------- inputs and outputs


def _build(spec: dict, device: torch.device, dtype: torch.dtype) -> Any:
    """The object a ``BUILD`` placeholder names, made from the support package only."""
    module_name, _, attribute = spec[BUILD].partition(":")
    if module_name.split(".")[0] != "coursekit":
        raise ValueError(f"a case may build only from coursekit, not {spec[BUILD]!r}")
    factory = getattr(importlib.import_module(module_name), attribute)
    return factory(**prepare(spec.get("kwargs", {}), device, dtype))


def prepare(value: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """A case's stored inputs as the function receives them: tensors on ``device``, floating-point
    ones in ``dtype``; placeholders made (the device, objects built from coursekit, parameters
    with gradients). The one walker over inputs, for the reference and the student alike."""
    if isinstance(value, torch.Tensor):  # a copy: code that works in place must not change the case
        return value.to(device, dtype if value.is_floating_point() else value.dtype, copy=True)
    if isinstance(value, str) and value == GRADING_DEVICE:
        return device
    if isinstance(value, dict) and BUILD in value:
        return _build(value, device, dtype)
    if isinstance(value, dict) and DEVICE in value:
        return torch.device(value[DEVICE])
    if isinstance(value, dict) and PARAMETER in value:
        parameter = torch.nn.Parameter(prepare(value[PARAMETER], device, dtype))
        if value.get("grad") is not None:
            parameter.grad = prepare(value["grad"], device, dtype)
        return parameter
    if isinstance(value, (list, tuple)):
        return type(value)(prepare(v, device, dtype) for v in value)
    if isinstance(value, dict):
        return {k: prepare(v, device, dtype) for k, v in value.items()}
    return value


def plain(value: Any) -> Any:
    """An output as plain data (CPU tensors, Python numbers, strings, lists, tuples, dicts), which
    ``torch.load(weights_only=True)`` reads back; anything else becomes an ``UNSTORABLE`` marker
    naming its type. The one walker over outputs, for the reference and the student alike."""
    if type(value) in (torch.Tensor, torch.nn.Parameter):
        return value.detach().to("cpu").clone()
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if type(value) in (list, tuple):
        return type(value)(plain(v) for v in value)
    if type(value) is dict or isinstance(value, Mapping) and type(value).__module__ == "collections":
        return {plain(k): plain(v) for k, v in value.items()}
    return {UNSTORABLE: f"{type(value).__module__}.{type(value).__qualname__}"}


def tensors_in(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in tensors_in(v)]
    if isinstance(value, Mapping):
        return [t for v in value.values() for t in tensors_in(v)]
    return []


# --------------------------------------------------------------------------- calling


def load_weights(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load ``state`` strictly on parameters; buffers (a registered causal mask, ...) are the
    module's own business and may be present or not."""
    parameters = dict(module.named_parameters())
    missing = sorted(set(parameters) - set(state))
    unexpected = sorted(set(state) - set(parameters) - set(dict(module.named_buffers())))
    if missing or unexpected:
        raise AssertionError(f"could not load the weights: the module's parameters must be named "
                             f"{sorted(state)} (missing: {missing or 'none'}; not expected: {unexpected or 'none'})")
    for name, tensor in state.items():
        target = parameters.get(name)
        if target is not None and tuple(target.shape) != tuple(tensor.shape):
            raise AssertionError(f"could not load the weights: {name} has shape {tuple(target.shape)}, "
                                 f"expected {tuple(tensor.shape)}")
    module.load_state_dict({k: v for k, v in state.items() if k in parameters}, strict=False)


def observe(what: str, returned: Any, args: list, module: torch.nn.Module | None) -> Any:
    """What a case records after the call: its return value, or what the call changed in place."""
    if what == "return":
        return returned
    if what == "args":
        return args
    if what == "grads":
        return [t.grad for t in tensors_in(args) if t.requires_grad]
    if what == "state":
        return module.state_dict()
    if what == "devices":  # where the results were made (e.g. on the "meta" device the case asked for)
        return [t.device.type for t in tensors_in(returned)]
    if what == "shapes":
        return [list(t.shape) for t in tensors_in(returned)]
    raise ValueError(f"unknown observation {what!r}")


def call_case(obj: Any, case: dict, device: torch.device, dtype: torch.dtype) -> Any:
    """Run one case through ``obj`` (a function or a module class) and return what it observes.

    kind "function": ``obj(*args, **kwargs)``; kind "module": ``obj(**init)``, its parameters
    loaded from ``state_dict``, then its ``method`` (``forward`` by default) called. ``observe``
    lists what to record ("return", "args", "grads", "state", "devices", "shapes"); by default,
    the return value.
    Functions run with gradients on (``grad=False`` turns them off), modules with them off
    (``grad=True`` turns them on).
    """
    args = prepare(list(case.get("args", [])), device, dtype)
    kwargs = prepare(case.get("kwargs", {}), device, dtype)
    module = None
    target = obj
    if case["kind"] == "module":
        module = obj(**prepare(case.get("init", {}), device, dtype)).to(dtype)
        load_weights(module, prepare(case["state_dict"], torch.device("cpu"), dtype))
        module = module.to(device).eval()
        method = case.get("method", "forward")
        target = module if method == "forward" else getattr(module, method)
    gradients = case.get("grad", case["kind"] != "module")  # a module is run for its output only
    with contextlib.nullcontext() if gradients else torch.no_grad():
        returned = target(*args, **kwargs)
    if not case.get("observe"):
        return returned
    return {what: observe(what, returned, args, module) for what in case["observe"]}


def substituted(obj: Any, names: dict[str, Any]):
    """Temporarily replace global names seen by ``obj``'s code (its module or the notebook).

    Used so that a class that calls another graded function is checked with a correct version of
    that function: one mistake costs points once.
    """
    namespace = getattr(getattr(obj, "forward", obj), "__globals__", None)
    if not names or namespace is None:
        return contextlib.nullcontext()
    return swapped(namespace, **names)


def case_dtype(case: dict) -> torch.dtype:
    """The precision a student's code receives the case's floating-point inputs in."""
    return case.get("dtype", torch.float32)


def run_student(obj: Any, case: dict, device: torch.device, substitutes: dict, where: str) -> Any:
    """The student's result on one case; their exceptions become AssertionErrors that say so."""
    torch.manual_seed(0)
    with substituted(obj, substitutes):
        try:
            return call_case(obj, case, device, case_dtype(case))
        except AssertionError as error:
            raise AssertionError(f"{where}: {error}") from None
        except NotImplementedError:
            raise AssertionError(f"{where}: not implemented yet (NotImplementedError)") from None
        except Exception as error:
            raise AssertionError(f"{where}: raised {type(error).__name__}: {error}") from None


# --------------------------------------------------------------------------- comparing


def describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}, on {value.device}"
    return type(value).__name__


def _is_integer_number(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def compare(got: Any, want: Any, where: str, device: torch.device, rtol: float | None = None,
            atol: float | None = None, check_device: bool = True, precision: torch.dtype = torch.float32,
            names: list[str] | None = None) -> None:
    """Raise AssertionError describing the first difference between ``got`` and ``want``.

    Floating-point values are compared within the tolerance of ``precision`` (the case's inputs) on
    ``device`` (where ``got`` was computed), loosened by ``rtol``/``atol`` if given; an infinity or a
    NaN matches only the same infinity or a NaN where the reference has one; integers,
    booleans, strings and integer tensors exactly. ``names`` names the parts of a tuple result
    ("output", "weights") in messages. With ``check_device``, a tensor result must be on ``device``.
    """
    def inner(g, w, part):
        compare(g, w, part, device, rtol, atol, check_device, precision)

    if isinstance(want, (tuple, list)):
        if isinstance(got, (tuple, list)) and len(got) != len(want):
            message = (f"{where}: the lengths differ: expected a sequence of {len(want)} values, got "
                       f"{describe(got)} of length {len(got)}")
            if all(_is_integer_number(v) for v in [*got, *want]):  # ids: say how far they agree
                agree = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
                message += f"; the first {agree} values agree"
            raise AssertionError(message)
        if not isinstance(got, (tuple, list)):
            raise AssertionError(f"{where}: expected a sequence of {len(want)} values, got {describe(got)}")
        if want and all(_is_integer_number(w) for w in want) and all(_is_integer_number(g) for g in got):
            first = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), None)
            if first is not None:
                wrong = sum(g != w for g, w in zip(got, want))
                raise AssertionError(f"{where}: {wrong} of {len(want)} integers differ (the first at position {first})")
            return
        for i, (g, w) in enumerate(zip(got, want)):
            label = f"'{names[i]}'" if names and i < len(names) else str(i)
            inner(g, w, f"{where}, returned value {label}")
        return
    if isinstance(want, dict):
        if not isinstance(got, Mapping):
            raise AssertionError(f"{where}: expected a dict, got {describe(got)}")
        missing, extra = set(want) - set(got), set(got) - set(want)
        if missing or extra:
            raise AssertionError(f"{where}: {len(missing)} keys missing (e.g. {sorted(missing, key=repr)[:3]}), "
                                 f"{len(extra)} unexpected (e.g. {sorted(extra, key=repr)[:3]})")
        for key in want:
            inner(got[key], want[key], f"{where}[{key!r}]")
        return
    if isinstance(want, bool) or want is None or isinstance(want, str):
        if type(got) is not type(want) or got != want:
            raise AssertionError(f"{where}: got {describe(got)} {got!r:.60}, which is not the expected value")
        return
    if isinstance(want, torch.Tensor) and want.numel() == 1 and not isinstance(got, torch.Tensor) \
            and isinstance(got, numbers.Real):
        want = want.item()  # a 0-d reference and a Python number: compare as numbers
    if isinstance(want, (int, float)):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, numbers.Real):
            raise AssertionError(f"{where}: expected a number, got {describe(got)}")
        if isinstance(want, int):
            if (int(got) if isinstance(got, numbers.Integral) else float(got)) != want:
                raise AssertionError(f"{where}: got {got!r:.30}, which differs from the reference's integer")
            return
        default_rtol, default_atol = tolerance(device, precision)
        rtol = default_rtol if rtol is None else max(rtol, default_rtol)
        atol = default_atol if atol is None else max(atol, default_atol)
        got, want = float(got), float(want)
        if math.isfinite(want):
            same = math.isclose(got, want, rel_tol=rtol, abs_tol=atol)
        else:  # an infinity or a NaN, reproduced
            same = got == want or math.isnan(got) and math.isnan(want)
        if not same:
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
    if not want.is_floating_point():
        _compare_exactly(got, want, where)
        return
    if not got.is_floating_point():
        raise AssertionError(f"{where}: dtype {got.dtype}, expected a floating-point tensor")
    default_rtol, default_atol = tolerance(device, precision)
    rtol = default_rtol if rtol is None else max(rtol, default_rtol)
    atol = default_atol if atol is None else max(atol, default_atol)
    got64, want64 = got.detach().to("cpu", torch.float64), want.to(torch.float64)
    if torch.isnan(got64).any() and not torch.isnan(want64).any():
        raise AssertionError(f"{where}: {int(torch.isnan(got64).sum())} entries are NaN "
                             "(overflow in exp? masked rows?)")
    diff = (got64 - want64).abs()
    reproduced = (got64 == want64) | (torch.isnan(got64) & torch.isnan(want64))  # infinities and NaNs too
    bad = torch.where(torch.isfinite(want64), ~(diff <= atol + rtol * want64.abs()), ~reproduced)
    if bad.any():
        worst = tuple(int(i) for i in torch.unravel_index(torch.nan_to_num(diff, nan=float("inf")).argmax(), diff.shape))
        raise AssertionError(
            f"{where}: {int(bad.sum())} of {want.numel()} entries differ from the reference; "
            f"largest difference {diff[worst].item():.3g} at index {worst} "
            f"(allowed: {atol:g} + {rtol:g}·|reference|)")


def _compare_exactly(got: torch.Tensor, want: torch.Tensor, where: str) -> None:
    """Boolean and integer tensors (masks, token ids, counts, indices): equal, entry by entry."""
    kind = "torch.bool" if want.dtype == torch.bool else "an integer dtype"
    if (want.dtype == torch.bool) != (got.dtype == torch.bool) or got.is_floating_point() or got.is_complex():
        raise AssertionError(f"{where}: dtype {got.dtype}, expected {kind}")
    wrong = got.detach().cpu() != want
    if wrong.any():
        first = tuple(wrong.nonzero()[0].tolist())
        raise AssertionError(f"{where}: {int(wrong.sum())} of {want.numel()} entries differ "
                             f"(the first at index {first})")


# --------------------------------------------------------------------------- the hidden check


def where_of(name: str, case: dict) -> str:
    return f"{name}, hidden case '{case['id']}'"


def group_of(case: dict) -> str:
    """Hidden cases earn partial credit by group; a case without one is in the group 'all'."""
    return case.get("group", "all")


def compare_case(got: Any, case: dict, name: str, device: torch.device, check_device: bool = True) -> None:
    compare(got, case["expected"], where_of(name, case), device, case.get("rtol"), case.get("atol"),
            check_device, case_dtype(case), case.get("returns"))


def check_against_reference(assignment: str, name: str, obj: Any, substitutes: dict[str, Any] | None = None) -> None:
    """The hidden test of ``name``: run every stored case through ``obj``.

    ``substitutes`` ({global name: callable}) replace, for the duration of the check, other graded
    functions that ``obj`` calls, so that one mistake costs points once. They are the independent
    implementations the visible tests of the same cell define (on PyTorch built-ins, or written
    another way): a student sees them there already, so nothing the kernel holds during the check
    is worth taking. (The hidden cases are not in the sandbox.)

    Two modes, chosen by the grader through the environment:

    - ``COURSE_RECORD_DIR`` (grading a submission, in the sandbox): the inputs are there, the
      expected outputs are not. Record the student's outputs, case by case; the grader compares
      them outside the sandbox (``autograder.verdict``), so nothing in the kernel can see or forge
      the verdict.
    - ``COURSE_EXPECTED_DIR`` (validating the reference, in a trusted kernel): compare here, and
      raise AssertionError naming the first failure of every group that failed.

    Returns None on purpose: nbgrader reads a number displayed by a test cell as partial credit.
    """
    substitutes = substitutes or {}
    if os.environ.get(ENV_RECORD_DIR):
        record_outputs(assignment, name, obj, Path(os.environ[ENV_RECORD_DIR]), substitutes)
        return
    cases = load_expected(assignment)["cases"].get(name)
    if not cases:
        raise RuntimeError(f"no hidden cases for {name!r} in {assignment}")
    device = grading_device()
    failures: dict[str, str] = {}
    for case in cases:
        if group_of(case) in failures:
            continue
        try:
            compare_case(run_student(obj, case, device, substitutes, where_of(name, case)), case, name, device)
        except AssertionError as failure:
            failures[group_of(case)] = str(failure)
    if failures:
        raise AssertionError("\n".join(failures.values()))
    print(f"{name}: {len(cases)} hidden cases passed on {device.type}")


# --------------------------------------------------------------------------- recording (sandbox side)


def inputs_path(record_dir: Path, assignment: str) -> Path:
    return record_dir / f"{assignment}.inputs.pt"


def record_path(record_dir: Path, name: str) -> Path:
    return record_dir / "records" / f"{name}.pt"


def record_outputs(assignment: str, name: str, obj: Any, record_dir: Path, substitutes: dict[str, Any]) -> None:
    """Run every case and record, per case, the output as plain data or the error it raised."""
    cases = torch.load(inputs_path(record_dir, assignment), weights_only=True)["cases"].get(name, [])
    device = grading_device()
    outputs = []
    try:
        for case in cases:
            try:
                got = run_student(obj, case, device, substitutes, where_of(name, case))
            except AssertionError as error:
                outputs.append({"error": str(error)[:2000]})
                continue
            wrong = [t.device.type for t in tensors_in(got) if t.device.type != device.type]
            outputs.append({"value": {"__wrong_device__": wrong[0]} if wrong else plain(got)})
    finally:  # what ran before the run was cut short is kept
        path = record_path(record_dir, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"name": name, "outputs": outputs}, path)
    print(f"{name}: ran {len(cases)} hidden cases; the grader compares them with the reference")
