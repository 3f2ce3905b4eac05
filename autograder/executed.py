"""Take the outputs of a sandboxed run into the grader's own copy of the notebook.

The runner writes the executed notebook into the scratch folder, where the student's kernel could
rewrite it, replace it by a link, a FIFO or a device, or inflate it. So the grader keeps the
notebook it sent into the sandbox and takes from the file only each code cell's outputs and
execution count, as plain data it checks: known output types, text and the image types the
feedback page shows, strings only, a bounded number of outputs of bounded size. The cells, their
sources and their metadata stay the grader's.
"""
from __future__ import annotations

import json
from pathlib import Path

from nbformat.v4 import new_output

from autograder.untrusted import Refused, read_bytes

MIME_TYPES = ("text/plain", "text/html", "text/markdown", "text/latex", "image/png", "image/jpeg")
MAX_OUTPUTS_PER_CELL = 500


class Unusable(ValueError):
    """What the sandbox left cannot be used, and why."""


def _text(value) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return None


def clean_output(raw) -> object | None:
    """A new output with ``raw``'s checked content, or None if ``raw`` is not a usable output."""
    if not isinstance(raw, dict):
        return None
    kind = raw.get("output_type")
    if kind == "stream":
        text = _text(raw.get("text"))
        name = raw.get("name") if raw.get("name") in ("stdout", "stderr") else "stdout"
        return None if text is None else new_output("stream", name=name, text=text)
    if kind == "error":
        ename, evalue, traceback = raw.get("ename"), raw.get("evalue"), raw.get("traceback", [])
        if not (isinstance(ename, str) and isinstance(evalue, str) and isinstance(traceback, list)):
            return None
        return new_output("error", ename=ename, evalue=evalue,
                          traceback=[line for line in traceback if isinstance(line, str)])
    if kind in ("display_data", "execute_result"):
        data = raw.get("data")
        if not isinstance(data, dict):
            return None
        kept = {mime: _text(data[mime]) for mime in MIME_TYPES if _text(data.get(mime)) is not None}
        if not kept:
            return None
        if kind == "execute_result":
            count = raw.get("execution_count")
            return new_output(kind, data=kept, execution_count=count if type(count) is int else None)
        return new_output(kind, data=kept)
    return None


def take_outputs(notebook, scratch: Path, relative: str, max_bytes: int) -> None:
    """Copy the outputs of ``scratch/relative`` onto ``notebook``'s code cells, in place.

    Raises ``Unusable`` (the notebook then keeps no outputs) when the file is missing, is not a
    regular file, is larger than ``max_bytes``, is not a notebook, or does not have the cells the
    grader sent in."""
    try:
        raw = json.loads(read_bytes(scratch, relative, max_bytes))
    except FileNotFoundError:
        raise Unusable("the run wrote no notebook") from None
    except Refused as error:
        raise Unusable(str(error)) from None
    except (ValueError, RecursionError):
        raise Unusable("the notebook the run left is not valid JSON") from None
    cells = raw.get("cells") if isinstance(raw, dict) else None
    if not isinstance(cells, list) or len(cells) != len(notebook.cells):
        raise Unusable("the notebook the run left does not have the cells that were sent in")
    for mine, theirs in zip(notebook.cells, cells):
        if mine.cell_type != "code" or not isinstance(theirs, dict):
            continue
        outputs = theirs.get("outputs") if isinstance(theirs.get("outputs"), list) else []
        mine.outputs = [o for o in map(clean_output, outputs[:MAX_OUTPUTS_PER_CELL]) if o is not None]
        count = theirs.get("execution_count")
        mine.execution_count = count if type(count) is int else None
