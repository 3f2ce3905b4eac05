"""nbgrader's own workflow on this course, as nbgrader documents it, with the repository's
nbgrader_config.py: a temporary course (COURSE_NBGRADER_DIR) and a temporary exchange.

The instructor releases the assignment from notebooks/; two students fetch it, fill it in and submit
(bob after the due date); the instructor collects, autogrades with nbgrader's own command (in the
repository, without the virtual environment on PATH), generates and releases feedback, and the
students fetch it. The scores are the course grader's on the same collected folder, bob's late
penalty is the configured rule's, and formgrader (a Jupyter server started here) shows the class.

The steps run through nbgrader's Python API and exchange classes, in this process: each command
line start costs seconds. The one command line, `nbgrader autograde`, runs while the course grader
grades the same submissions.
"""
from __future__ import annotations

import datetime
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.auth import Authenticator
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange.default import ExchangeFetchAssignment, ExchangeFetchFeedback, ExchangeSubmit
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from autograder.course import REPO, release_notebook
from autograder.grade import Options, grade
from autograder.sandbox import Limits
from submissions import filled_release

pytestmark = pytest.mark.filterwarnings("ignore:Passing unrecognized arguments:DeprecationWarning")  # nbgrader's typo

A = "01_language_models"  # the assignment whose hidden cases are quickest to compute
WRONG = "def count_ngrams(tokens, n):  # misses the last n-gram\n" \
        "    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n))\n"
STUDENTS = {"alice": filled_release(A), "bob": filled_release(A, {"count_ngrams": WRONG})}


def course_config(work: Path, exchange: Path) -> Config:
    """The repository's nbgrader_config.py, as nbgrader loads it, with the working folder in ``work``."""
    os.environ["COURSE_NBGRADER_DIR"] = str(work)
    try:
        config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    finally:
        del os.environ["COURSE_NBGRADER_DIR"]
    config.Exchange.root = str(exchange)
    return config


def student_config(course: Config, student: str, home: Path) -> Config:
    """What a student's Jupyter knows: the course id, the exchange, their own folders."""
    config = Config()
    config.CourseDirectory.course_id = course.CourseDirectory.course_id
    config.CourseDirectory.student_id = student
    config.Exchange.root = course.Exchange.root
    config.Exchange.assignment_dir = str(home)
    config.Exchange.cache = str(home / ".nbgrader_cache")
    return config


def as_student(exchange_class, config: Config, assignment: str) -> None:
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    exchange_class(coursedir=coursedir, authenticator=Authenticator(config=config), config=config).start()


