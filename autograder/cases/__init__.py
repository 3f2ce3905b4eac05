"""Hidden test cases, one module per assignment: ``07_self_attention`` -> ``autograder/cases/self_attention.py``.

Each module defines ``CASES = {graded name: generator}``; a generator takes a seeded
``torch.Generator`` and yields case dicts. These modules stay with the grader: a sandboxed kernel
never sees them, only their inputs.

- ``id``: what the case exercises, shown to the student when it fails;
- ``kind``: ``"function"`` (default): call ``obj(*args, **kwargs)``;
  ``"module"``: ``obj(**init)``, load ``state_dict``, then call its ``method`` (default
  ``forward``). Leave ``state_dict`` out and the grader draws weights for every parameter of the
  reference's module, by its names; loading is strict on parameters, and buffers are free;
- ``args``, ``kwargs``, ``init``, ``state_dict``: tensors live on the CPU here and reach the code on
  the grading device, floating-point ones in ``dtype`` (float32 unless the case sets
  ``dtype=torch.float64``; the reference always gets float64). Placeholders (``autograder.checks``):
  ``GRADING_DEVICE`` for the device; ``{BUILD: "coursekit.module:factory", "kwargs": {...}}`` for an
  object the function takes (a step function, a small model) that both sides build alike;
  ``{PARAMETER: tensor, "grad": tensor}`` for a leaf tensor with a gradient; ``{DEVICE: "meta"}``
  for a given device (a function that ignores its ``device`` argument fails on "meta", even on a
  CPU grader: observe its result's "devices" and "shapes");
- ``observe`` (optional): what to record instead of the return value, a list of "return",
  "args" (the inputs after the call), "grads" (the gradients of the parameters among the inputs),
  "state" (the module's state_dict after the call), for functions that work in place, and
  "devices" and "shapes" of the result's tensors;
- ``grad`` (optional): run with autograd on (default for functions) or off (default for modules);
- ``returns`` (optional): names of the parts of a tuple result, for the messages ("output", "weights");
- ``group`` (optional): cases in one group earn their share of the points together; a cell's
  points are split evenly among the groups of its hidden cases (default: one group, all or nothing);
- ``rtol``, ``atol`` (optional): looser tolerances where the reference itself is only that precise.

The grader adds ``expected``: the reference solution's output on the same inputs.

Randomness is an input: a graded function that samples takes uniform numbers (or a tensor of them)
as an argument and the docstring prescribes how it uses them, so its answer is unique. Inputs near
a tie (two equal scores for a sort, an argmax, a top-k; a uniform number on a cumulative
probability's boundary) would make the answer depend on float32 vs float64 vs TF32: draw them with
``untied`` and ``uniform_clear_of``.
"""
import importlib
from types import ModuleType

import torch


def cases_module(assignment: str) -> ModuleType:
    """The module for ``NN_slug`` is ``autograder.cases.slug``."""
    slug = assignment.split("_", 1)[1] if assignment[:2].isdigit() else assignment
    try:
        return importlib.import_module(f"autograder.cases.{slug}")
    except ModuleNotFoundError as error:
        raise KeyError(f"no hidden cases for {assignment!r}: expected autograder/cases/{slug}.py") from error


def randn(g: torch.Generator, *shape: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    """Normal numbers drawn in float64 from ``g`` and stored in float32, as the student gets them."""
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale + shift).float()


def module_weights(module: torch.nn.Module, g: torch.Generator, embedding_scale: float | None = None) -> dict:
    """Weights for every parameter of ``module``, by name, drawn from ``g``: layer norms near (1, 0), matrices
    scaled by 1/sqrt(fan-in), biases small; embedding tables at ``embedding_scale`` when it is given."""
    weights = {}
    for prefix, layer in module.named_modules():
        for name, parameter in layer.named_parameters(recurse=False):
            shape = tuple(parameter.shape)
            if isinstance(layer, torch.nn.LayerNorm):
                value = randn(g, *shape, scale=0.2, shift=1.0 if name == "weight" else 0.0)
            elif embedding_scale is not None and isinstance(layer, torch.nn.Embedding):
                value = randn(g, *shape, scale=embedding_scale)
            elif len(shape) > 1:
                value = randn(g, *shape, scale=shape[-1] ** -0.5)
            else:
                value = randn(g, *shape, scale=0.2)
            weights[f"{prefix}.{name}" if prefix else name] = value
    return weights


def untied(g: torch.Generator, *shape: int, gap: float = 0.05, scale: float = 1.0) -> torch.Tensor:
    """Random scores whose values along the last dimension are at least ``gap * scale`` apart, in a
    random order: sorting, argmax and top-k give one answer in every precision."""
    steps = gap + torch.rand(*shape, generator=g, dtype=torch.float64)
    values = steps.cumsum(-1) - steps.sum(-1, keepdim=True) / 2
    order = torch.argsort(torch.rand(*shape, generator=g), dim=-1)
    return (values.gather(-1, order) * scale).float()


def uniform_clear_of(g: torch.Generator, cumulative: torch.Tensor, gap: float = 1e-4) -> float:
    """A uniform number in [0, 1) at least ``gap`` from every value of ``cumulative`` (the
    boundaries where an inverse-CDF sampler switches token), drawn with ``g``."""
    for _ in range(1000):
        u = float(torch.rand((), generator=g, dtype=torch.float64))
        if bool(((cumulative.double() - u).abs() >= gap).all()):
            return u
    raise ValueError("no uniform number clear of the boundaries: lower the gap")
