"""Shared fixtures: the hidden tests' expected outputs, and the HTML book built once per session."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from autograder.checks import ENV_EXPECTED_DIR
from autograder.course import REPO, assignments
from autograder.expected import build_expected

sys.path.insert(0, str(Path(__file__).parent))  # the helpers beside the tests (submissions.py, ...)

import timing  # noqa: E402
from timing import pytest_runtest_logreport, pytest_terminal_summary  # noqa: E402,F401  (the time report)

ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def expected_dir(tmp_path_factory) -> Path:
    """Every assignment's expected outputs, built by the trusted grader code, and the env var set."""
    directory = tmp_path_factory.mktemp("expected")
    start = time.monotonic()
    for assignment in assignments():
        build_expected(assignment, directory)
    timing.record("", "expected outputs of every hidden case (fixture)", time.monotonic() - start)
    old = os.environ.get(ENV_EXPECTED_DIR)
    os.environ[ENV_EXPECTED_DIR] = str(directory)
    yield directory
    if old is None:
        os.environ.pop(ENV_EXPECTED_DIR, None)
    else:
        os.environ[ENV_EXPECTED_DIR] = old


@pytest.fixture
def one_thread():
    """Small tensors: a second thread only waits (and, on a busy machine, spins); restored after. A module asks for
    it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """Build the book (every chapter executed, warnings are errors) into a temporary folder."""
    out = tmp_path_factory.mktemp("book")
    start = time.monotonic()
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    run = subprocess.run([str(jupyter_book), "build", str(REPO), "--path-output", str(out),
                          "--warningiserror", "--nitpick", "--keep-going"],
                         capture_output=True, text=True, cwd=REPO)
    log = run.stdout + run.stderr
    (out / "build.log").write_text(log)
    assert run.returncode == 0, f"the book failed to build:\n{log[-6000:]}"
    executed = chapter_execution_times(out / "_build" / ".doctrees" / "environment.pickle")
    for chapter, seconds in executed.items():
        timing.record(chapter, "book page", seconds)
    timing.record("", "book build, apart from executing the chapters (fixture)",
                  time.monotonic() - start - sum(executed.values()))
    return out / "_build" / "html"


def chapter_execution_times(environment: Path) -> dict[str, float]:
    """{chapter: seconds its page took to execute}, as myst-nb recorded it in Sphinx's environment."""
    import pickle

    with environment.open("rb") as f:
        env = pickle.load(f)
    times = {}
    for docname, data in getattr(env, "nb_metadata", {}).items():
        runtime = (data.get("exec_data") or {}).get("runtime")
        if docname.startswith("book/") and runtime is not None:
            times[docname.removeprefix("book/")] = float(runtime)
    return times


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a headless Chromium; under CI its absence is a failure, not a skip."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if ON_CI:
            pytest.fail("chromium is not installed; `make test` installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (make browser installs it)")
    return path
