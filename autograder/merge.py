"""Combine the working folders of sharded runs (``grade --shard i/n``) into one.

Each shard graded a slice of the class into its own working folder and gradebook. Merging copies
the judged notebooks, feedback, originals and results into OUT, then rebuilds OUT's gradebook
from the judged notebooks (``nbgrader autograde --no-execute``: nothing runs again) and writes the
class's CSV and summary.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from autograder.grade import ClassGrader, Options, StudentResult
from autograder.reports import summary, write_csv


def merge(assignment: str, out: Path, shards: list[Path], db_url: str | None = None) -> list[StudentResult]:
    grader = ClassGrader(assignment, out, db_url, Options(quiet=True))
    results: dict[str, StudentResult] = {}
    for shard in shards:
        for path in sorted((shard / "results" / assignment).glob("*.json")):
            result = StudentResult(**json.loads(path.read_text()))
            if result.student in results:
                raise ValueError(f"{result.student} was graded in two shards: {shard} and another")
            results[result.student] = result
            for part in ("submitted", "feedback", "originals", "autograded"):
                source = shard / part / result.student
                if source.exists():
                    shutil.copytree(source, out / part / result.student, dirs_exist_ok=True)
            grader.result_path(result.student).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, grader.result_path(result.student))
    api = grader.prepare().api
    for student, result in sorted(results.items()):
        if result.score is not None:
            outcome = api.autograde(assignment, student, force=True)
            if not outcome["success"]:
                raise RuntimeError(f"could not add {student} to the merged gradebook: {outcome.get('error')}")
    ordered = [results[s] for s in sorted(results)]
    points = grader.test_points()
    write_csv(out / f"grades_{assignment}.csv", points, ordered)
    (out / f"summary_{assignment}.md").write_text(summary(assignment, points, ordered))
    print(f"merged {len(shards)} shards, {len(ordered)} submissions: {out / f'grades_{assignment}.csv'}")
    return ordered
