"""The reference solution, taken from the one source: the nbgrader notebook in solutions/.

Code cells run in order, except test cells (nbgrader ``grade: true``): the imports, the solution
cells and anything else a student's notebook defines. Nothing is copied by hand.
"""
from __future__ import annotations

import contextlib
import io
import json
from typing import Any

from autograder.course import source_notebook


def load_reference(assignment: str) -> dict[str, Any]:
    """What running the solution notebook's non-test cells defines (name -> object)."""
    notebook = json.loads(source_notebook(assignment).read_text())  # plain JSON: no Jupyter needed to grade
    namespace: dict[str, Any] = {"__name__": f"reference_{assignment}"}
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code" or cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        with contextlib.redirect_stdout(io.StringIO()):  # the notebook's own prints are for students
            exec(compile(source, f"<{assignment} reference>", "exec"), namespace)
    return namespace
