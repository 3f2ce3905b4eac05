"""Hidden test cases, one module per assignment: ``07_self_attention`` -> ``autograder/cases/self_attention.py``.

Each module defines ``CASES = {graded name: generator}``; a generator takes a seeded
``torch.Generator`` and yields case dicts:

- ``id``: what the case exercises, shown to the student when it fails;
- ``kind``: ``"function"`` (default): call ``obj(*args, **kwargs)``;
  ``"module"``: ``obj(**init)``, load ``state_dict``, then call it with ``args``/``kwargs``;
- ``args``, ``kwargs``, ``init``, ``state_dict``: tensors live on the CPU here and are moved to
  the grading device; ``GRADING_DEVICE`` stands for the device itself;
- ``rtol``, ``atol`` (optional): looser tolerances where the reference itself is only that precise;

The grader adds ``expected``: the reference solution's output on the same inputs.
"""
import importlib
from types import ModuleType



def cases_module(assignment: str) -> ModuleType:
    """The module for ``NN_slug`` is ``autograder.cases.slug``."""
    slug = assignment.split("_", 1)[1] if assignment[:2].isdigit() else assignment
    try:
        return importlib.import_module(f"autograder.cases.{slug}")
    except ModuleNotFoundError as error:
        raise KeyError(f"no hidden cases for {assignment!r}: expected autograder/cases/{slug}.py") from error
