"""The instructor's round trip: simulated submissions are graded to the expected scores, with
feedback HTML per student and a grades CSV."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.dbutil import _temp_alembic_ini

from autograder.course import assignments, source_notebook
from autograder.grade import Options, grade
from autograder.nbgrader_run import alembic_head
from submissions import filled_release, write_submission
from wrong_answers import wrong_answers


def points_per_test(assignment: str) -> dict[str, float]:
    notebook = nbformat.read(source_notebook(assignment), as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
            for c in notebook.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")}


@pytest.mark.parametrize("assignment", assignments())
def test_class_is_graded_to_the_expected_scores(assignment, tmp_path):
    """The reference, the untouched release, and every function's wrong answer, in two students (the
    odd and the even functions wrong), graded through the real grader. Intake's cases (renamed
    notebooks, empty folders, archives) are graded once, in the class of tests/bad_submissions.py."""
    points = points_per_test(assignment)
    total = sum(points.values())
    submissions = tmp_path / "submissions"
    write_submission(submissions, "full_marks", assignment, filled_release(assignment))
    write_submission(submissions, "untouched", assignment, filled_release(assignment, solved=False))
    mutants = wrong_answers(assignment)
    assert set(mutants.TESTED_BY) == set(points), "one wrong answer per graded test"
    tests = sorted(mutants.TESTED_BY, key=list(points).index)
    wrong = {"wrong_odd": tests[0::2], "wrong_even": tests[1::2]}
    for student, wrong_tests in wrong.items():
        answers = {mutants.TESTED_BY[t]: mutants.WRONG[mutants.TESTED_BY[t]] for t in wrong_tests}
        write_submission(submissions, student, assignment, filled_release(assignment, answers))

    results = {r.student: r for r in grade(assignment, submissions, tmp_path / "work",
                                           options=Options(quiet=True, workers=2))}

    # The reference passes every test and the untouched release fails every test, cell by cell.
    assert results["full_marks"].tests == points and results["full_marks"].score == total
    assert results["untouched"].tests == {t: 0.0 for t in points} and results["untouched"].score == 0
    for student, wrong_tests in wrong.items():
        lost = [t for t, p in results[student].tests.items() if p < points[t]]
        assert sorted(lost) == sorted(wrong_tests), \
            f"{student} must lose points in {wrong_tests} (its wrong answers' tests) and nowhere else"

    for student, result in results.items():
        html = Path(result.feedback).read_text()
        assert assignment in html and "BEGIN HIDDEN TESTS" not in html

    with open(tmp_path / "work" / f"grades_{assignment}.csv") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(results)
    assert rows["full_marks"]["score"] == str(float(total)) and rows["untouched"]["score"] == "0.0"
    assert all(row["max_score"] == str(float(total)) for row in rows.values())
    assert set(points) <= set(rows["full_marks"]), "one column per graded test"


def test_the_gradebook_revision_is_the_one_alembic_reports():
    """The grader tells nbgrader the gradebook's schema revision in-process; `alembic heads` agrees."""
    with _temp_alembic_ini("sqlite:///unused.db") as ini:
        heads = subprocess.run([str(Path(sys.executable).with_name("alembic")), "-c", ini, "heads"],
                               capture_output=True, text=True, check=True).stdout
    assert heads.split()[0] == alembic_head()
