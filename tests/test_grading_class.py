"""Grading a real class: bad submissions get what they honestly earn, flagged, within their limits,
without affecting anyone else; runs resume, one student can be regraded, LMS zips and shards work."""
from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from autograder.course import REPO
from autograder.grade import Options, StudentResult, grade
from autograder.merge import merge
from autograder.sandbox import Limits, bubblewrap
from bad_submissions import A, build_class
import timing
from conftest import ON_CI
from submissions import filled_release, write_submission
from wrong_answers import wrong_answers

# Lower than the defaults, to prove the same in less time: a 15 s cell limit stops an infinite loop as
# surely as 60 s (the slowest honest cell here, the imports, takes a few seconds on a loaded machine).
LIMITS = Limits(cell_timeout=15, notebook_timeout=60, memory_bytes=1 * 2**30, processes=64, disk_bytes=256 * 2**20)


def outside_state() -> dict:
    """What grading must never change: the virtual environment's files and the repository."""
    venv = Path(sys.prefix)
    files = {str(p): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in venv.rglob("*")}
    status = subprocess.run(["git", "status", "--porcelain", "--ignored=no"], cwd=REPO, capture_output=True,
                            text=True).stdout
    tracked = subprocess.run(["git", "ls-files", "-s"], cwd=REPO, capture_output=True, text=True).stdout
    return {"venv": files, "git status": status, "index": tracked}


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """The whole corpus, graded as an instructor would (the command line, 2 workers), in one batch."""
    if bubblewrap() is None and ON_CI:
        pytest.fail("bubblewrap is missing: `make test` installs it (apt-get install bubblewrap)")
    base = tmp_path_factory.mktemp("class")
    expected = build_class(base / "submissions")
    before = outside_state()
    start = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "autograder", "grade", A, str(base / "submissions"),
                          "--workdir", str(base / "work"), "--workers", "2",
                          f"--cell-timeout={LIMITS.cell_timeout}", f"--notebook-timeout={LIMITS.notebook_timeout}",
                          f"--memory-gb={LIMITS.memory_bytes / 2**30}", f"--processes={LIMITS.processes}",
                          f"--scratch-mb={LIMITS.disk_bytes // 2**20}"],
                         capture_output=True, text=True, timeout=1800)
    seconds = time.monotonic() - start
    peak = re.search(r"grader's peak memory: (\d+) MiB", run.stderr)
    timing.record("", f"bad-submission class: {len(expected)} submissions, 2 workers, grader peak "
                      f"{peak.group(1) if peak else '?'} MiB (fixture)", seconds)
    assert run.returncode == 0, run.stderr[-4000:]
    results = {path.stem: StudentResult(**json.loads(path.read_text()))
               for path in (base / "work" / "results" / A).glob("*.json")}
    return base, expected, results, seconds, run.stderr, (before, outside_state())


def test_every_submission_gets_its_expected_score_and_flags(graded_class):
    _, expected, results, *_ = graded_class
    assert set(results) == set(expected)
    wrong = {}
    for student, (score, flags, phrase) in expected.items():
        r = results[student]
        if r.score != score or not set(flags) <= set(r.flags) or phrase not in " ".join(r.notes):
            wrong[student] = (r.score, score, r.flags, r.notes, r.messages)
    assert not wrong, wrong


def test_no_submission_runs_past_its_limit(graded_class):
    _, _, results, *_ = graded_class
    slow = {s: r.seconds for s, r in results.items() if r.seconds > LIMITS.notebook_timeout + 30}
    assert not slow


def test_failures_say_what_differed_without_revealing_hidden_tests(graded_class):
    base, _, results, *_ = graded_class
    message = results["good_wrong_pe"].messages["test_pe"]
    assert "differ" in message or "not close" in message
    assert "raised at line" in message, "a visible test's failure says which check failed"
    html = Path(results["reads_expected_outputs"].feedback).read_text()
    assert "BEGIN HIDDEN TESTS" not in html and "check_against_reference" not in html


