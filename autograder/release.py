"""Generate the student notebooks (notebooks/) from the sources (solutions/) with nbgrader."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from autograder.course import NOTEBOOKS, assignments
from autograder.nbgrader_run import generate_assignment, nbgrader_api, prepare_course_root


def generate_release(assignment: str, root: Path) -> Path:
    """Run ``nbgrader generate_assignment`` in ``root``; return the generated folder."""
    generate_assignment(nbgrader_api(prepare_course_root(root)), assignment)
    return root / "release" / assignment


def release(selected: list[str] | None = None) -> None:
    for assignment in selected or assignments():
        with tempfile.TemporaryDirectory() as tmp:
            generated = generate_release(assignment, Path(tmp))
            target = NOTEBOOKS / assignment
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(generated, target)
        print(f"released {assignment} -> {target}")
