"""Grade one submission: read and repair it, run it in the sandbox, judge it, score it with nbgrader.

1. the copy that intake made is read however damaged, as plain data (``autograder.repair``), and
   the assignment's cells are restored;
2. it runs in the sandbox (``autograder.sandbox``, ``autograder.runner``): the kernel starts once,
   the hidden checks record the student's outputs on inputs the student never saw;
3. its outputs come back onto the grader's own copy as checked data (``autograder.executed``), and
   are judged against the reference's outputs (``autograder.verdict``);
4. ``nbgrader autograde --no-execute`` scores the judged notebook into the gradebook and
   ``nbgrader generate_feedback`` writes the student's page (one writer at a time: SQLite). The
   submission's time and nbgrader secret, when intake found them, go beside the judged notebook as
   nbgrader's ``timestamp.txt`` and ``submission_secret.txt``: autograde records the time and the
   course's late penalty (``autograder.late``), and ``nbgrader release_feedback`` can hand the
   feedback back through the exchange.

Whatever a student hands in ends as a graded row: if something in it trips the grader anyway, the
submission is scored as the blank assignment and flagged "grading error" with the reason. Only a
failure of the grader's own (the gradebook cannot be written) raises ``GraderError``.
"""
from __future__ import annotations

import copy
import hashlib
import html
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry

from autograder import sandbox
from autograder.checks import ENV_RECORD_DIR, inputs_path
from autograder.executed import Unusable, take_outputs
from autograder.expected import write_inputs
from autograder.intake import Intake
from autograder.repair import nbgrader_meta, read_submission, restore_cells
from autograder.runner import LIMIT_PHRASES, OUTPUT_LIMIT_NOTE
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
    name: str = ""                                            # the display name the LMS or folder gave
    submitted: str = ""                                       # when it was handed in (UTC), if known
    late_penalty: float = 0.0                                 # points taken off ``score`` for lateness

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    def flag(self, label: str, note: str | None = None) -> None:
        if label not in self.flags:
            self.flags.append(label)
        if note:
            self.notes.append(note)


def digest(path: Path | None) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path else "no notebook"


def submitted_at(intake: Intake) -> str:
    """When ``intake`` was handed in, as nbgrader writes it in timestamp.txt (UTC), or ""."""
    return f"{intake.timestamp:%Y-%m-%d %H:%M:%S.%f} UTC" if intake.timestamp else ""


