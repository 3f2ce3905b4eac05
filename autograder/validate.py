"""``nbgrader validate`` with the hidden tests' expected outputs in place."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder.checks import ENV_EXPECTED_DIR
from autograder.course import NBGRADER_CONFIG, release_notebook, source_notebook
from autograder.expected import build_expected


def validate(assignment: str, release: bool = False) -> tuple[bool, str]:
    """Reference: every test passes (hidden ones included). Release (``--invert``): every test fails."""
    with tempfile.TemporaryDirectory() as tmp:
        build_expected(assignment, Path(tmp))
        notebook = release_notebook(assignment) if release else source_notebook(assignment)
        command = [str(Path(sys.executable).with_name("nbgrader")), "validate", str(notebook),
                   f"--JupyterApp.config_file={NBGRADER_CONFIG}", *(["--invert"] if release else [])]
        run = subprocess.run(command, capture_output=True, text=True, cwd=tmp,
                             env={**os.environ, ENV_EXPECTED_DIR: tmp})
    log = run.stdout + run.stderr
    # nbgrader validate exits 0 even when tests fail; its report is the verdict.
    ok = run.returncode == 0 and "Success! Your notebook passes all the tests." in log \
        if not release else run.returncode == 0 and "Success! The notebook does not pass any tests." in log
    return ok, log
