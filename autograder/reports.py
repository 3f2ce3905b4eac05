"""What a class run writes for the instructor: the grades CSV, the summary, the progress line."""
from __future__ import annotations

import csv
import statistics
import time
from pathlib import Path

from autograder.intake import Intake
from autograder.pipeline import StudentResult


class Progress:
    """'[12/40] alice 8/10  elapsed 1:02, about 2:41 left' after each submission."""

    def __init__(self, total: int, say):
        self.total, self.done, self.start, self.say = total, 0, time.monotonic(), say

    def step(self, student: str, what: str) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.start
        left = elapsed / self.done * (self.total - self.done)
        bar = "#" * round(20 * self.done / self.total)
        self.say(f"[{bar:<20}] {self.done}/{self.total} {student}: {what}   "
                 f"elapsed {elapsed // 60:.0f}:{elapsed % 60:02.0f}, about {left // 60:.0f}:{left % 60:02.0f} left")


def _inert(text: str) -> str:
    """Text a student chose, safe in a spreadsheet: a cell starting with = + - @ would be a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_csv(path: Path, points: dict[str, float], results: list[StudentResult]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "name", *points, "late_penalty", "score", "max_score", "submitted", "flags",
                         "notes"])
        for r in results:
            writer.writerow([_inert(r.student), _inert(r.name),
                             *(r.tests.get(t, 0.0 if r.score is not None else "") for t in points),
                             r.late_penalty if r.late_penalty else "", "" if r.score is None else r.score,
                             sum(points.values()), r.submitted, "; ".join(r.flags), _inert("; ".join(r.notes))])


def _md(text: str) -> str:
    """Text a student chose (names, file names) as inert Markdown: no table breaks, no HTML."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def summary(assignment: str, points: dict[str, float], results: list[StudentResult],
            unassigned: Intake | None = None) -> str:
    total = sum(points.values())
    graded = [r for r in results if r.score is not None]
    lines = [f"# {assignment}: {len(results)} submissions, {len(graded)} graded, {total:g} points", ""]
    if graded:
        scores = [r.score for r in graded]
        lines += [f"Mean {statistics.mean(scores):.2f}, median {statistics.median(scores):g}, "
                  f"min {min(scores):g}, max {max(scores):g}.", "", "## Score distribution", "", "```"]
        for value in sorted({*scores, 0.0, total}, reverse=True):
            count = scores.count(value)
            lines.append(f"{value:>6g} | {'#' * count} {count}")
        lines += ["```", "", "## Pass rate per test", "", "| test | points | passed |", "|---|---|---|"]
        for test, p in points.items():
            passed = sum(r.tests.get(test, 0) >= p for r in graded)
            lines.append(f"| {test} | {p:g} | {passed}/{len(graded)} |")
    flagged = [r for r in results if r.flagged or r.score is None]
    lines += ["", "## Flagged submissions", ""]
    lines += [f"- **{r.student}** ({'not graded' if r.score is None else f'{r.score:g}/{total:g}'}): "
              f"{', '.join(r.flags)}. {_md(' '.join(n.rstrip('.') + '.' for n in r.notes))}" for r in flagged] or ["none"]
    if unassigned:
        lines += [f"- {_md(note)}" for note in unassigned.notes]
    lines += ["", "## Scores", "", "| student | name | score | flags |", "|---|---|---|---|"]
    lines += [f"| {r.student} | {_md(r.name)} | {'-' if r.score is None else f'{r.score:g}'} | {', '.join(r.flags)} |"
              for r in results]
    return "\n".join(lines) + "\n"
