"""nbgrader's Python API on a working folder laid out as nbgrader expects."""
from __future__ import annotations

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


def alembic_head() -> str:
    """The gradebook schema's revision, as ``nbgrader.api.get_alembic_version`` finds it, without
    the ``alembic heads`` process it starts for every new gradebook (up to 7 s on a busy machine)."""
    import nbgrader
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(nbgrader.__file__).parent / "alembic"))
    return ScriptDirectory.from_config(config).get_current_head()


def course_config():
    """The course's nbgrader configuration (autograder/nbgrader_config.py), as traitlets loads it."""
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader(NBGRADER_CONFIG.name, path=str(NBGRADER_CONFIG.parent)).load_config()


def nbgrader_api(root: Path, db_url: str | None = None):
    """nbgrader's Python API on ``root`` with the course's config: no process start-up per step
    (the command line takes seconds to start). Executing is off: the grader runs notebooks itself,
    in the sandbox, and nbgrader scores them from their outputs (``autograde --no-execute``)."""
    from nbgrader.apps import NbGraderAPI
    from sqlalchemy.exc import SAWarning

    # nbgrader 0.9 on SQLAlchemy 2 warns at every autograde that an autoflush skipped an object it
    # adds a moment later; the gradebook ends up right (the tests read it back), the warning is noise
    warnings.filterwarnings("ignore", category=SAWarning, module=r"nbgrader\.api")

    config = course_config()  # which also tells nbgrader the schema revision in-process (alembic_head)
    config.CourseDirectory.root = str(root)
    if db_url is not None:
        config.CourseDirectory.db_url = db_url
    config.Execute.enabled = False
    config.ClearOutput.enabled = False
    return NbGraderAPI(config=config)


def generate_assignment(api, assignment: str) -> None:
    """``nbgrader generate_assignment --force`` through ``api``: the release and its gradebook entry."""
    outcome = api.generate_assignment(assignment, force=True)
    if not outcome["success"]:
        raise RuntimeError(f"nbgrader generate_assignment failed for {assignment}:\n"
                           f"{outcome.get('error', '')}{outcome.get('log', '')[-4000:]}")
