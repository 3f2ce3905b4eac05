"""Grade a folder of submissions: intake, autograde, feedback, grades CSV, summary.

``submissions/`` holds one sub-folder per student (the folder's name is the student id) with the
student's notebook in it. Everything the grader writes goes to the working folder (git-ignored):

    WORKDIR/source -> solutions/          WORKDIR/submitted/<student>/<assignment>/
    WORKDIR/gradebook.db                  WORKDIR/autograded/<student>/<assignment>/
    WORKDIR/expected/<assignment>.pt      WORKDIR/feedback/<student>/<assignment>/<assignment>.html
    WORKDIR/grades_<assignment>.csv
"""
from __future__ import annotations

import csv
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from autograder.checks import ENV_EXPECTED_DIR
from autograder.course import source_notebook
from autograder.expected import build_expected
from autograder.nbgrader_run import nbgrader, prepare_course_root


@dataclass
class StudentResult:
    student: str
    score: float | None = None          # None: could not be graded
    max_score: float = 0.0
    tests: dict[str, float] = field(default_factory=dict)  # grade_id -> points earned
    notes: list[str] = field(default_factory=list)
    feedback: Path | None = None


def student_id(folder_name: str) -> str:
    """nbgrader ids: letters, digits, '-', '_' and '.'; anything else becomes '_'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", folder_name).strip(".") or "unnamed"


def find_notebook(folder: Path, assignment: str) -> tuple[Path | None, list[str]]:
    """The student's notebook for ``assignment`` and what was odd about finding it."""
    exact = folder / f"{assignment}.ipynb"
    if exact.exists():
        return exact, []
    candidates = sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if len(candidates) == 1:
        return candidates[0], [f"notebook was named {candidates[0].relative_to(folder)}; graded as {assignment}.ipynb"]
    if not candidates:
        return None, ["no notebook in the submission"]
    return None, [f"several notebooks and none named {assignment}.ipynb: "
                  + ", ".join(str(p.relative_to(folder)) for p in candidates)]


def intake(assignment: str, submissions: Path, root: Path) -> dict[str, StudentResult]:
    """Copy each student's notebook to ROOT/submitted/<student>/<assignment>/<assignment>.ipynb."""
    results = {}
    for folder in sorted(p for p in submissions.iterdir() if p.is_dir()):
        sid = student_id(folder.name)
        result = results.setdefault(sid, StudentResult(sid))
        notebook, notes = find_notebook(folder, assignment)
        result.notes += notes
        target = root / "submitted" / sid / assignment
        if target.exists():
            shutil.rmtree(target)
        if notebook is not None:
            target.mkdir(parents=True)
            shutil.copy2(notebook, target / f"{assignment}.ipynb")
    return results


def read_scores(assignment: str, db_url: str, result: StudentResult) -> None:
    with Gradebook(db_url) as gradebook:
        try:
            submission = gradebook.find_submission_notebook(assignment, assignment, result.student)
        except MissingEntry:
            return
        result.score, result.max_score = submission.score, submission.max_score
        result.tests = {grade.name: grade.score for grade in submission.grades if grade.cell_type == "code"}


def test_points(assignment: str, db_url: str) -> dict[str, float]:
    """grade_id -> points, for the assignment's graded test cells, in notebook order."""
    with Gradebook(db_url) as gradebook:
        notebook = gradebook.find_notebook(assignment, assignment)
        return {cell.name: cell.max_score for cell in notebook.grade_cells if cell.cell_type == "code"}


def write_csv(path: Path, tests: dict[str, float], results: list[StudentResult]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *tests, "score", "max_score", "notes"])
        for r in results:
            writer.writerow([r.student, *(r.tests.get(t, "") for t in tests),
                             "" if r.score is None else r.score, sum(tests.values()), "; ".join(r.notes)])


def grade(assignment: str, submissions: Path, workdir: Path, db_url: str | None = None,
          csv_path: Path | None = None, quiet: bool = False) -> list[StudentResult]:
    source_notebook(assignment)  # a clear error for an unknown assignment
    if not submissions.is_dir():
        raise FileNotFoundError(f"{submissions} is not a folder of submissions (one sub-folder per student)")
    root = prepare_course_root(workdir)
    db_url = db_url or f"sqlite:///{root / 'gradebook.db'}"
    db = [f"--CourseDirectory.db_url={db_url}"]
    say = (lambda *a: None) if quiet else print

    nbgrader(root, "generate_assignment", assignment, "--force", *db)  # records the tests in the gradebook
    env = {ENV_EXPECTED_DIR: str(build_expected(assignment, root / "expected").parent)}
    results = intake(assignment, submissions, root)
    for i, result in enumerate(results.values(), 1):
        say(f"[{i}/{len(results)}] grading {result.student}")
        if not (root / "submitted" / result.student / assignment).exists():
            continue
        run = nbgrader(root, "autograde", assignment, f"--student={result.student}", "--force", *db,
                       env=env, check=False)
        if run.returncode != 0:
            result.notes.append("could not be autograded: " + last_error(run.stdout + run.stderr))
        read_scores(assignment, db_url, result)
    nbgrader(root, "generate_feedback", assignment, "--force", *db, check=False)
    for result in results.values():
        feedback = root / "feedback" / result.student / assignment / f"{assignment}.html"
        result.feedback = feedback if feedback.exists() else None

    tests = test_points(assignment, db_url)
    csv_path = csv_path or root / f"grades_{assignment}.csv"
    write_csv(csv_path, tests, list(results.values()))
    say(summary(assignment, tests, list(results.values()), csv_path, root / "feedback"))
    return list(results.values())


def last_error(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if "ERROR" in line or "Error" in line]
    return lines[-1][:300] if lines else "nbgrader failed (see its log)"


def summary(assignment: str, tests: dict[str, float], results: list[StudentResult], csv_path: Path,
            feedback_dir: Path) -> str:
    total = sum(tests.values())
    lines = [f"\n{assignment}: {len(results)} submissions, {total:g} points"]
    width = max([len(r.student) for r in results] + [7])
    for r in results:
        score = "not graded" if r.score is None else f"{r.score:g}/{total:g}"
        lines.append(f"  {r.student:<{width}}  {score:>10}  {'; '.join(r.notes)}")
    graded = [r for r in results if r.score is not None]
    if graded:
        lines.append("  pass rate per test: " + ", ".join(
            f"{t} {sum(r.tests.get(t, 0) == p for r in graded)}/{len(graded)}" for t, p in tests.items()))
    lines.append(f"  grades: {csv_path}\n  feedback: {feedback_dir}/<student>/{assignment}/{assignment}.html")
    return "\n".join(lines)
