"""The reference solution, taken from the one source: the nbgrader notebook in solutions/.

Code cells run in order, except test cells (nbgrader ``grade: true``): the imports, the solution
cells and anything else a student's notebook defines. Nothing is copied by hand.
"""
from __future__ import annotations

import contextlib
import io
from typing import Any

import nbformat

from autograder.course import source_notebook


def load_reference(assignment: str) -> dict[str, Any]:
    """What running the solution notebook's non-test cells defines (name -> object)."""
    notebook = nbformat.read(source_notebook(assignment), as_version=4)
    namespace: dict[str, Any] = {"__name__": f"reference_{assignment}"}
    for cell in notebook.cells:
        if cell.cell_type != "code" or cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            continue
        with contextlib.redirect_stdout(io.StringIO()):  # the notebook's own prints are for students
            exec(compile(cell.source, f"<{assignment} reference>", "exec"), namespace)
    return namespace
