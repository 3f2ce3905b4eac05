"""Read a submitted notebook however damaged it is, and put the course's cells back in order.

``read_submission`` turns a file into a notebook or a plain reason it cannot be one (empty, not
JSON, not a notebook). ``restore_cells`` makes the notebook's structure the assignment's again:
every test and read-only cell present once, as a code or Markdown cell as it should be, with the
trusted source from solutions/ (hidden tests included); answer cells keep the student's code.
Every change is reported by name.
"""
from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import nbformat
from nbformat.warnings import DuplicateCellId, MissingIDFieldWarning

# nbformat renames duplicated cell ids and adds missing ones, warning on the terminal each time;
# restore_cells reports what matters (a test cell handed in twice) in the student's notes instead
warnings.filterwarnings("ignore", category=DuplicateCellId)
warnings.filterwarnings("ignore", category=MissingIDFieldWarning)


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def read_submission(path: Path) -> tuple[object | None, list[str]]:
    """(notebook, notes), or (None, [why it cannot be graded])."""
    data = path.read_bytes()
    if not data.strip():
        return None, ["the notebook file is empty"]
    try:
        raw = json.loads(data.decode("utf-8", errors="strict"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, [f"the file is not a notebook: not valid JSON ({str(error)[:120]})"]
    if not isinstance(raw, dict) or "cells" not in raw and "worksheets" not in raw:
        return None, ["the file is JSON but not a Jupyter notebook (no cells)"]
    notes = []
    version = raw.get("nbformat")
    try:
        notebook = nbformat.reads(json.dumps(raw), as_version=4)
    except Exception as error:
        return None, [f"the notebook could not be read ({type(error).__name__}: {str(error)[:120]})"]
    if version != 4:
        notes.append(f"converted from notebook format {version} to 4")
    for cell in notebook.cells:
        if not isinstance(cell.get("source"), str):
            cell["source"] = "".join(cell.get("source") or [])
    return notebook, notes


def restore_cells(notebook, source, release) -> tuple[object, list[str]]:
    """The submission with the assignment's cells restored.

    ``source`` is the solutions notebook (what the grader runs); ``release`` the student version
    (what the student was given: an edit is a difference from it).
    """
    trusted = {nbgrader_meta(c)["grade_id"]: c for c in source.cells if nbgrader_meta(c).get("grade_id")}
    given = {nbgrader_meta(c)["grade_id"]: c.source for c in release.cells if nbgrader_meta(c).get("grade_id")}
    order = list(trusted)
    notes, seen, cells = [], set(), []
    for cell in notebook.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id not in trusted:
            if grade_id:  # an id the assignment does not have: the student's own cell now
                cell.metadata.pop("nbgrader", None)
            cells.append(cell)
            continue
        reference = trusted[grade_id]
        if grade_id in seen:
            notes.append(f"cell '{grade_id}' appeared twice; the copy was removed")
            continue
        seen.add(grade_id)
        if nbgrader_meta(reference).get("solution"):
            if cell.cell_type != reference.cell_type:
                notes.append(f"answer cell '{grade_id}' had been changed to {cell.cell_type}; changed back")
                cell = _as_type(cell, reference.cell_type, cell.source)
            cell.metadata["nbgrader"] = copy.deepcopy(reference.metadata["nbgrader"])
        else:
            if cell.cell_type != reference.cell_type:
                notes.append(f"cell '{grade_id}' had been changed to {cell.cell_type}; restored")
            elif cell.source.strip() != given.get(grade_id, reference.source).strip() and nbgrader_meta(reference).get("grade"):
                notes.append(f"test cell '{grade_id}' had been edited; restored")
            cell = _as_type(cell, reference.cell_type, reference.source)
            cell.metadata["nbgrader"] = copy.deepcopy(reference.metadata["nbgrader"])
        cells.append(cell)
    for grade_id in order:  # put back what was deleted, after the cell that precedes it in the assignment
        if grade_id in seen:
            continue
        reference = copy.deepcopy(trusted[grade_id])
        if nbgrader_meta(reference).get("solution"):
            reference.source = "raise NotImplementedError()  # the answer cell was deleted"
            notes.append(f"answer cell '{grade_id}' was missing; an empty one was put back")
        elif nbgrader_meta(reference).get("grade"):
            notes.append(f"test cell '{grade_id}' was missing; restored")
        else:
            notes.append(f"cell '{grade_id}' was missing; restored")
        before = order[: order.index(grade_id)]
        at = max((i + 1 for i, c in enumerate(cells) if nbgrader_meta(c).get("grade_id") in before), default=0)
        if reference.cell_type == "code":
            reference.outputs, reference.execution_count = [], None
        cells.insert(at, reference)
        seen.add(grade_id)
    notebook.cells = cells
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return notebook, notes


def _as_type(cell, cell_type: str, source: str):
    if cell.cell_type == cell_type:
        cell.source = source
        return cell
    maker = nbformat.v4.new_code_cell if cell_type == "code" else nbformat.v4.new_markdown_cell
    new = maker(source)
    new.metadata = copy.deepcopy(cell.get("metadata", {}))
    if "id" in cell:
        new["id"] = cell["id"]
    return new
