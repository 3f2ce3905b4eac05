"""The reference solution, taken from the one source: the nbgrader notebook in solutions/.

Code cells run in order, except test cells (nbgrader ``grade: true``): the imports, the solution
cells and anything else a student's notebook defines. Nothing is copied by hand.
"""
from __future__ import annotations

import ast
import contextlib
import io
from dataclasses import dataclass
from typing import Any

import nbformat

from autograder.course import source_notebook


@dataclass
class Reference:
    namespace: dict[str, Any]     # what running the notebook's non-test cells defines
    setup_source: str             # the code cells that are not solution or test cells (imports)
    sources: dict[str, str]       # top-level name -> source of the solution cell defining it

    def __getitem__(self, name: str) -> Any:
        return self.namespace[name]


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def defined_names(source: str) -> list[str]:
    """Top-level functions and classes a cell defines."""
    return [node.name for node in ast.parse(source).body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef))]


def load_reference(assignment: str) -> Reference:
    notebook = nbformat.read(source_notebook(assignment), as_version=4)
    namespace: dict[str, Any] = {"__name__": f"reference_{assignment}"}
    setup, sources = [], {}
    for cell in notebook.cells:
        if cell.cell_type != "code" or _nbgrader(cell).get("grade"):
            continue
        code = cell.source
        with contextlib.redirect_stdout(io.StringIO()):  # the notebook's own prints are for students
            exec(compile(code, f"<{assignment} reference>", "exec"), namespace)
        if _nbgrader(cell).get("solution"):
            for name in defined_names(code):
                sources[name] = code
        else:
            setup.append(code)
    return Reference(namespace, "\n\n".join(setup), sources)
