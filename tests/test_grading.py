"""The instructor's round trip: simulated submissions are graded to the expected scores, with
feedback HTML per student and a grades CSV."""
from __future__ import annotations

import csv
from pathlib import Path

import nbformat
import pytest

from autograder.course import assignments, source_notebook
from autograder.grade import Options, grade
from submissions import filled_release, write_submission
from wrong_answers import wrong_answers


def points_per_test(assignment: str) -> dict[str, float]:
    notebook = nbformat.read(source_notebook(assignment), as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
            for c in notebook.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")}


@pytest.mark.parametrize("assignment", assignments())
def test_class_is_graded_to_the_expected_scores(assignment, tmp_path):
    points = points_per_test(assignment)
    total = sum(points.values())
    submissions = tmp_path / "submissions"
    write_submission(submissions, "full_marks", assignment, filled_release(assignment))
    write_submission(submissions, "untouched", assignment, filled_release(assignment, solved=False))
    write_submission(submissions, "renamed", assignment, filled_release(assignment), name="my copy (1).ipynb")
    (submissions / "empty_folder").mkdir()
    expected = {"full_marks": total, "untouched": 0, "renamed": total, "empty_folder": None}
    mutants = wrong_answers(assignment)
    assert set(mutants.TESTED_BY) == set(points), "one wrong answer per graded test"
    for test_id, answer_id in mutants.TESTED_BY.items():
        student = f"wrong_{answer_id}"
        write_submission(submissions, student, assignment,
                         filled_release(assignment, {answer_id: mutants.WRONG[answer_id]}))
        expected[student] = None  # loses part or all of test_id's points, and nothing else

    results = {r.student: r for r in grade(assignment, submissions, tmp_path / "work",
                                           options=Options(quiet=True, workers=2))}

    # The reference passes every test and the untouched release fails every test, cell by cell.
    assert results["full_marks"].tests == points and results["renamed"].tests == points
    assert results["untouched"].tests == {t: 0.0 for t in points}
    assert {s: r.score for s, r in results.items() if not s.startswith("wrong_")} == \
        {s: v for s, v in expected.items() if not s.startswith("wrong_")}
    for test_id, answer_id in mutants.TESTED_BY.items():
        lost = [t for t, p in results[f"wrong_{answer_id}"].tests.items() if p < points[t]]
        assert lost == [test_id], f"a wrong {answer_id} must lose points in {test_id} and nowhere else"
    assert any("my copy (1).ipynb" in note for note in results["renamed"].notes)
    assert results["empty_folder"].notes == ["no notebook in the submission"]

    for student, result in results.items():
        if student == "empty_folder":
            assert result.feedback is None
            continue
        html = Path(result.feedback).read_text()
        assert assignment in html and "BEGIN HIDDEN TESTS" not in html

    with open(tmp_path / "work" / f"grades_{assignment}.csv") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(expected)
    for student, score in expected.items():
        if student.startswith("wrong_"):
            continue
        assert rows[student]["score"] == ("" if score is None else str(float(score)))
        assert rows[student]["max_score"] == str(float(total))
    assert set(points) <= set(rows["full_marks"]), "one column per graded test"