class SubmissionGrader:
    """What grading any one submission of ``assignment`` needs, set up once for the class."""

    def __init__(self, assignment: str, root: Path, api, db_url: str, expected_file: Path, expected: dict,
                 source, release, tests: dict, limits: sandbox.Limits):
        self.assignment, self.root, self.api, self.db_url = assignment, root, api, db_url
        self.expected_file, self.expected = expected_file, expected
        self.source, self.release, self.tests, self.limits = source, release, tests, limits
        self.db_lock = threading.Lock()  # SQLite takes one writer: nbgrader's steps run one at a time
        self.warnings: set[str] = set()

    def grade(self, intake: Intake) -> StudentResult:
        start = time.monotonic()
        result = StudentResult(intake.student, notes=list(intake.notes), flags=list(intake.flags),
                               digest=digest(intake.notebook), name=intake.name,
                               submitted=submitted_at(intake))
        beside = {"timestamp.txt": result.submitted, "submission_secret.txt": intake.secret or ""}
        if intake.notebook is None:
            result.flag("no notebook")
            return result
        originals = self.root / "originals" / intake.student
        shutil.rmtree(originals, ignore_errors=True)
        originals.mkdir(parents=True)
        shutil.copyfile(intake.notebook, originals / intake.notebook.name)
        try:
            notebook = self.run_and_judge(intake.notebook, result)
        except Exception as error:  # the submission tripped the grader: never lose the row
            result.flag("grading error", f"the submission could not be graded ({type(error).__name__}: "
                                         f"{str(error)[:200]}); it was scored as the blank assignment")
            notebook = self.blank(result, "the grader could not process it")
        try:
            self.score(notebook, result, beside)
        except GraderError:
            if "grading error" in result.flags:
                raise
            result.flag("grading error", "nbgrader could not score the notebook; it was scored as the "
                                         "blank assignment")
            self.score(self.blank(result, "nbgrader could not score it"), result, beside)
        feedback = self.root / "feedback" / intake.student / self.assignment / f"{self.assignment}.html"
        result.feedback = str(feedback) if feedback.exists() else None
        result.seconds = round(time.monotonic() - start, 2)
        return result

    def blank(self, result: StudentResult, why: str):
        """The untouched release, judged: every test fails, and the feedback's first cell says ``why``."""
        notebook = copy.deepcopy(self.release)
        with tempfile.TemporaryDirectory() as empty:
            result.messages = {k: v for k, v in judge(notebook, self.assignment, Path(empty), self.expected,
                                                      self.tests).items() if v}
        notebook.cells.insert(0, nbformat.v4.new_markdown_cell(
            f"**This submission was not graded as handed in: {html.escape(why)}.** It was scored as the blank "
            "assignment below. Ask your instructor to look at it if you think this is wrong."))
        return notebook

    def run_and_judge(self, path: Path, result: StudentResult):
        notebook, notes, flags = read_submission(path)
        result.notes += notes
        for label in flags:
            result.flag(label)
        if notebook is None:
            result.flag("unreadable")
            return self.blank(result, "; ".join(notes) or "the file could not be read")
        notebook, notes = restore_cells(notebook, self.source, self.release)
        result.notes += notes
        if notes:
            result.flag("cells restored")
        scratch = self.root / "scratch" / result.student
        with sandbox.scratch_folder(scratch, self.limits) as warnings:
            self.warnings.update(warnings)
            self.execute(notebook, scratch, result)
            judged = judge(notebook, self.assignment, scratch, self.expected, self.tests)
        result.messages = {k: v for k, v in judged.items() if v}
        return notebook

    def execute(self, notebook, scratch: Path, result: StudentResult) -> None:
        """Run the notebook in the sandbox; its outputs (as far as it got) land on ``notebook``."""
        nbformat.write(notebook, scratch / "submission.ipynb")
        write_inputs(self.expected_file, inputs_path(scratch, self.assignment))
        limits = self.limits
        run = sandbox.run([sys.executable, "-m", "autograder.runner", "submission.ipynb", "executed.ipynb",
                           f"--cell-timeout={limits.cell_timeout}", f"--max-output={limits.output_bytes}",
                           f"--max-processes={limits.processes}", f"--workdir={sandbox.WORK}"],
                          scratch, limits, {ENV_RECORD_DIR: str(scratch)})
        self.warnings.update(run.warnings)
        if run.timed_out:
            result.flag("notebook time limit", f"the notebook ran past its {limits.notebook_timeout} s limit "
                                               "and was stopped; the cells it finished were graded")
        if run.runner_out_of_memory:
            result.flag("runner memory limit", "the notebook's messages made the process that runs it exceed "
                                               f"{sandbox.RUNNER_MEMORY_BYTES >> 20} MiB; it was stopped and "
                                               "the cells it finished were graded")
        if sandbox.scratch_full(scratch):
            result.flag("disk limit", f"the notebook filled its {limits.disk_bytes // 2**20} MiB scratch folder; "
                                      "what it wrote beyond that failed")
        # the executed file holds the sources too, and JSON escaping can grow the output several-fold
        allowed = 8 * limits.output_bytes + (scratch / "submission.ipynb").stat().st_size + (1 << 20)
        try:
            take_outputs(notebook, scratch, "executed.ipynb", allowed)
        except Unusable as error:
            for cell in notebook.cells:
                if cell.cell_type == "code":
                    cell.outputs, cell.execution_count = [], None
            last = run.log.strip().splitlines()[-1][:200] if run.log.strip() else "nothing"
            result.flag("did not run", f"the notebook produced no results: {error} (the sandbox reported: {last})")
        flag_outputs(notebook, result)

    def score(self, notebook, result: StudentResult, beside: dict[str, str] | None = None) -> None:
        submitted = self.root / "submitted" / result.student / self.assignment
        shutil.rmtree(submitted, ignore_errors=True)
        submitted.mkdir(parents=True)
        nbformat.write(notebook, submitted / f"{self.assignment}.ipynb")
        for name, text in (beside or {}).items():  # nbgrader's files: the time, the secret
            if text:
                (submitted / name).write_text(text)
        with self.db_lock:
            for step in (self.api.autograde, self.api.generate_feedback):
                outcome = step(self.assignment, result.student, force=True)
                if not outcome["success"]:
                    raise GraderError(f"nbgrader {step.__name__} failed for {result.student}:\n"
                                      f"{outcome.get('error', '')}{outcome.get('log', '')[-2000:]}")
            self.read_scores(result)

    def read_scores(self, result: StudentResult) -> None:
        with Gradebook(self.db_url) as gradebook:
            try:
                submission = gradebook.find_submission_notebook(self.assignment, self.assignment, result.student)
            except MissingEntry:
                raise GraderError(f"no gradebook entry for {result.student} after autograding") from None
            result.late_penalty = float(submission.late_submission_penalty or 0.0)
            result.score = float(submission.score) - result.late_penalty
            result.max_score = float(submission.max_score)
            result.tests = {g.name: float(g.score) for g in submission.grades if g.cell_type == "code"}
            if result.late_penalty:
                days = submission.assignment.total_seconds_late / 86400
                result.flag("late", f"handed in {result.submitted}, {days:.2f} days after the due date "
                                    f"({submission.assignment.duedate:%Y-%m-%d %H:%M} UTC): "
                                    f"{result.late_penalty:g} points off")


def flag_outputs(notebook, result: StudentResult) -> None:
    """Flag what the sandbox stopped, and say in which cell."""
    output_note = OUTPUT_LIMIT_NOTE.split("{")[0]
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    for number, cell in enumerate(code_cells, 1):
        where = f"cell '{nbgrader_meta(cell)['grade_id']}'" if nbgrader_meta(cell).get("grade_id") \
            else f"code cell {number}"
        for output in cell.get("outputs", []):
            ename, evalue = output.get("ename"), output.get("evalue", "")
            if ename == "TimeoutError":
                result.flag("cell time limit", f"{where} ran past its time limit and was stopped")
            elif ename == "KernelDied":
                result.flag("kernel died", f"{where} killed the kernel (exit, crash or signal); "
                                           "the rest was run without it")
            elif ename == "ResourceLimit":
                for limit, phrase in LIMIT_PHRASES.items():
                    if phrase in evalue:
                        result.flag(limit)
                result.notes.append(f"{where} {evalue.removeprefix('the cell ')}")
            elif ename == "MemoryError":
                result.flag("memory limit", f"{where} ran out of memory (MemoryError)")
            elif ename == "BlockingIOError":  # fork() refused by the process rlimit
                result.flag("process limit", f"{where} tried to start more processes than allowed")
            elif output_note in output.get("text", ""):
                result.flag("output limit", f"{where} printed more than the output limit; the rest was dropped")