def ok(outcome: dict) -> dict:
    assert outcome["success"], outcome.get("error", "") + outcome.get("log", "")[-3000:]
    return outcome


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    base = tmp_path_factory.mktemp("nbgrader_course")
    work, exchange = base / "course", base / "exchange"
    exchange.mkdir()
    config = course_config(work, exchange)
    assert config.CourseDirectory.release_directory == "notebooks" and config.CourseDirectory.root == str(REPO)
    api = NbGraderAPI(config=config)

    # the gradebook learns the assignment from generate_assignment, here into a scratch folder, not
    # notebooks/ (which `make release` keeps equal to what it makes: checked here too)
    scratch = Config(config)
    scratch.CourseDirectory.release_directory = str(base / "release")
    ok(NbGraderAPI(config=scratch).generate_assignment(A, force=True))
    assert (base / "release" / A / f"{A}.ipynb").read_bytes() == release_notebook(A).read_bytes()
    ok(api.release_assignment(A))  # from notebooks/

    homes, due = {}, None
    for student, notebook in STUDENTS.items():
        homes[student] = base / student
        mine = student_config(config, student, homes[student])
        as_student(ExchangeFetchAssignment, mine, A)
        fetched = homes[student] / A / f"{A}.ipynb"
        assert nbformat.read(fetched, as_version=4) == nbformat.read(release_notebook(A), as_version=4)
        nbformat.write(notebook, fetched)
        if student == "bob":  # due between the two submissions: alice on time, bob (just) late
            due = datetime.datetime.now(datetime.timezone.utc)
            time.sleep(0.05)
        as_student(ExchangeSubmit, mine, A)
    with Gradebook(config.CourseDirectory.db_url) as gradebook:
        gradebook.update_or_create_assignment(A, duedate=due)
    ok(api.collect(A))
    submitted = work / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == ["alice", "bob"]
    assert all((submitted / s / A / "timestamp.txt").exists() for s in STUDENTS)

    # nbgrader's own autograde (it runs the notebooks, hidden tests included), from its command line
    # in the repository as an instructor types it, without the virtual environment on PATH
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_EXPECTED_DIR", "VIRTUAL_ENV")}
    env.update(PATH="/usr/bin:/bin", COURSE_NBGRADER_DIR=str(work), PYTHONDONTWRITEBYTECODE="1")
    autograde = subprocess.Popen([str(Path(sys.executable).with_name("nbgrader")), "autograde", A,
                                  f"--Exchange.root={exchange}"], cwd=REPO, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:  # meanwhile, the course grader grades the same collected folder
        results = {r.student: r for r in grade(A, submitted, base / "grading", options=Options(
            workers=2, due=f"{due:%Y-%m-%d %H:%M:%S.%f} UTC", quiet=True,
            limits=Limits(cell_timeout=30, notebook_timeout=120)))}
        log, _ = autograde.communicate(timeout=240)
    finally:
        autograde.kill()
    assert autograde.returncode == 0, log[-4000:]
    assert "No nbgrader_config.py" not in log

    ok(api.generate_feedback(A))
    ok(api.release_feedback(A))
    for student in STUDENTS:
        as_student(ExchangeFetchFeedback, student_config(config, student, homes[student]), A)
    return dict(base=base, work=work, config=config, results=results, homes=homes, due=due)


def test_nbgrader_scores_are_the_course_graders_and_the_late_one_is_penalised(course):
    results, config = course["results"], course["config"]
    with Gradebook(config.CourseDirectory.db_url) as gradebook:
        for student in STUDENTS:
            submission = gradebook.find_submission(A, student)
            notebook = gradebook.find_submission_notebook(A, A, student)
            mine = results[student]
            assert {g.name: g.score for g in notebook.grades if g.cell_type == "code"} == mine.tests, student
            assert submission.score - submission.late_submission_penalty == pytest.approx(mine.score), student
            assert submission.late_submission_penalty == pytest.approx(mine.late_penalty), student
            assert mine.submitted.startswith(f"{submission.timestamp:%Y-%m-%d %H:%M:%S}"), "the exchange's time"
    alice, bob = results["alice"], results["bob"]
    assert alice.score == alice.max_score and alice.late_penalty == 0 and "late" not in alice.flags
    raw = bob.max_score - 2  # the wrong count_ngrams loses its cell's 2 points
    assert sum(bob.tests.values()) == raw and bob.tests["test_count_ngrams"] == 0
    per_day = config.LatePenalty.per_day
    assert 0 < per_day < 1 and bob.late_penalty == pytest.approx(per_day * raw), "one day (or part of one) late"
    assert "late" in bob.flags and any("days after the due date" in n for n in bob.notes)


def test_feedback_goes_back_through_the_exchange(course):
    for student in STUDENTS:
        fetched = list((course["homes"][student] / A / "feedback").glob(f"*/{A}.html"))
        assert len(fetched) == 1, student
        page = fetched[0].read_text()
        # offline: no script from anywhere (math is MathML made with the page), nothing fetched at all
        assert not re.search(r"<script[^>]*\bsrc\s*=\s*[\"']?\s*(https?:)?//", page, re.IGNORECASE)
        assert not re.search(r"<(link|img|iframe)[^>]*\b(href|src)\s*=\s*[\"']?\s*(https?:)?//", page, re.I)
        assert page.count("<math") >= 10 and "$$" not in page and "\\frac" not in page
        # the table of contents names each test by its exercise, not "Test cell"
        toc = page[page.index('<div id="toc">'):page.index("</ol>")]
        assert "Test cell" not in toc
        for name in ("1 · Counting n-grams: count_ngrams", "2 · The add-k estimate: ngram_probability",
                     "4 · Perplexity: perplexity", "5 · Sampling the next token: sample_next_token"):
            assert name in toc, name
        assert ("Late submission penalty" in page) == (student == "bob")
    # the course grader's own feedback (its folder keeps nbgrader's timestamp and secret) is released
    # the same way, over nbgrader's
    grader_feedback = Config(course["config"])
    grader_feedback.CourseDirectory.feedback_directory = str(course["base"] / "grading" / "feedback")
    assert "Releasing feedback for student 'bob'" in ok(NbGraderAPI(config=grader_feedback).release_feedback(A))["log"]


def test_nothing_lands_in_the_repository(course):
    assert not (REPO / "gradebook.db").exists() and not (REPO / "submitted").exists()
    ignored = subprocess.run(["git", "check-ignore", "-q", ".nbgrader/gradebook.db"], cwd=REPO)
    assert ignored.returncode == 0, ".nbgrader/ (the default working folder) is git-ignored"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_formgrader_shows_the_class(course):
    """formgrader, in a Jupyter server started in the repository as an instructor starts Jupyter Lab:
    the class's submissions in its API, and one of them in its manual-grading page."""
    port, token = free_port(), "course-test"
    env = {k: v for k, v in os.environ.items() if k != "COURSE_EXPECTED_DIR"}
    env.update(COURSE_NBGRADER_DIR=str(course["work"]), JUPYTER_RUNTIME_DIR=str(course["base"] / "runtime"))
    server = subprocess.Popen([sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}",
                               "--ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={REPO}",
                               *(["--allow-root"] if os.getuid() == 0 else []),
                               "--ServerApp.jpserver_extensions={'jupyterlab': False, 'notebook': False, "
                               "'jupyter_lsp': False, 'jupyter_server_terminals': False}"],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def get(path: str) -> str:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read().decode()

    try:
        for _ in range(300):
            try:
                submissions = json.loads(get(f"/formgrader/api/submissions/{A}"))
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()[-3000:]
                time.sleep(0.1)
        else:
            pytest.fail("formgrader did not answer in 30 s")
        by_student = {s["student"]: s for s in submissions}
        assert set(by_student) == set(STUDENTS)
        assert all(s["autograded"] and s["submitted"] for s in by_student.values())
        results = course["results"]
        assert by_student["alice"]["score"] == results["alice"].score
        assert by_student["bob"]["score"] == sum(results["bob"].tests.values())  # before the late penalty
        notebooks = json.loads(get(f"/formgrader/api/submitted_notebooks/{A}/{A}"))
        bob = next(n for n in notebooks if n["student"] == "bob")
        page = get(f"/formgrader/submissions/{bob['id']}")
        assert "test_count_ngrams" in page and "misses the last n-gram" in page
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def test_make_workspace_copies_the_notebooks_and_never_overwrites(tmp_path):
    """`make workspace`: the student's own copies in a folder an update (git pull) never touches."""
    workspace = tmp_path / "my-work"

    def make() -> str:
        run = subprocess.run(["make", "-s", "workspace", f"WORKSPACE={workspace}"], cwd=REPO, capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        return run.stdout

    make()
    released = sorted(p.relative_to(REPO / "notebooks") for p in (REPO / "notebooks").rglob("*.ipynb"))
    assert sorted(p.relative_to(workspace) for p in workspace.rglob("*.ipynb")) == released
    mine = workspace / A / f"{A}.ipynb"
    mine.write_text("my answers")
    (workspace / released[-1]).unlink()  # as if a chapter came with the update
    again = make()
    assert mine.read_text() == "my answers", "a student's file is never overwritten"
    assert (workspace / released[-1]).exists() and f"new: {workspace / released[-1]}" in again
    assert f"new: {mine}" not in again
    ignored = subprocess.run(["git", "check-ignore", "-q", "my-work/x.ipynb"], cwd=REPO)
    assert ignored.returncode == 0, "my-work/ is git-ignored"
