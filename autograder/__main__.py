"""The instructor's command line.

    python -m autograder release [ASSIGNMENT ...]      regenerate notebooks/ from solutions/
    python -m autograder grade ASSIGNMENT SUBMISSIONS  autograde, feedback HTML, grades CSV
    python -m autograder validate ASSIGNMENT           the reference passes every test (hidden ones too)
    python -m autograder validate ASSIGNMENT --release the untouched student notebook fails every test
"""
import argparse
import sys
from pathlib import Path

from autograder.course import assignments


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
    p.add_argument("--csv", type=Path, help="grades CSV (default WORKDIR/grades_ASSIGNMENT.csv)")

    p = commands.add_parser("validate", help="nbgrader validate the reference (or, with --release, the stubs)")
    p.add_argument("assignment")
    p.add_argument("--release", action="store_true", help="check that the untouched release fails every test")

    args = parser.parse_args(argv)
    if args.command == "release":
        from autograder.release import release
        release(args.assignments)
    elif args.command == "grade":
        from autograder.grade import grade
        grade(args.assignment, args.submissions, args.workdir, db_url=args.db, csv_path=args.csv)
    elif args.command == "validate":
        from autograder.validate import validate
        ok, log = validate(args.assignment, release=args.release)
        print(log)
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
