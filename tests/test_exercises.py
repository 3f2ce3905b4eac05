"""Every exercise notebook: release in sync, committed clean, reference passes, stubs fail."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import nbformat
import pytest

from autograder.checks import ENV_EXPECTED_DIR
from autograder.course import NOTEBOOKS, REPO, assignments, release_notebook, source_notebook
from autograder.release import generate_release
from autograder.validate import validate

ASSIGNMENTS = assignments()


def test_there_are_assignments():
    assert "07_self_attention" in ASSIGNMENTS


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_what_nbgrader_generates(assignment, tmp_path):
    generated = generate_release(assignment, tmp_path)
    committed = NOTEBOOKS / assignment
    generated_files = sorted(p.relative_to(generated) for p in generated.rglob("*") if p.is_file())
    committed_files = sorted(p.relative_to(committed) for p in committed.rglob("*") if p.is_file())
    assert generated_files == committed_files, "notebooks/ differs from solutions/: run `make release`"
    for name in generated_files:
        a, b = (generated / name).read_bytes(), (committed / name).read_bytes()
        if name.suffix == ".ipynb":
            a, b = json.loads(a), json.loads(b)
        assert a == b, f"{committed / name} is out of date: run `make release`"


@pytest.mark.parametrize("path", [source_notebook(a) for a in ASSIGNMENTS] + [release_notebook(a) for a in ASSIGNMENTS],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_notebooks_are_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [i for i, cell in enumerate(notebook.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"cells {dirty} of {path.name} have outputs: clear them before committing"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_graded_cells_have_hidden_tests_and_points(assignment):
    notebook = nbformat.read(source_notebook(assignment), as_version=4)
    graded = [c for c in notebook.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    assert 3 <= len(graded) <= 6, "3 to 6 graded exercises per notebook"
    for cell in graded:
        meta = cell.metadata["nbgrader"]
        assert meta.get("points", 0) > 0, f"{meta['grade_id']} has no points"
        assert "### BEGIN HIDDEN TESTS" in cell.source, f"{meta['grade_id']} has no hidden tests"
        assert "check_against_reference(" in cell.source


def test_the_instructors_validate_command(expected_dir):
    """`python -m autograder validate` (nbgrader validate with the hidden tests in place) on one assignment,
    both ways. That every reference passes and every release fails each test, for every assignment, is
    proven once per run where the notebooks are executed anyway: nbval runs each reference top to
    bottom (below), and the grading round trip (tests/test_grading.py) scores every test cell of the
    reference full and of the untouched release zero."""
    before = os.environ[ENV_EXPECTED_DIR]  # set by the expected_dir fixture, as for every test after this one
    ok, log = validate("07_self_attention")
    assert ok, log
    ok, log = validate("07_self_attention", release=True)
    assert ok, log
    assert os.environ.get(ENV_EXPECTED_DIR) == before, "validate leaves the environment as it found it"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_reference_notebook_runs_top_to_bottom(assignment, expected_dir, tmp_path):
    """nbval executes the solution notebook in a fresh kernel, hidden tests included."""
    run = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
                          "--rootdir", str(tmp_path), str(source_notebook(assignment))],
                         capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, ENV_EXPECTED_DIR: str(expected_dir)}, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout, run.stdout[-2000:]


def test_the_student_edition_holds_no_solutions_and_the_same_notebooks(tmp_path):
    from autograder.student_edition import leaks, student_edition

    out = student_edition(tmp_path / "edition")
    assert not (out / "solutions").exists() and not (out / "autograder").exists()
    assert not leaks(out)
    for requirements in ("requirements.txt", "requirements-nodeps.txt"):
        assert (out / requirements).read_bytes() == (REPO / requirements).read_bytes()
    for notebook in NOTEBOOKS.glob("*/*.ipynb"):
        assert (out / "notebooks" / notebook.relative_to(NOTEBOOKS)).read_bytes() == notebook.read_bytes()
    (out / "notebooks" / "planted.py").write_text("### BEGIN SOLUTION\n")
    assert leaks(out), "the leak check finds a planted solution"


def test_gpu_check_runs_on_the_cpu_and_says_so():
    """`make gpu-check` on a machine without CUDA: the same checks, on the CPU, with a clear line."""
    run = subprocess.run([sys.executable, "-m", "autograder.gpu_check", "--skip-grading", "--skip-pages"],
                         capture_output=True, text=True, timeout=600, cwd=REPO)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "no CUDA: checked on CPU" in run.stdout
    for assignment in ASSIGNMENTS:
        row = next(line for line in run.stdout.splitlines() if line.startswith(assignment))
        passed, total = re.search(r"(\d+)/(\d+)", row).groups()
        assert passed == total and int(total) > 0, row
