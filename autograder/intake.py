"""Take in each student's files from a folder of submissions or an LMS download (a zip), safely.

Everything handed in is hostile until checked. Intake copies what it accepts into the working
folder (``<workdir>/intake/<student>/``), and the rest of the grader reads only those copies:

- it copies regular files only, reached without following links (a folder made by ``rsync -a``,
  a tar archive or a hub home folder can hold links to the solutions or to a classmate's work);
  links, FIFOs and devices are listed as refused;
- from a zip it refuses entries with absolute paths, drive letters, ``..``, links and devices, and
  stops at ``MAX_MEMBERS`` entries and ``MAX_TOTAL_BYTES`` unpacked (zip bombs); nothing is ever
  written outside the target folder;
- a file over ``MAX_FILE_BYTES`` is refused, by name.

Who handed what in:

- a folder: one sub-folder per student, named by the student's id;
- a zip with one folder per student: the folder names the student; Moodle's
  ``Full Name_12345_assignsubmission_file_/`` gives the id 12345 and the name "Full Name";
- a flat zip: Canvas's ``smithj_12345_678_07_self_attention.ipynb`` (name, user id, attachment id,
  file; ``smithj_LATE_12345_…`` when late) gives the id 12345; Moodle's flat
  ``Full Name_12345_assignsubmission_file_…`` too; otherwise ``--student-pattern`` (a regular
  expression with a ``student`` group) or, by default, everything before the first ``_``.

The LMS's unique id is the key, so two students with one display name stay two students; the
display name goes to the CSV. Keys are valid nbgrader ids: characters nbgrader does not allow
are written as ``-`` and their UTF-8 bytes in hex (``José`` is ``Jos-c3-a9``, ``名前`` is
``_-e5-90-8d-e5-89-8d``), so no two names share a key. Should two submissions still map to one key, both are graded, under distinct keys,
and flagged with each other's name.

Submission times: nbgrader's ``timestamp.txt`` (what ``nbgrader submit`` writes and ``nbgrader
collect`` keeps in ``submitted/<student>/<assignment>/``), next to the graded notebook or at the top
of the student's folder, in a folder of submissions or a zip, is the submission's time; the
``submission_secret.txt`` beside it is kept too, so that ``nbgrader release_feedback`` can hand the
feedback back through the exchange. Nothing else is taken as a submission time: a zip entry's date
is whatever the machine that made the zip wrote (local time, no time zone, two-second steps; the
LMS's packing time or the file's own), and a file's modification time is the copy's. Those only
choose the newest of several uploads. Canvas's ``_LATE_`` marker is noted, with no penalty computed
here (the zip holds no time; the LMS applies its own late policy).

Whatever else is odd is resolved and reported, never dropped in silence: a renamed notebook is
graded, of several uploads the newest is graded and the others are listed, extra files are listed,
a student with no notebook is reported.
"""
from __future__ import annotations

import datetime
import hashlib
import os
import re
import shutil
import stat
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autograder.untrusted import Refused, read_bytes, regular_files

DEFAULT_STUDENT_PATTERN = r"^(?P<student>[^_/]+)_"
CANVAS = re.compile(r"^(?P<name>[^_/]+?)(?P<late>_LATE)?_(?P<id>\d+)_(?P<attachment>\d+)_(?P<file>.+)$")
MOODLE = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assign(?:submission|feedback)_(?P<file>.*)$")
MAX_MEMBERS = 10_000
MAX_TOTAL_BYTES = 1 << 30
MAX_FILE_BYTES = 32 << 20
MAX_KEY_LENGTH = 96
UNUSED = {".ipynb_checkpoints", "__MACOSX"}
TIMESTAMP, SECRET = "timestamp.txt", "submission_secret.txt"  # nbgrader's, beside the notebook
SECRET_FORM = re.compile(r"[0-9A-Za-z_-]{1,256}")


