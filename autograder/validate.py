"""``nbgrader validate`` with the hidden tests' expected outputs in place (nbgrader's own Validator,
in this process: the command line takes seconds to start)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from unittest import mock

from autograder.checks import ENV_EXPECTED_DIR
from autograder.course import release_notebook, source_notebook
from autograder.expected import build_expected
from autograder.nbgrader_run import course_config


def validate(assignment: str, release: bool = False) -> tuple[bool, str]:
    """Reference: every test passes (hidden ones included). Release (``--invert``): every test fails.
    Returns (whether it did, a report naming each cell that did not)."""
    from nbgrader.validator import Validator

    config = course_config()
    config.Validator.invert = release
    notebook = release_notebook(assignment) if release else source_notebook(assignment)
    with tempfile.TemporaryDirectory() as tmp:
        build_expected(assignment, Path(tmp))
        # the kernel that nbgrader starts inherits it (not nbgrader.utils.setenv: that one deletes the
        # variable afterwards even when it was set before, as pytest's expected-outputs fixture sets it)
        with mock.patch.dict(os.environ, {ENV_EXPECTED_DIR: tmp}):
            results = Validator(config=config).validate(str(notebook))
    problems = {"type_changed": "a cell's type was changed", "changed": "a locked cell was changed",
                "passed": "a test passes on the stubs", "failed": "a test fails on the reference"}
    report = [f"{problems[kind]}:\n{cell['source'][:300]}\n{cell.get('raw_error', '')}"
              for kind in problems for cell in results.get(kind, [])]
    if report:
        return False, f"{notebook.name}: {len(report)} problem(s)\n\n" + "\n\n".join(report)
    return True, (f"{notebook.name}: every test fails on the stubs" if release
                  else f"{notebook.name}: every test passes, hidden tests included")
