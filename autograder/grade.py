"""Grade a class: intake, sandboxed execution, judging, nbgrader's gradebook, feedback, CSV, summary.

For each student (``--workers`` at a time):

1. intake: find the notebook (``autograder.intake``), read it however damaged, restore the
   assignment's cells (``autograder.repair``);
2. run it in the sandbox (``autograder.sandbox``, ``autograder.runner``): the kernel starts once, the
   hidden checks record the student's outputs on inputs the student never saw;
3. judge it outside the sandbox (``autograder.verdict``) against the reference's outputs;
4. record it: ``nbgrader autograde --no-execute`` scores the judged notebook into the gradebook
   and ``nbgrader generate_feedback`` writes the student's page (one writer at a time: SQLite);
5. remember it: ``results/<student>.json``. A rerun skips students whose submission is unchanged
   (an interrupted run resumes); ``--regrade`` or ``--student`` grade again.

Everything is written under the working folder (git-ignored):

    source -> solutions/                 submitted/<student>/<assignment>/   (the judged notebook)
    gradebook.db                         autograded/, feedback/<student>/<assignment>/<assignment>.html
    expected/<assignment>.pt             originals/<student>/   (the files as handed in)
    scratch/<student>/                   results/<assignment>/<student>.json
    grades_<assignment>.csv              summary_<assignment>.md
"""
from __future__ import annotations

import csv
import hashlib
import json
import shutil
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
import torch
from nbgrader.api import Gradebook, MissingEntry

from autograder import sandbox
from autograder.checks import ENV_RECORD_DIR, inputs_path
from autograder.course import release_notebook, source_notebook
from autograder.expected import build_expected, write_inputs
from autograder.intake import Intake, collect
from autograder.nbgrader_run import nbgrader, nbgrader_api, prepare_course_root
from autograder.repair import nbgrader_meta, read_submission, restore_cells
from autograder.runner import LIMIT_PHRASES
from autograder.verdict import judge


class GraderError(RuntimeError):
    """The grader itself failed (not a student's notebook): the command exits non-zero."""


@dataclass
class StudentResult:
    student: str
    score: float | None = None        # None: not graded (no notebook)
    max_score: float = 0.0
    tests: dict[str, float] = field(default_factory=dict)     # test grade_id -> points earned
    messages: dict[str, str] = field(default_factory=dict)    # test grade_id -> why it failed
    notes: list[str] = field(default_factory=list)            # what was odd, in plain words
    flags: list[str] = field(default_factory=list)            # short labels for the summary
    seconds: float = 0.0
    digest: str = ""                                          # of the file handed in
    feedback: str | None = None

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


@dataclass
class Options:
    workers: int = 1
    shard: tuple[int, int] | None = None     # (i, n): grade the i-th of n slices, 1-based
    students: list[str] | None = None        # grade only these
    regrade: bool = False
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)
    student_pattern: str | None = None
    quiet: bool = False


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


def digest(path: Path | None) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path else "no notebook"