@dataclass
class Intake:
    student: str                           # the key: a valid nbgrader id, unique in the class
    notebook: Path | None                  # the copy to grade, None when there is none
    name: str = ""                         # as the LMS or the folder wrote it
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    timestamp: datetime.datetime | None = None  # when it was handed in (UTC), from timestamp.txt
    secret: str | None = None                    # nbgrader's submission_secret.txt, for release_feedback


def read_timestamp(folder: Path, notebook: Path | None) -> tuple[datetime.datetime | None, str | None, list[str]]:
    """(the submission's time in UTC, its nbgrader secret, notes) from nbgrader's files beside the
    notebook or at the top of the student's ``folder``."""
    from nbgrader.utils import parse_utc

    places = [p for p in (notebook.parent if notebook else None, folder) if p is not None]
    timestamp, secret, notes = None, None, []
    stamp = next((p / TIMESTAMP for p in places if (p / TIMESTAMP).is_file()), None)
    if stamp is not None:
        text = stamp.read_bytes()[:100].decode("utf-8", "replace").strip()
        try:
            timestamp = parse_utc(text).replace(tzinfo=datetime.timezone.utc)
        except (ValueError, OverflowError):
            notes.append(f"{TIMESTAMP} holds no time ({text[:40]!r}): no submission time, so no late penalty")
        else:
            found = stamp.parent / SECRET
            text = found.read_bytes()[:300].decode("ascii", "replace").strip() if found.is_file() else ""
            secret = text if SECRET_FORM.fullmatch(text) else None
    return timestamp, secret, notes


def student_id(name: str) -> str:
    """A valid nbgrader id for ``name``, different for different names: letters, digits, ``_`` and
    ``.`` stay; every other character becomes ``-`` and its UTF-8 bytes in hex. A key never starts
    with ``-`` or ``.`` (a spreadsheet would read the one as a formula, a shell the other as hidden):
    when the first character is escaped (``_`` and ``.`` included there), the key starts with ``_``."""
    def escaped(c: str) -> str:
        return "".join(f"-{b:02x}" for b in c.encode())
    if not name:
        return "_-"
    first = name[0] if re.fullmatch(r"[A-Za-z0-9]", name[0]) else "_" + escaped(name[0])
    key = first + "".join(c if re.fullmatch(r"[A-Za-z0-9_.]", c) else escaped(c) for c in name[1:])
    if len(key) > MAX_KEY_LENGTH:  # a folder name must fit the file system: keep a readable start, and a hash
        key = f"{key[:MAX_KEY_LENGTH - 17]}-{hashlib.sha256(name.encode()).hexdigest()[:16]}"
    return key


def choose_notebook(files: list[Path], assignment: str, base: Path) -> tuple[Path | None, list[str]]:
    """The notebook to grade among one student's files, and what to report about the others."""
    files = [f for f in files if not UNUSED & set(f.parts) and not f.name.startswith("._")]
    notebooks = [f for f in files if f.suffix == ".ipynb"]
    notes = []
    extra = sorted(str(f.relative_to(base)) for f in files if f.suffix != ".ipynb" and f.name not in (TIMESTAMP, SECRET))
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


