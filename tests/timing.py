"""Where the test suite's time goes: a report at the end of every run (a pytest plugin; conftest loads it).

One line per chapter (its book page's execution, its exercise tests, its grading round trip) and per
fixed part, with the chapters over budget marked (a book page over 90 s, a solution notebook over
60 s). A report, not a test: the machine is shared and noisy, and a test that fails on a slow minute
proves nothing. Each test's time goes to the chapter its id names (``07_self_attention``), else to
its file; fixtures that serve several tests (the book build, the graded class) report their own time
through ``record``.
"""
from __future__ import annotations

import re
from collections import defaultdict
from functools import lru_cache

import pytest

BOOK_PAGE_BUDGET_S = 90
SOLUTION_NOTEBOOK_BUDGET_S = 60

ORACLES = re.compile(r"test_oracles_(\d\d)\.py")  # a chapter's oracle tests are its exercise tests too

_parts: dict[tuple[str, str], float] = defaultdict(float)  # (chapter or "", column or part) -> seconds


def _chapters() -> dict[str, str]:
    from autograder.course import assignments
    return {a[:2]: a for a in assignments()}


@lru_cache(maxsize=None)
def _chapter_names() -> re.Pattern:
    """The chapters' slugs (``04_seq2seq``: slugs hold digits, so no generic pattern), as one pattern."""
    from autograder.course import REPO, assignments
    names = set(assignments()) | {p.stem for p in (REPO / "book").glob("[0-9][0-9]_*.md")}
    return re.compile("(" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r")(?:\.|/|\]|-|$)")


def record(chapter: str, what: str, seconds: float) -> None:
    """Add ``seconds`` to ``what`` (a column for a chapter, or a fixed part when ``chapter`` is "")."""
    _parts[(chapter, what)] += seconds


def _column(nodeid: str) -> str:
    if "test_grading.py" in nodeid:
        return "grading round trip"
    if "test_book.py" in nodeid:
        return "book checks"
    if "test_reference_notebook_runs_top_to_bottom" in nodeid:
        return "solution notebook"
    return "exercise tests"


@pytest.hookimpl
def pytest_runtest_logreport(report):
    if report.when != "call":  # setups are fixtures: the shared ones report themselves
        return
    match = _chapter_names().search(report.nodeid.split("::", 1)[-1])
    oracle = ORACLES.search(report.nodeid)
    if match:
        record(match.group(1), _column(report.nodeid), report.duration)
    elif oracle and oracle.group(1) in _chapters():
        record(_chapters()[oracle.group(1)], "exercise tests", report.duration)
    else:
        record("", report.nodeid.split("::")[0].removeprefix("tests/"), report.duration)


COLUMNS = ["book page", "solution notebook", "exercise tests", "grading round trip", "book checks"]


def report_lines() -> list[str]:
    chapters = sorted({c for c, _ in _parts if c})
    lines = ["", "Time report (seconds; budgets: book page <= 90, solution notebook <= 60)",
             f"{'chapter':<22}" + "".join(f"{c:>20}" for c in COLUMNS) + f"{'total':>10}"]
    for chapter in chapters:
        cells = [_parts.get((chapter, c), 0.0) for c in COLUMNS]
        over = []
        if cells[0] > BOOK_PAGE_BUDGET_S:
            over.append("book page over budget")
        if cells[1] > SOLUTION_NOTEBOOK_BUDGET_S:
            over.append("solution notebook over budget")
        lines.append(f"{chapter:<22}" + "".join(f"{v:>20.1f}" for v in cells) + f"{sum(cells):>10.1f}"
                     + (f"   <- {', '.join(over)}" if over else ""))
    fixed = sorted(((what, s) for (c, what), s in _parts.items() if not c), key=lambda x: -x[1])
    lines.append("fixed parts:")
    lines += [f"  {what:<60}{s:>10.1f}" for what, s in fixed if s >= 0.5]
    per_chapter = sum(s for (c, _), s in _parts.items() if c)
    lines.append(f"all chapters {per_chapter:.0f} s ({per_chapter / max(len(chapters), 1):.0f} s each), "
                 f"fixed {sum(s for _, s in fixed):.0f} s")
    return lines


@pytest.hookimpl
def pytest_terminal_summary(terminalreporter):
    for line in report_lines():
        terminalreporter.write_line(line)
