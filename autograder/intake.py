"""Find each student's notebook in a folder of submissions or in an LMS download (a zip).

- A folder: one sub-folder per student, named by the student's id.
- A zip: file names carry the student, e.g. Canvas's ``smithj_12345_678_07_self_attention.ipynb``
  or Moodle's ``Jane Smith_12345_assignsubmission_file_07_self_attention.ipynb``. The id is what
  ``--student-pattern`` (a regular expression with a ``student`` group; by default everything
  before the first ``_``) finds in the file name; folders inside the zip also name the student.

Whatever is odd is resolved and reported by name, never dropped in silence: a renamed notebook is
graded, of several uploads the newest is graded and the others are listed, extra files are listed,
a student with no notebook is reported.
"""
from __future__ import annotations

import os
import re
import shutil
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_STUDENT_PATTERN = r"^(?P<student>[^_/]+)_"


@dataclass
class Intake:
    student: str
    notebook: Path | None                  # the file to grade, None when there is none
    notes: list[str] = field(default_factory=list)


def student_id(name: str) -> str:
    """nbgrader ids: letters, digits, '-', '_' and '.'; anything else becomes '_'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip("._") or "unnamed"


def choose_notebook(files: list[Path], assignment: str, base: Path) -> tuple[Path | None, list[str]]:
    """The notebook to grade among one student's files, and what to report about the others."""
    hidden = {".ipynb_checkpoints", "__MACOSX"}
    files = [f for f in files if not hidden & set(f.parts) and not f.name.startswith("._")]
    notebooks = [f for f in files if f.suffix == ".ipynb"]
    notes = []
    extra = sorted(str(f.relative_to(base)) for f in files if f.suffix != ".ipynb")
    if extra:
        notes.append("extra files ignored: " + ", ".join(extra))
    if not notebooks:
        return None, notes + ["no notebook in the submission"]
    exact = [f for f in notebooks if f.name == f"{assignment}.ipynb"]
    newest = max(exact or notebooks, key=lambda f: (f.stat().st_mtime, f.name))
    others = sorted(str(f.relative_to(base)) for f in notebooks if f != newest)
    if others:
        notes.append(f"{len(notebooks)} notebooks handed in; graded {newest.relative_to(base)} "
                     f"(the {'one named for the assignment' if len(exact) == 1 else 'newest'}), "
                     f"not {', '.join(others)}")
    elif newest.name != f"{assignment}.ipynb":
        notes.append(f"notebook was named {newest.relative_to(base)}; graded as {assignment}.ipynb")
    return newest, notes


def from_folder(folder: Path, assignment: str) -> dict[str, Intake]:
    intakes: dict[str, Intake] = {}
    for entry in sorted(folder.iterdir()):
        if not entry.is_dir():
            continue
        sid = student_id(entry.name)
        files = sorted(p for p in entry.rglob("*") if p.is_file())
        notebook, notes = choose_notebook(files, assignment, entry)
        if sid in intakes:
            notes.append(f"a second folder {entry.name!r} maps to the same id; it was graded instead")
        intakes[sid] = Intake(sid, notebook, notes)
    loose = sorted(p.name for p in folder.iterdir() if p.is_file())
    if loose:
        intakes.setdefault("_unassigned", Intake("_unassigned", None)).notes.append(
            "files outside any student folder, not graded: " + ", ".join(loose))
    return intakes


def from_zip(archive: Path, assignment: str, unpack_to: Path, pattern: str = DEFAULT_STUDENT_PATTERN) -> dict[str, Intake]:
    """Unpack an LMS download into ``unpack_to/<student>/`` and take each student's notebook."""
    regex = re.compile(pattern)
    if unpack_to.exists():
        shutil.rmtree(unpack_to)
    unmatched = []
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            parts = Path(info.filename).parts
            match = regex.search(Path(info.filename).name)
            student = match.group("student") if match else (parts[0] if len(parts) > 1 else None)
            if student is None:
                unmatched.append(info.filename)
                continue
            name = Path(info.filename).name
            if match:  # keep what follows the student part: the name the student gave the file
                name = name[match.end():] or name
            target = unpack_to / student_id(student) / Path(*parts[1:-1] if len(parts) > 2 else ()) / name
            counter = 1
            while target.exists():  # the same name uploaded twice: keep both
                target = target.with_name(f"{target.stem}-{counter}{target.suffix}")
                counter += 1
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
            mtime = time.mktime(info.date_time + (0, 0, -1))  # "newest upload" compares these
            os.utime(target, (mtime, mtime))
    intakes = from_folder(unpack_to, assignment) if unpack_to.exists() else {}
    if unmatched:
        intakes.setdefault("_unassigned", Intake("_unassigned", None)).notes.append(
            "files whose name names no student, not graded: " + ", ".join(sorted(unmatched)))
    return intakes


def collect(submissions: Path, assignment: str, unpack_to: Path, pattern: str | None = None) -> dict[str, Intake]:
    if submissions.is_dir():
        return from_folder(submissions, assignment)
    if zipfile.is_zipfile(submissions):
        return from_zip(submissions, assignment, unpack_to, pattern or DEFAULT_STUDENT_PATTERN)
    raise FileNotFoundError(f"{submissions} is neither a folder of submissions nor a zip file")
