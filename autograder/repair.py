"""Read a submitted notebook however damaged it is, and put the course's cells back in order.

``read_submission`` turns a file into a notebook or a plain reason it cannot be one (too large,
empty, not JSON, nested too deeply, not a notebook), keeping only plain data. ``restore_cells`` makes the notebook's structure the assignment's again:
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


MAX_NOTEBOOK_BYTES = 32 << 20
MAX_CELLS = 2000  # an assignment has a few dozen; past this, the cells are the student's own extras


def read_submission(path: Path) -> tuple[object | None, list[str], list[str]]:
    """(notebook, notes, flags), or (None, [why it cannot be graded], flags).

    The notebook is rebuilt from plain data: each cell's type and source, and of its metadata
    only the nbgrader id that ``restore_cells`` matches against the assignment. Nothing else a
    student wrote (outputs, attachments, metadata of any depth, notebook metadata) goes further.
    """
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        return None, [f"the notebook file is {size:,} bytes, more than the {MAX_NOTEBOOK_BYTES:,} allowed"], \
            ["too large"]
    data = path.read_bytes()
    if not data.strip():
        return None, ["the notebook file is empty"], ["unreadable"]
    try:
        raw = json.loads(data.decode("utf-8", errors="strict"))
    except (UnicodeDecodeError, ValueError) as error:
        return None, [f"the file is not a notebook: not valid JSON ({str(error)[:120]})"], ["unreadable"]
    except RecursionError:
        return None, ["the file is not a notebook: its JSON is nested too deeply to read"], ["unreadable"]
    if not isinstance(raw, dict) or "cells" not in raw and "worksheets" not in raw:
        return None, ["the file is JSON but not a Jupyter notebook (no cells)"], ["unreadable"]
    notes, flags = [], []
    version = raw.get("nbformat")
    if version != 4:
        try:
            raw = json.loads(nbformat.writes(nbformat.reads(data.decode(), as_version=4)))
        except Exception as error:  # nbformat's converters raise whatever the old format trips
            return None, [f"the notebook could not be read ({type(error).__name__}: {str(error)[:120]})"], \
                ["unreadable"]
        notes.append(f"converted from notebook format {version} to 4")
    cells = raw.get("cells")
    if not isinstance(cells, list):
        return None, ["the file is JSON but not a Jupyter notebook (its cells are not a list)"], ["unreadable"]
    if len(cells) > MAX_CELLS:
        notes.append(f"the notebook has {len(cells):,} cells; only the first {MAX_CELLS:,} were read")
        flags.append("too many cells")
        cells = cells[:MAX_CELLS]
    notebook = nbformat.v4.new_notebook()
    dropped = 0
    for raw_cell in cells:
        cell = _plain_cell(raw_cell)
        if cell is None:
            dropped += 1
        else:
            notebook.cells.append(cell)
    if dropped:
        notes.append(f"{dropped} entries in the list of cells were not cells and were dropped")
    return notebook, notes, flags


def _plain_cell(raw) -> object | None:
    """A new cell with ``raw``'s type, source and nbgrader id, or None if ``raw`` is not a cell."""
    if not isinstance(raw, dict) or raw.get("cell_type") not in ("code", "markdown", "raw"):
        return None
    source = raw.get("source", "")
    if isinstance(source, list):
        source = "".join(part for part in source if isinstance(part, str))
    if not isinstance(source, str):
        source = ""
    maker = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell,
             "raw": nbformat.v4.new_raw_cell}[raw["cell_type"]]
    cell = maker(source)
    metadata = raw.get("metadata")
    nbgrader = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    grade_id = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
    if isinstance(grade_id, str) and grade_id:
        cell.metadata["nbgrader"] = {"grade_id": grade_id}
    return cell


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
        if grade_id not in trusted:  # no id, or one the assignment does not have: the student's own cell
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
    notebook.metadata = copy.deepcopy(release.metadata)
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
