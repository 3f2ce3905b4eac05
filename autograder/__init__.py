"""The instructor's side: release, hidden-test checks, grading. See ``python -m autograder --help``."""
