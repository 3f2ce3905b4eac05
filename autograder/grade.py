"""Grade a class: take in the submissions, grade each one (``autograder.pipeline``), report.

``--workers`` submissions at a time; each is read, repaired, run in the sandbox, judged and scored
(see ``autograder.pipeline``); its result is remembered in ``results/<student>.json``. A rerun
skips students whose submission is unchanged (an interrupted run resumes); ``--regrade`` or
``--student`` grade again.

Everything is written under the working folder (git-ignored):

    source -> solutions/                 submitted/<student>/<assignment>/   (the judged notebook)
    gradebook.db                         autograded/, feedback/<student>/<assignment>/<assignment>.html
    expected/<assignment>.pt             originals/<student>/   (the notebook as handed in)
    intake/<student>/ (what was taken in) scratch/<student>/     results/<assignment>/<student>.json
    grades_<assignment>.csv              summary_<assignment>.md
"""
from __future__ import annotations

import json
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
import torch
from nbgrader.api import Gradebook

from autograder import sandbox
from autograder.course import release_notebook, source_notebook
from autograder.expected import build_expected
from autograder.intake import Intake, collect
from autograder.nbgrader_run import generate_assignment, nbgrader_api, prepare_course_root
from autograder.pipeline import GraderError, StudentResult, SubmissionGrader, digest, submitted_at
from autograder.repair import nbgrader_meta
from autograder.reports import Progress, summary, write_csv

__all__ = ["ClassGrader", "GraderError", "Options", "StudentResult", "grade", "parse_shard"]


@dataclass
class Options:
    workers: int = 1
    shard: tuple[int, int] | None = None     # (i, n): grade the i-th of n slices, 1-based
    students: list[str] | None = None        # grade only these
    regrade: bool = False
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)
    student_pattern: str | None = None
    quiet: bool = False
    due: str | None = None                   # the due date ("2025-03-14 23:59 UTC"): kept in the gradebook


def parse_shard(text: str) -> tuple[int, int]:
    i, n = (int(x) for x in text.split("/"))
    if not 1 <= i <= n:
        raise ValueError(f"--shard {text}: expected i/n with 1 <= i <= n")
    return i, n


def in_shard(students: list[str], shard: tuple[int, int] | None) -> list[str]:
    """A deterministic slice: the i-th of every n students in sorted order."""
    if shard is None:
        return students
    i, n = shard
    return [s for k, s in enumerate(sorted(students)) if k % n == i - 1]


