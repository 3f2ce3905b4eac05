"""Run nbgrader's command-line apps on a working folder laid out as nbgrader expects."""
from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

from autograder.course import NBGRADER_CONFIG, SOLUTIONS


def prepare_course_root(root: Path) -> Path:
    """A working folder whose `source` is solutions/ (a link: nothing is copied)."""
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    source = root / "source"
    if source.is_symlink() and source.resolve() != SOLUTIONS:
        source.unlink()
    if not source.exists():
        source.symlink_to(SOLUTIONS, target_is_directory=True)
    return root


def nbgrader(root: Path, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """``nbgrader ARGS`` with the course's config, in ``root``; output captured."""
    command = [str(Path(sys.executable).with_name("nbgrader")), *args,
               f"--CourseDirectory.root={root}", f"--JupyterApp.config_file={NBGRADER_CONFIG}"]
    bin_dir = str(Path(sys.executable).parent)  # nbgrader runs `alembic` from PATH
    path = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    result = subprocess.run(command, cwd=root, capture_output=True, text=True,
                            env={**os.environ, "PATH": path, **(env or {})})
    if check and result.returncode != 0:
        raise RuntimeError(f"nbgrader {args[0]} failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def nbgrader_api(root: Path, db_url: str):
    """nbgrader's Python API on ``root`` with the course's config, for the per-student steps of a
    class (no process start-up per student). Executing is off: the grader runs notebooks itself,
    in the sandbox, and nbgrader scores them from their outputs (``autograde --no-execute``)."""
    from nbgrader.apps import NbGraderAPI
    from sqlalchemy.exc import SAWarning
    from traitlets.config.loader import PyFileConfigLoader

    # nbgrader 0.9 on SQLAlchemy 2 warns at every autograde that an autoflush skipped an object it
    # adds a moment later; the gradebook ends up right (the tests read it back), the warning is noise
    warnings.filterwarnings("ignore", category=SAWarning, module=r"nbgrader\.api")

    config = PyFileConfigLoader(NBGRADER_CONFIG.name, path=str(NBGRADER_CONFIG.parent)).load_config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_url = db_url
    config.Execute.enabled = False
    config.ClearOutput.enabled = False
    return NbGraderAPI(config=config)