def test_class_reports(graded_class):
    base, expected, results, *_ = graded_class
    with open(base / "work" / f"grades_{A}.csv") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(expected)
    assert {"test_sdpa", "test_causal_mask", "test_mha", "test_pe", "score", "flags"} <= set(rows["good_full"])
    assert rows["infinite_loop"]["test_sdpa"] == "0.0" and rows["infinite_loop"]["test_mha"] == "4.0"
    summary = (base / "work" / f"summary_{A}.md").read_text()
    for section in ("Score distribution", "Pass rate per test", "Flagged submissions"):
        assert section in summary
    assert "**memory_bomb**" in summary and "**good_full**" not in summary


def test_grading_changes_nothing_outside_its_working_folder(graded_class):
    before, after = graded_class[5]
    assert before["git status"] == after["git status"] and before["index"] == after["index"]
    changed = {p for p in before["venv"].keys() | after["venv"].keys() if before["venv"].get(p) != after["venv"].get(p)}
    assert not changed, sorted(changed)[:10]


def test_the_grader_stays_small_and_says_how_long_the_class_took(graded_class):
    _, expected, _, seconds, log, _ = graded_class
    peak = re.search(r"grader's peak memory: (\d+) MiB", log)
    assert peak, log[-2000:]
    assert int(peak.group(1)) < 1024, f"the grader itself used {peak.group(1)} MiB"
    print(f"{len(expected)} submissions graded in {seconds:.0f} s; grader peak {peak.group(1)} MiB")


def test_nothing_a_student_handed_in_reaches_the_feedback(graded_class):
    base, _, results, *_ = graded_class
    solution_only = "### BEGIN SOLUTION"
    for student in ("leaks_solutions", "fifo_for_notebook", "borrows_records"):
        feedback = results[student].feedback
        assert feedback and solution_only not in Path(feedback).read_text()
    unreadable = Path(results["corrupted_json"].feedback).read_text()
    assert "not graded as handed in" in unreadable and "not valid JSON" in unreadable, \
        "the feedback says why a broken file scored nothing"
    feedback = Path(results["display_updates"].feedback)
    assert feedback.stat().st_size < 20 * 2**20, "display updates count against the output limit"


def test_the_feedback_page_runs_no_student_script(graded_class, chromium):
    """Opened in a real browser (hovering, too), the instructor's copy of the feedback runs nothing the student wrote."""
    from playwright.sync_api import sync_playwright

    _, _, results, *_ = graded_class
    page = Path(results["script_in_feedback"].feedback)
    assert "bold" in page.read_text(), "the harmless part of the output is still shown"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        tab = browser.new_page()
        tab.goto(page.as_uri())
        tab.wait_for_timeout(500)
        for element in tab.locator("b, img, a").all()[:50]:
            if element.is_visible():
                element.hover()
                if (element.get_attribute("href") or "").startswith("javascript"):
                    element.click()
        pwned = tab.evaluate("window.pwned")
        browser.close()
    assert pwned is None, f"student script ran in the feedback page: {pwned}"


def test_an_interrupted_run_resumes_and_one_student_can_be_regraded(graded_class):
    base, _, results, *_ = graded_class
    start = time.monotonic()
    again = {r.student: r for r in grade(A, base / "submissions", base / "work",
                                         options=Options(limits=LIMITS, quiet=True))}
    assert time.monotonic() - start < 30, "nothing is graded twice"
    assert {s: r.score for s, r in again.items()} == {s: r.score for s, r in results.items()}
    record = base / "work" / "results" / A / "good_wrong_pe.json"
    before = json.loads(record.read_text())["seconds"]
    one = grade(A, base / "submissions", base / "work", options=Options(students=["good_wrong_pe"], quiet=True))
    assert [r.student for r in one] == ["good_wrong_pe"] and one[0].score == 8
    assert json.loads(record.read_text())["seconds"] != before, "graded again"
    with open(base / "work" / f"grades_{A}.csv") as f:
        assert len(list(csv.DictReader(f))) == len(results), "a regrade updates one row and keeps the others"