class Unpacker:
    """Writes accepted files into ``target/<key>/``, and keeps, per key, the display name and notes."""

    def __init__(self, target: Path):
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        self.target = target
        self.names: dict[str, str] = {}          # key -> display name
        self.sources: dict[str, set[str]] = {}   # key -> where its files came from (a folder, an LMS id)
        self.notes: dict[str, list[str]] = {}
        self.collisions: dict[str, list[str]] = {}  # key -> the keys it collided with
        self.total = 0

    def student(self, key: str, name: str, source: str) -> str:
        """The key for the student that ``source`` names; a second source that claims a key
        already taken gets a key of its own, and both are flagged."""
        taken = next((k for k, s in self.sources.items() if source in s), None)
        if taken:
            return taken
        if key in self.names:
            first = key
            key = next(f"{first}_{n}" for n in range(2, 10**6) if f"{first}_{n}" not in self.names)
            for mine, other in ((first, key), (key, first)):
                self.collisions.setdefault(mine, []).append(other)
            self.notes.setdefault(first, []).append(f"two submissions map to the id {first!r}: "
                                                    f"{' and '.join(sorted(self.sources[first]))} and {source}; "
                                                    f"the second is graded as {key!r}")
        self.names[key] = name
        self.sources[key] = {source}
        self.notes.setdefault(key, [])
        if key in self.collisions:
            self.notes[key].append(f"this submission ({source}) maps to the id {self.collisions[key][0]!r} "
                                   f"of another ({' and '.join(sorted(self.sources[self.collisions[key][0]]))}); "
                                   f"graded as {key!r}")
        return key

    def write(self, key: str, relative: PurePosixPath, data: bytes, mtime: float) -> None:
        path = self.target / key / relative
        counter = 1
        while path.exists():  # the same name uploaded twice: keep both
            path = path.with_name(f"{path.stem}-{counter}{path.suffix}")
            counter += 1
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))  # "the newest upload" compares these

    def intakes(self, assignment: str) -> dict[str, Intake]:
        intakes = {}
        for key in sorted(self.names):
            folder = self.target / key
            files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
            notebook, notes = choose_notebook(files, assignment, folder)
            timestamp, secret, stamp_notes = read_timestamp(folder, notebook) if folder.exists() else (None, None, [])
            intakes[key] = Intake(key, notebook, self.names[key], self.notes[key] + notes + stamp_notes,
                                  ["id collision"] if key in self.collisions else [], timestamp, secret)
        return intakes


def _safe_relative(name: str) -> PurePosixPath | None:
    """A zip entry's path as a relative path inside the target, or None if it could leave it."""
    name = name.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or "\0" in name:
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return PurePosixPath(*parts)


