"""Outputs the grader writes into a student's notebook (and so into the feedback page)."""
from __future__ import annotations

import textwrap

from nbformat.v4 import new_output

WIDTH = 100  # the feedback page shows outputs unwrapped: a long line would run off the page


def wrapped(text: str) -> str:
    """``text`` with every line wrapped at ``WIDTH``, continuations indented."""
    return "\n".join(piece for line in text.splitlines()
                     for piece in textwrap.wrap(line, WIDTH, subsequent_indent="    ", break_on_hyphens=False) or [""])


def error_output(ename: str, evalue: str):
    """An error output that nbgrader scores as a failure, its message wrapped for reading."""
    return new_output("error", ename=ename, evalue=evalue, traceback=[wrapped(f"{ename}: {evalue}")])


def message_output(text: str):
    """A plain message (stdout, so nbgrader does not zero the cell), wrapped for reading."""
    return new_output("stream", name="stdout", text=wrapped(text) + "\n")