def test_lms_zip_and_shards_merge(tmp_path):
    """A Canvas-style zip (renamed notebooks, a second upload, an extra file), graded in two shards."""
    folder = tmp_path / "made"
    write_submission(folder, "x", A, filled_release(A), name="nb.ipynb")
    write_submission(folder, "y", A, filled_release(A, {"pe": wrong_answers(A).WRONG["pe"]}), name="nb.ipynb")
    write_submission(folder, "z", A, filled_release(A, solved=False), name="nb.ipynb")
    archive = tmp_path / "download.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(folder / "x" / "nb.ipynb", f"alice_101_5_{A}.ipynb", )
        zf.write(folder / "z" / "nb.ipynb", "bob_102_6_my work.ipynb")
        zf.writestr(zipfile.ZipInfo("bob_102_7_my work-1.ipynb", date_time=(2030, 1, 1, 0, 0, 0)),
                    (folder / "y" / "nb.ipynb").read_bytes())  # bob's later upload
        zf.writestr("carol_103_8_notes.txt", "I ran out of time")
    shards = []
    for i in (1, 2):
        work = tmp_path / f"shard{i}"
        grade(A, archive, work, options=Options(shard=(i, 2), limits=LIMITS, quiet=True))
        shards.append(work)
    merged = {r.student: r for r in merge(A, tmp_path / "merged", shards)}
    assert {s: (r.name, r.score) for s, r in merged.items()} == {"101": ("alice", 10), "102": ("bob", 8),
                                                                 "103": ("carol", None)}
    assert any("2 notebooks handed in" in n for n in merged["102"].notes)
    assert any("notes.txt" in n for n in merged["103"].notes)
    rows = list(csv.DictReader(open(tmp_path / "merged" / f"grades_{A}.csv")))
    assert [(r["student"], r["name"]) for r in rows] == [("101", "alice"), ("102", "bob"), ("103", "carol")]
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{tmp_path / 'merged' / 'gradebook.db'}") as gradebook:
        assert sorted(s.id for s in gradebook.students) == ["101", "102"]


def test_exit_status_tells_a_grader_failure_from_a_student_failure(graded_class, tmp_path):
    """A student's broken file is reported and graded 0: exit 0 (the class above, through the same
    command line). A gradebook the grader cannot open: exit 1."""
    log = graded_class[4]
    assert "corrupted_json: 0/10 [unreadable]" in log
    (tmp_path / "class" / "alice").mkdir(parents=True)
    (tmp_path / "class" / "alice" / f"{A}.ipynb").write_text("")
    grader_failure = subprocess.run([sys.executable, "-m", "autograder", "grade", A, str(tmp_path / "class"),
                                     "--workdir", str(tmp_path / "bad"),
                                     "--db", f"sqlite:///{tmp_path}/no/such/folder/gb.db"],
                                    capture_output=True, text=True, timeout=300)
    assert grader_failure.returncode != 0
    assert "database" in grader_failure.stdout + grader_failure.stderr


def test_the_grader_measures_its_own_memory_not_its_parents():
    """A grader started from a large process (pytest after the book build, a notebook server) reports
    its own peak: Linux's ru_maxrss would carry the parent's over exec."""
    ballast = bytearray(600 * 2**20)
    ballast[::4096] = b"\x01" * len(ballast[::4096])  # touch every page: resident
    child = subprocess.run([sys.executable, "-c", "from autograder.grade import peak_memory_mib; print(peak_memory_mib())"],
                           capture_output=True, text=True, timeout=120)
    assert int(child.stdout) < 500, f"the child reports {child.stdout.strip()} MiB: the parent's 600 MiB counted"
    del ballast