def _entry_kind(info: zipfile.ZipInfo) -> str | None:
    """What a zip entry is when it is not a plain file or folder: 'a link', 'a device', ..."""
    mode = info.external_attr >> 16
    if info.create_system != 3 or not mode:  # not written on Unix: no file type recorded
        return None
    for test, kind in ((stat.S_ISLNK, "a link"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return None


def _who(path: PurePosixPath, pattern: re.Pattern | None) -> tuple[str, str, PurePosixPath] | None:
    """(key, display name, the file's path below the student) for one zip entry, or None."""
    if pattern is not None:
        match = pattern.search(path.name)
        if match:
            return student_id(match.group("student")), match.group("student"), \
                PurePosixPath(*path.parts[1:-1], path.name[match.end():] or path.name)
    if len(path.parts) > 1:  # a folder per student
        top = path.parts[0]
        moodle = MOODLE.match(top)
        if moodle:
            return moodle["id"], moodle["name"], PurePosixPath(*path.parts[1:])
        return student_id(top), top, PurePosixPath(*path.parts[1:])
    for lms in (CANVAS, MOODLE):
        match = lms.match(path.name)
        if match:
            return match["id"], match["name"], PurePosixPath(match["file"] or path.name)
    if pattern is None:
        return _who(path, re.compile(DEFAULT_STUDENT_PATTERN))
    return None


def from_zip(archive: Path, assignment: str, unpack_to: Path, pattern: str | None = None) -> dict[str, Intake]:
    """Unpack an LMS download into ``unpack_to/<student>/`` and take each student's notebook."""
    unpacker = Unpacker(unpack_to)
    regex = re.compile(pattern) if pattern else None
    refused, unmatched = [], []
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        if len(members) > MAX_MEMBERS:
            refused.append(f"the archive has {len(members):,} entries; only the first {MAX_MEMBERS:,} were read")
            members = members[:MAX_MEMBERS]
        for info in members:
            if info.is_dir():
                continue
            path, kind = _safe_relative(info.filename), _entry_kind(info)
            if path is None or kind:
                refused.append(f"{info.filename!r} ({kind or 'a path outside the archive'})")
                continue
            who = _who(path, regex)
            if who is None:
                unmatched.append(info.filename)
                continue
            key, name, below = who
            key = unpacker.student(key, name, f"{path.parts[0]!r} in the zip" if len(path.parts) > 1 and not regex
                                   else f"{name!r} (id {key}) in the zip")
            if UNUSED & set(below.parts):
                continue
            canvas = None if regex or len(path.parts) > 1 else CANVAS.match(path.name)
            if canvas and canvas["late"] and not any("marks this submission late" in n for n in unpacker.notes[key]):
                unpacker.notes[key].append("Canvas marks this submission late; its zip holds no submission time, so "
                                           "no late penalty was computed here (Canvas applies its own late policy)")
            data = _read_member(zf, info, min(MAX_FILE_BYTES, MAX_TOTAL_BYTES - unpacker.total))
            if data is None:
                unpacker.notes[key].append(f"{below} refused: larger than {MAX_FILE_BYTES >> 20} MiB "
                                           "or past the archive's size limit")
                continue
            try:
                unpacker.write(key, below, data, time.mktime(info.date_time + (0, 0, -1)))
            except (OSError, ValueError, OverflowError) as error:  # a name too long, a date out of range
                unpacker.notes[key].append(f"{str(below)[:120]} refused: {getattr(error, 'strerror', None) or error}")
                continue
            unpacker.total += len(data)
    intakes = unpacker.intakes(assignment)
    if refused or unmatched:
        notes = (["entries refused: " + ", ".join(refused)] if refused else []) + \
            (["files whose name names no student, not graded: " + ", ".join(sorted(unmatched))] if unmatched else [])
        intakes["_unassigned"] = Intake("_unassigned", None, notes=notes)
    return intakes


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes | None:
    """The entry's bytes, or None past ``limit`` (counted as they unpack: the header can lie)."""
    if info.file_size > limit:
        return None
    chunks, size = [], 0
    with zf.open(info) as f:
        while chunk := f.read(1 << 20):
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    return b"".join(chunks)


def from_folder(folder: Path, assignment: str, unpack_to: Path) -> dict[str, Intake]:
    """Copy each student's regular files from ``folder/<student>/`` into ``unpack_to``."""
    unpacker = Unpacker(unpack_to)
    loose, linked = [], []
    for entry in sorted(folder.iterdir()):
        info = os.lstat(entry)
        if stat.S_ISLNK(info.st_mode):
            linked.append(entry.name)
            continue
        if not stat.S_ISDIR(info.st_mode):
            loose.append(entry.name)
            continue
        key = unpacker.student(student_id(entry.name), entry.name, f"folder {entry.name!r}")
        files, skipped = regular_files(entry)
        if skipped:
            unpacker.notes[key].append("refused (only regular files are graded): " + ", ".join(skipped))
        for relative in files:
            if UNUSED & set(relative.parts):
                continue
            try:
                data = read_bytes(entry, relative, MAX_FILE_BYTES)
            except (Refused, OSError) as error:
                unpacker.notes[key].append(f"{relative} refused: {error}")
                continue
            try:
                unpacker.write(key, PurePosixPath(relative), data, os.lstat(entry / relative).st_mtime)
            except OSError as error:
                unpacker.notes[key].append(f"{relative} refused: {error}")
    intakes = unpacker.intakes(assignment)
    notes = (["files outside any student folder, not graded: " + ", ".join(loose)] if loose else []) + \
        (["links in place of a student folder, not followed: " + ", ".join(linked)] if linked else [])
    if notes:
        intakes["_unassigned"] = Intake("_unassigned", None, notes=notes)
    return intakes


def collect(submissions: Path, assignment: str, unpack_to: Path, pattern: str | None = None) -> dict[str, Intake]:
    if submissions.is_dir():
        return from_folder(submissions, assignment, unpack_to)
    if zipfile.is_zipfile(submissions):
        return from_zip(submissions, assignment, unpack_to, pattern)
    raise FileNotFoundError(f"{submissions} is neither a folder of submissions nor a zip file")