class ClassGrader:
    def __init__(self, assignment: str, workdir: Path, db_url: str | None, options: Options):
        source_notebook(assignment)  # a clear error for an unknown assignment
        self.assignment, self.options = assignment, options
        self.root = prepare_course_root(workdir)
        self.db_url = db_url or f"sqlite:///{self.root / 'gradebook.db'}"
        self.source = nbformat.read(source_notebook(assignment), as_version=4)
        self.release = nbformat.read(release_notebook(assignment), as_version=4)
        self.tests = {nbgrader_meta(c)["grade_id"]: c for c in self.source.cells
                      if c.cell_type == "code" and nbgrader_meta(c).get("grade")}
        self.results_dir = self.root / "results" / assignment
        self.submission_grader: SubmissionGrader | None = None  # made by prepare(), when there is work
        self.csv_path = self.root / f"grades_{assignment}{self.shard_suffix()}.csv"
        self.summary_path = self.root / f"summary_{assignment}{self.shard_suffix()}.md"

    def shard_suffix(self) -> str:
        shard = self.options.shard
        return "" if shard is None else f"_shard{shard[0]}of{shard[1]}"

    def prepare(self) -> SubmissionGrader:
        """The gradebook, the release in it and the reference's outputs: what grading needs."""
        if self.submission_grader is None:
            api = nbgrader_api(self.root, self.db_url)
            generate_assignment(api, self.assignment)
            if self.options.due:  # what nbgrader's late penalty counts from (autograder.late)
                with Gradebook(self.db_url) as gradebook:
                    gradebook.update_or_create_assignment(self.assignment, duedate=self.options.due)
            expected_file = build_expected(self.assignment, self.root / "expected")
            self.submission_grader = SubmissionGrader(
                self.assignment, self.root, api, self.db_url, expected_file,
                torch.load(expected_file, weights_only=True), self.source, self.release, self.tests,
                self.options.limits)
        return self.submission_grader

    # ------------------------------------------------------------------ the class

    def result_path(self, student: str) -> Path:
        return self.results_dir / f"{student}.json"

    def previous(self, intake: Intake) -> StudentResult | None:
        path = self.result_path(intake.student)
        if self.options.regrade or not path.exists():
            return None
        data = json.loads(path.read_text())
        unchanged = data.get("digest") == digest(intake.notebook) and data.get("submitted", "") == submitted_at(intake)
        return StudentResult(**data) if unchanged else None

    def run(self, submissions: Path) -> list[StudentResult]:
        intakes = collect(submissions, self.assignment, self.root / "intake", self.options.student_pattern)
        unassigned = intakes.pop("_unassigned", None)
        chosen = in_shard(sorted(intakes), self.options.shard)
        if self.options.students:
            unknown = set(self.options.students) - set(intakes)
            if unknown:
                raise GraderError(f"no submission for {', '.join(sorted(unknown))}")
        todo, results = [], {}
        for student in chosen:
            again = student in (self.options.students or []) or self.options.regrade
            earlier = None if again else self.previous(intakes[student])
            if earlier:
                results[student] = earlier
            elif not self.options.students or again:
                todo.append(intakes[student])
        self.say(f"{self.assignment}: {len(chosen)} submissions, {len(results)} already graded, "
                 f"{len(todo)} to grade with {self.options.workers} worker(s)")
        start = time.monotonic()
        grader = self.prepare() if todo else None
        self.results_dir.mkdir(parents=True, exist_ok=True)
        progress = Progress(len(todo), self.say)
        failures = []
        with ThreadPoolExecutor(max_workers=self.options.workers) as pool:
            futures = {pool.submit(grader.grade, intake): intake.student for intake in todo}
            for future in as_completed(futures):
                student = futures[future]
                try:
                    result = future.result()
                except Exception as error:  # the grader's failure: report, finish the others
                    failures.append(f"{student}: {type(error).__name__}: {error}")
                    progress.step(student, "grader error")
                    continue
                results[student] = result
                self.result_path(student).write_text(json.dumps(asdict(result), indent=1))
                score = "-" if result.score is None else f"{result.score:g}/{result.max_score:g}"
                progress.step(student, score + (f" [{', '.join(result.flags)}]" if result.flags else ""))
        for warning in sorted(grader.warnings if grader else ()):
            self.say(f"WARNING: {warning}")
        peak = peak_memory_mib()
        self.say(f"{len(todo)} graded in {time.monotonic() - start:.0f} s; the grader's peak memory: {peak} MiB "
                 "(the notebooks ran in their own processes, within their limits)")
        ordered = [results[s] for s in chosen if s in results]
        self.report(ordered, unassigned)
        if failures:
            raise GraderError("the grader failed on: " + "; ".join(failures))
        if self.options.students:
            return [results[s] for s in chosen if s in self.options.students and s in results]
        return ordered

    # ------------------------------------------------------------------ reports

    def test_points(self) -> dict[str, float]:
        return {g: float(c.metadata["nbgrader"]["points"]) for g, c in self.tests.items()}

    def report(self, results: list[StudentResult], unassigned: Intake | None) -> None:
        points = self.test_points()
        write_csv(self.csv_path, points, results)
        text = summary(self.assignment, points, results, unassigned)
        self.summary_path.write_text(text)
        self.say(text)
        self.say(f"grades: {self.csv_path}\nsummary: {self.summary_path}\n"
                 f"feedback: {self.root / 'feedback'}/<student>/{self.assignment}/{self.assignment}.html")

    def say(self, text: str) -> None:
        if not self.options.quiet:
            print(text, file=sys.stderr, flush=True)


def peak_memory_mib() -> int:
    """This process's peak resident memory. Linux's ``VmHWM`` counts this program only; ``ru_maxrss``
    would also count the process it was started from (the maximum carries over ``exec``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def grade(assignment: str, submissions: Path, workdir: Path, db_url: str | None = None,
          options: Options | None = None) -> list[StudentResult]:
    """Grade ``submissions`` (a folder or a zip); see the module docstring."""
    grader = ClassGrader(assignment, workdir, db_url, options or Options())
    return grader.run(submissions)
