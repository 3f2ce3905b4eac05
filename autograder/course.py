"""Where the course's pieces live. nbgrader's `source` is solutions/, its `release` is notebooks/."""
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions"
NOTEBOOKS = REPO / "notebooks"
NBGRADER_CONFIG = Path(__file__).resolve().parent / "nbgrader_config.py"


def assignments() -> list[str]:
    """Every assignment, by folder name (``07_self_attention``), in course order."""
    return sorted(p.name for p in SOLUTIONS.iterdir() if (p / f"{p.name}.ipynb").exists())


def source_notebook(assignment: str) -> Path:
    path = SOLUTIONS / assignment / f"{assignment}.ipynb"
    if not path.exists():
        raise FileNotFoundError(f"no assignment {assignment!r}: expected {path} (have: {', '.join(assignments())})")
    return path


def release_notebook(assignment: str) -> Path:
    return NOTEBOOKS / assignment / f"{assignment}.ipynb"
