"""The instructor's command line.

    python -m autograder release [ASSIGNMENT ...]      regenerate notebooks/ from solutions/
    python -m autograder grade ASSIGNMENT SUBMISSIONS  grade a folder or LMS zip: feedback, CSV, summary
    python -m autograder merge ASSIGNMENT OUT SHARD... combine the working folders of --shard runs
    python -m autograder validate ASSIGNMENT           the reference passes every test (hidden ones too)
    python -m autograder validate ASSIGNMENT --release the untouched student notebook fails every test
    python -m autograder student-edition OUT [--book]  what students get: notebooks, coursekit, no solutions
"""
import argparse
import sys
from pathlib import Path

from autograder.course import assignments
from autograder.sandbox import Limits


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("release", help="regenerate notebooks/ from solutions/")
    p.add_argument("assignments", nargs="*", help=f"default: all ({', '.join(assignments())})")

    p = commands.add_parser("grade", help="grade a folder of submissions (one sub-folder per student)")
    p.add_argument("assignment")
    p.add_argument("submissions", type=Path)
    p.add_argument("--workdir", type=Path, default=Path(".grading"), help="working folder (default .grading)")
    p.add_argument("--db", help="gradebook URL, any SQLAlchemy URL nbgrader accepts "
                                "(default sqlite:///WORKDIR/gradebook.db)")
    p.add_argument("--workers", type=int, default=1, help="submissions graded in parallel (default 1)")
    p.add_argument("--shard", help="grade the i-th of n deterministic slices of the class, e.g. 2/8")
    p.add_argument("--student", action="append", help="grade (again) only this student; repeatable")
    p.add_argument("--regrade", action="store_true", help="grade again what an earlier run finished")
    p.add_argument("--due", help='the due date, e.g. "2025-03-14 23:59 UTC": a submission whose timestamp.txt '
                                 "is later loses points by the rule in autograder/nbgrader_config.py")
    p.add_argument("--student-pattern", help="for a zip: regex with a (?P<student>...) group, "
                                             "matched in each file name (default: up to the first '_')")
    default = Limits()
    p.add_argument("--cell-timeout", type=int, default=default.cell_timeout, help="seconds per cell (default %(default)s)")
    p.add_argument("--notebook-timeout", type=int, default=default.notebook_timeout,
                   help="seconds per notebook (default %(default)s)")
    p.add_argument("--memory-gb", type=float, default=default.memory_bytes / 2**30,
                   help="memory per notebook (default %(default)g)")
    p.add_argument("--processes", type=int, default=default.processes,
                   help="processes and threads per notebook's kernel (default %(default)s)")
    p.add_argument("--scratch-mb", type=int, default=default.disk_bytes // 2**20,
                   help="space a notebook may fill in its scratch folder (default %(default)s)")

    p = commands.add_parser("merge", help="combine the working folders of sharded runs into one")
    p.add_argument("assignment")
    p.add_argument("out", type=Path, help="the merged working folder")
    p.add_argument("shards", type=Path, nargs="+", help="the shards' working folders")
    p.add_argument("--db", help="gradebook URL for the merged folder")

    p = commands.add_parser("validate", help="nbgrader validate the reference (or, with --release, the stubs)")
    p.add_argument("assignment")
    p.add_argument("--release", action="store_true", help="check that the untouched release fails every test")

    p = commands.add_parser("student-edition", help="write what students get (no solutions, no grader) into OUT")
    p.add_argument("out", type=Path)
    p.add_argument("--book", type=Path, help="the built book to include (e.g. _build/html)")

    args = parser.parse_args(argv)
    if args.command == "release":
        from autograder.release import release
        release(args.assignments)
    elif args.command == "grade":
        from autograder.grade import GraderError, Options, grade, parse_shard
        limits = Limits(cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
                        memory_bytes=int(args.memory_gb * 2**30), processes=args.processes,
                        disk_bytes=args.scratch_mb * 2**20)
        options = Options(workers=args.workers, shard=parse_shard(args.shard) if args.shard else None,
                          students=args.student, regrade=args.regrade, limits=limits,
                          student_pattern=args.student_pattern, due=args.due)
        try:
            grade(args.assignment, args.submissions, args.workdir, db_url=args.db, options=options)
        except GraderError as error:
            print(f"grader error: {error}", file=sys.stderr)
            return 1
    elif args.command == "merge":
        from autograder.merge import merge
        merge(args.assignment, args.out, args.shards, db_url=args.db)
    elif args.command == "student-edition":
        from autograder.student_edition import student_edition
        print(f"the student edition is at {student_edition(args.out, args.book)}")
    elif args.command == "validate":
        from autograder.validate import validate
        ok, log = validate(args.assignment, release=args.release)
        print(log)
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
