"""How long grading a class takes: ``python tests/benchmark_grading.py 07_self_attention --students 40 --workers 1 2``.

Builds a plausible class (most students solve everything, some get one exercise wrong, some hand in
the blank release), grades it from scratch once per ``--workers`` value with the grader's default
limits, and prints the wall time and the slowest submission. Not part of `make test`: grading 40
submissions takes minutes. The class and the scores are the same on every run.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from autograder.grade import Options, grade  # noqa: E402
from submissions import filled_release, write_submission  # noqa: E402
from wrong_answers import wrong_answers  # noqa: E402


def build_class(assignment: str, students: int, folder: Path) -> None:
    wrong = list(wrong_answers(assignment).WRONG.items())
    for i in range(students):
        if i % 8 == 7:
            notebook = filled_release(assignment, solved=False)
        elif i % 4 == 1:
            grade_id, source = wrong[i // 4 % len(wrong)]
            notebook = filled_release(assignment, {grade_id: source})
        else:
            notebook = filled_release(assignment)
        write_submission(folder, f"student{i:03d}", assignment, notebook)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("assignment")
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        build_class(args.assignment, args.students, Path(tmp) / "submissions")
        print("| workers | wall time | per submission | slowest submission | scores |")
        print("|---|---|---|---|---|")
        for workers in args.workers:
            start = time.monotonic()
            results = grade(args.assignment, Path(tmp) / "submissions", Path(tmp) / f"work{workers}",
                            options=Options(workers=workers, quiet=True))
            wall = time.monotonic() - start
            slowest = max(results, key=lambda r: r.seconds)
            scores = sorted({r.score for r in results})
            print(f"| {workers} | {wall:.0f} s | {wall / len(results):.1f} s | {slowest.seconds:.0f} s "
                  f"({slowest.student}) | {', '.join(f'{s:g}' for s in scores)} |", flush=True)


if __name__ == "__main__":
    main()
