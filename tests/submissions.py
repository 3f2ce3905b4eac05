"""Build simulated student submissions from the release notebook, as a student would fill it in."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat

from autograder.course import release_notebook, source_notebook

MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.MULTILINE)


def solution_sources(assignment: str) -> dict[str, str]:
    """grade_id -> the reference answer's cell source, without the nbgrader markers."""
    notebook = nbformat.read(source_notebook(assignment), as_version=4)
    return {cell.metadata["nbgrader"]["grade_id"]: MARKERS.sub("", cell.source)
            for cell in notebook.cells if cell.get("metadata", {}).get("nbgrader", {}).get("solution")}


def setup_source(assignment: str) -> str:
    """The release's code cells that are neither answers nor tests (its imports), as one source."""
    notebook = nbformat.read(release_notebook(assignment), as_version=4)
    return "\n\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code"
                       and not {"solution", "grade"} & {k for k, v in cell.metadata.get("nbgrader", {}).items() if v})


def filled_release(assignment: str, answers: dict[str, str] | None = None, solved: bool = True):
    """The release notebook with every stub answered by the reference (``solved``), except ``answers``."""
    notebook = nbformat.read(release_notebook(assignment), as_version=4)
    reference = solution_sources(assignment) if solved else {}
    for cell in notebook.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if (answers or {}).get(grade_id) is not None:
            cell.source = answers[grade_id]
        elif grade_id in reference:
            cell.source = reference[grade_id]
    return notebook


def write_submission(folder: Path, student: str, assignment: str, notebook, name: str | None = None) -> Path:
    path = folder / student / (name or f"{assignment}.ipynb")
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def hidden_substitutes(assignment: str, name: str, namespace: dict) -> dict:
    """The ``substitutes`` the hidden check of ``name`` passes, made as its test cell makes them: the
    cell's own function and class definitions (its independent implementations; a class for a graded
    module that another one builds, as chapter 05's decoder step builds its score), run in ``namespace``."""
    notebook = nbformat.read(source_notebook(assignment), as_version=4)
    for cell in notebook.cells:
        if cell.cell_type != "code" or not cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            continue
        tree = ast.parse(cell.source)
        for call in ast.walk(tree):
            if not (isinstance(call, ast.Call) and getattr(call.func, "id", "") == "check_against_reference"
                    and len(call.args) > 1 and getattr(call.args[1], "value", None) == name):
                continue
            keyword = next((k for k in call.keywords if k.arg == "substitutes"), None)
            if keyword is None:
                return {}
            scope = dict(namespace)
            definitions = ast.Module([n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))],
                                     type_ignores=[])
            exec(compile(definitions, f"<test cell of {name}>", "exec"), scope)
            return eval(compile(ast.Expression(keyword.value), f"<substitutes of {name}>", "eval"), scope)
    raise KeyError(f"no hidden check of {name} in {assignment}")


def student_namespace(assignment: str, answers: dict[str, str]) -> dict:
    """What a student's kernel holds: the notebook's setup plus the given answer cells."""
    namespace: dict = {}
    exec(setup_source(assignment), namespace)
    for source in answers.values():
        exec(source, namespace)
    return namespace