class ClassGrader:
    def __init__(self, assignment: str, workdir: Path, db_url: str | None, options: Options):
        source_notebook(assignment)  # a clear error for an unknown assignment
        self.assignment, self.options = assignment, options
        self.root = prepare_course_root(workdir)
        self.db_url = db_url or f"sqlite:///{self.root / 'gradebook.db'}"
        self.db_args = [f"--CourseDirectory.db_url={self.db_url}"]
        self.db_lock = threading.Lock()  # SQLite takes one writer: nbgrader's steps run one at a time
        self.source = nbformat.read(source_notebook(assignment), as_version=4)
        self.release = nbformat.read(release_notebook(assignment), as_version=4)
        self.tests = {nbgrader_meta(c)["grade_id"]: c for c in self.source.cells
                      if c.cell_type == "code" and nbgrader_meta(c).get("grade")}
        self.results_dir = self.root / "results" / assignment
        self.warnings: set[str] = set()

    # ------------------------------------------------------------------ setup

    def prepare(self) -> None:
        nbgrader(self.root, "generate_assignment", self.assignment, "--force", *self.db_args)
        self.api = nbgrader_api(self.root, self.db_url)
        self.expected_file = build_expected(self.assignment, self.root / "expected")
        self.expected = torch.load(self.expected_file, weights_only=True)

    # ------------------------------------------------------------------ one student

    def grade_one(self, intake: Intake, slot: int) -> StudentResult:
        start = time.monotonic()
        result = StudentResult(intake.student, notes=list(intake.notes), digest=digest(intake.notebook))
        if intake.notebook is None:
            result.flags.append("no notebook")
            return result
        originals = self.root / "originals" / intake.student
        shutil.rmtree(originals, ignore_errors=True)
        originals.mkdir(parents=True)
        shutil.copy2(intake.notebook, originals / intake.notebook.name)

        notebook, notes = read_submission(intake.notebook)
        result.notes += notes
        if notebook is None:
            result.flags.append("unreadable")
            notebook = nbformat.read(release_notebook(self.assignment), as_version=4)  # scored as blank
            ran = False
        else:
            notebook, notes = restore_cells(notebook, self.source, self.release)
            result.notes += notes
            if notes:
                result.flags.append("cells restored")
            ran = True

        scratch = self.root / "scratch" / intake.student
        with sandbox.scratch_folder(scratch, self.options.limits) as warnings:
            self.warnings.update(warnings)
            if ran:
                notebook = self.execute(notebook, scratch, slot, result)
            judged = judge(notebook, self.assignment, scratch, self.expected, self.tests)
        result.messages = {k: v for k, v in judged.items() if v}

        submitted = self.root / "submitted" / intake.student / self.assignment
        shutil.rmtree(submitted, ignore_errors=True)
        submitted.mkdir(parents=True)
        nbformat.write(notebook, submitted / f"{self.assignment}.ipynb")
        with self.db_lock:
            for step in (self.api.autograde, self.api.generate_feedback):
                outcome = step(self.assignment, intake.student, force=True)
                if not outcome["success"]:
                    raise GraderError(f"nbgrader {step.__name__} failed for {intake.student}:\n"
                                      f"{outcome.get('error', '')}{outcome.get('log', '')[-2000:]}")
            self.read_scores(result)
        feedback = self.root / "feedback" / intake.student / self.assignment / f"{self.assignment}.html"
        result.feedback = str(feedback) if feedback.exists() else None
        result.seconds = round(time.monotonic() - start, 2)
        return result

    def execute(self, notebook, scratch: Path, slot: int, result: StudentResult):
        """Run the notebook in the sandbox; return the executed notebook (as far as it got)."""
        nbformat.write(notebook, scratch / "submission.ipynb")
        write_inputs(self.expected_file, inputs_path(scratch, self.assignment))
        limits = self.options.limits
        run = sandbox.run([sys.executable, "-m", "autograder.runner", "submission.ipynb", "executed.ipynb",
                           f"--cell-timeout={limits.cell_timeout}", f"--max-output={limits.output_bytes}",
                           f"--max-processes={limits.processes}", f"--workdir={sandbox.WORK}"],
                          scratch, limits, {ENV_RECORD_DIR: str(scratch)}, slot=slot)
        self.warnings.update(run.warnings)
        if run.timed_out:
            result.flags.append("notebook time limit")
            result.notes.append(f"the notebook ran past its {limits.notebook_timeout} s limit and was stopped; "
                                "the cells it finished were graded")
        if sandbox.scratch_full(scratch):
            result.flags.append("disk limit")
            result.notes.append(f"the notebook filled its {limits.disk_bytes // 2**20} MiB scratch folder; "
                                "what it wrote beyond that failed")
        executed = scratch / "executed.ipynb"
        try:
            notebook = nbformat.read(executed, as_version=4)
        except Exception:
            result.flags.append("did not run")
            result.notes.append("the notebook produced no results (the sandbox reported: "
                                f"{run.log.strip().splitlines()[-1][:200] if run.log.strip() else 'nothing'})")
        self.flag_outputs(notebook, result)
        return notebook

    @staticmethod
    def flag_outputs(notebook, result: StudentResult) -> None:
        """Flag what the sandbox stopped, and say in which cell."""
        def flag(note: str, *names: str) -> None:
            result.flags.extend(n for n in names if n not in result.flags)
            result.notes.append(note)

        code_cells = [c for c in notebook.cells if c.cell_type == "code"]
        for number, cell in enumerate(code_cells, 1):
            where = f"cell '{nbgrader_meta(cell)['grade_id']}'" if nbgrader_meta(cell).get("grade_id") \
                else f"code cell {number}"
            for output in cell.get("outputs", []):
                ename, evalue = output.get("ename"), output.get("evalue", "")
                if ename == "TimeoutError":
                    flag(f"{where} ran past its time limit and was stopped", "cell time limit")
                elif ename == "KernelDied":
                    flag(f"{where} killed the kernel (exit, crash or signal); the rest was run without it",
                         "kernel died")
                elif ename == "ResourceLimit":
                    flag(f"{where} {evalue.removeprefix('the cell ')}",
                         *[limit for limit, phrase in LIMIT_PHRASES.items() if phrase in evalue])
                elif ename == "MemoryError":
                    flag(f"{where} ran out of memory (MemoryError)", "memory limit")
                elif ename == "BlockingIOError":  # fork() refused by the process rlimit
                    flag(f"{where} tried to start more processes than allowed", "process limit")
                elif "[grader] output beyond" in output.get("text", ""):
                    flag(f"{where} printed more than the output limit; the rest was dropped", "output limit")

    def read_scores(self, result: StudentResult) -> None:
        with Gradebook(self.db_url) as gradebook:
            try:
                submission = gradebook.find_submission_notebook(self.assignment, self.assignment, result.student)
            except MissingEntry:
                raise GraderError(f"no gradebook entry for {result.student} after autograding") from None
            result.score, result.max_score = float(submission.score), float(submission.max_score)
            result.tests = {g.name: float(g.score) for g in submission.grades if g.cell_type == "code"}

    # ------------------------------------------------------------------ the class

    def result_path(self, student: str) -> Path:
        return self.results_dir / f"{student}.json"

    def previous(self, intake: Intake) -> StudentResult | None:
        path = self.result_path(intake.student)
        if self.options.regrade or not path.exists():
            return None
        data = json.loads(path.read_text())
        return StudentResult(**data) if data.get("digest") == digest(intake.notebook) else None

    def run(self, submissions: Path) -> list[StudentResult]:
        intakes = collect(submissions, self.assignment, self.root / "unpacked", self.options.student_pattern)
        unassigned = intakes.pop("_unassigned", None)
        chosen = in_shard(sorted(intakes), self.options.shard)
        if self.options.students:
            unknown = set(self.options.students) - set(intakes)
            if unknown:
                raise GraderError(f"no submission for {', '.join(sorted(unknown))}")
            chosen = [s for s in chosen if s in self.options.students]
        todo, results = [], {}
        for student in chosen:
            earlier = None if self.options.students else self.previous(intakes[student])
            if earlier:
                results[student] = earlier
            else:
                todo.append(intakes[student])
        self.say(f"{self.assignment}: {len(chosen)} submissions, {len(results)} already graded, "
                 f"{len(todo)} to grade with {self.options.workers} worker(s)")
        if todo:
            self.prepare()
        self.results_dir.mkdir(parents=True, exist_ok=True)
        progress = Progress(len(todo), self.say)
        slots = list(range(self.options.workers))
        slot_lock = threading.Lock()

        def work(intake: Intake) -> StudentResult:
            with slot_lock:
                slot = slots.pop()
            try:
                return self.grade_one(intake, slot)
            finally:
                with slot_lock:
                    slots.append(slot)

        failures = []
        with ThreadPoolExecutor(max_workers=self.options.workers) as pool:
            futures = {pool.submit(work, intake): intake.student for intake in todo}
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
        for warning in sorted(self.warnings):
            self.say(f"WARNING: {warning}")
        ordered = [results[s] for s in chosen if s in results]
        self.report(ordered, unassigned)
        if failures:
            raise GraderError("the grader failed on: " + "; ".join(failures))
        return ordered

    # ------------------------------------------------------------------ reports

    def test_points(self) -> dict[str, float]:
        return {g: float(c.metadata["nbgrader"]["points"]) for g, c in self.tests.items()}

    def report(self, results: list[StudentResult], unassigned: Intake | None) -> None:
        points = self.test_points()
        suffix = "" if self.options.shard is None else f"_shard{self.options.shard[0]}of{self.options.shard[1]}"
        self.csv_path = self.root / f"grades_{self.assignment}{suffix}.csv"
        write_csv(self.csv_path, points, results)
        text = summary(self.assignment, points, results, unassigned)
        self.summary_path = self.root / f"summary_{self.assignment}{suffix}.md"
        self.summary_path.write_text(text)
        self.say(text)
        self.say(f"grades: {self.csv_path}\nsummary: {self.summary_path}\n"
                 f"feedback: {self.root / 'feedback'}/<student>/{self.assignment}/{self.assignment}.html")

    def say(self, text: str) -> None:
        if not self.options.quiet:
            print(text, file=sys.stderr, flush=True)


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


def write_csv(path: Path, points: dict[str, float], results: list[StudentResult]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *points, "score", "max_score", "flags", "notes"])
        for r in results:
            writer.writerow([r.student, *(r.tests.get(t, 0.0 if r.score is not None else "") for t in points),
                             "" if r.score is None else r.score, sum(points.values()),
                             "; ".join(r.flags), "; ".join(r.notes)])


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
              f"{', '.join(r.flags)}. {' '.join(n.rstrip('.') + '.' for n in r.notes)}" for r in flagged] or ["none"]
    if unassigned:
        lines += [f"- {note}" for note in unassigned.notes]
    lines += ["", "## Scores", "", "| student | score | flags |", "|---|---|---|"]
    lines += [f"| {r.student} | {'-' if r.score is None else f'{r.score:g}'} | {', '.join(r.flags)} |" for r in results]
    return "\n".join(lines) + "\n"


def grade(assignment: str, submissions: Path, workdir: Path, db_url: str | None = None,
          options: Options | None = None) -> list[StudentResult]:
    """Grade ``submissions`` (a folder or a zip); see the module docstring."""
    grader = ClassGrader(assignment, workdir, db_url, options or Options())
    return grader.run(submissions)
