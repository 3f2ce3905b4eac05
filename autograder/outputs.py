"""Error outputs the grader writes into a student's notebook (and so into the feedback page)."""
from __future__ import annotations

import textwrap

from nbformat.v4 import new_output

WIDTH = 100  # the feedback page shows tracebacks unwrapped: a long line would run off the page


def error_output(ename: str, evalue: str):
    """An error output that nbgrader scores as a failure, its message wrapped for reading."""
    lines = [piece for line in f"{ename}: {evalue}".splitlines()
             for piece in textwrap.wrap(line, WIDTH, subsequent_indent="    ", break_on_hyphens=False) or [""]]
    return new_output("error", ename=ename, evalue=evalue, traceback=["\n".join(lines)])
