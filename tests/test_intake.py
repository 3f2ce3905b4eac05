"""Intake takes in only what is safe to read: no path outside its folder, no links, no devices, no
bombs; and it keeps every student apart, whatever their names, with the LMS's id as the key."""
from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from autograder import intake
from autograder.intake import collect, student_id
from autograder.untrusted import Refused, read_bytes, regular_files

A = "07_self_attention"
NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_zip_entries_cannot_leave_the_folder_they_unpack_to(tmp_path):
    """Zip slip: '..', absolute paths, drive letters, backslashes, links and devices are refused and named."""
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"alice_101_1_{A}.ipynb", NOTEBOOK)
        zf.writestr("alice/../../outside.pth", b"import os")
        zf.writestr("../outside2.txt", b"x")
        zf.writestr("/tmp/absolute.txt", b"x")
        zf.writestr("C:\\\\Windows\\\\drive.txt", b"x")
        zf.writestr("bob\\\\..\\\\..\\\\backslash.txt", b"x")
        link = zipfile.ZipInfo("carol/07_self_attention.ipynb")
        link.create_system, link.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/work/main/solutions/07_self_attention/07_self_attention.ipynb")
        device = zipfile.ZipInfo("dave/dev")
        device.create_system, device.external_attr = 3, (stat.S_IFCHR | 0o666) << 16
        zf.writestr(device, b"")
    before = tree(tmp_path)
    target = tmp_path / "work" / "intake"
    intakes = collect(archive, A, target)
    assert tree(tmp_path) - before - {"work", "work/intake"} == {str(p.relative_to(tmp_path)) for p in target.rglob("*")}
    assert all(p.resolve().is_relative_to(target) for p in target.rglob("*"))
    assert not list(target.rglob("*.pth")) and not any(p.is_symlink() for p in target.rglob("*"))
    refused = " ".join(intakes["_unassigned"].notes)
    for name in ("outside.pth", "outside2.txt", "absolute.txt", "drive.txt", "backslash.txt", "a link", "a device"):
        assert name in refused, name
    assert intakes["101"].notebook is not None and intakes["101"].name == "alice"


def test_zip_bombs_stop_at_the_size_and_count_limits(tmp_path, monkeypatch):
    monkeypatch.setattr(intake, "MAX_TOTAL_BYTES", 10_000)
    monkeypatch.setattr(intake, "MAX_MEMBERS", 5)
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"alice_101_1_{A}.ipynb", NOTEBOOK)
        zf.writestr("bob_102_2_big.ipynb", bytes(50_000))  # compresses to almost nothing
        for i in range(10):
            zf.writestr(f"carol_103_{i}_x.txt", b"x")
    intakes = collect(archive, A, tmp_path / "out")
    assert sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file()) <= 10_000
    assert any("refused" in n for n in intakes["102"].notes)
    assert any("only the first 5" in n for n in intakes["_unassigned"].notes)


def test_folder_intake_copies_regular_files_only(tmp_path):
    """Links (to the solutions, to a classmate), FIFOs and linked folders are refused, not followed."""
    subs = tmp_path / "subs"
    (subs / "alice").mkdir(parents=True)
    (subs / "alice" / f"{A}.ipynb").write_bytes(NOTEBOOK)
    (subs / "mallory").mkdir()
    (subs / "mallory" / f"{A}.ipynb").symlink_to(subs / "alice" / f"{A}.ipynb")
    os.mkfifo(subs / "mallory" / "pipe.ipynb")
    (subs / "mallory" / "inside").symlink_to(subs / "alice", target_is_directory=True)
    (subs / "eve").symlink_to(subs / "alice", target_is_directory=True)
    intakes = collect(subs, A, tmp_path / "work")
    assert intakes["mallory"].notebook is None
    assert "a link" in " ".join(intakes["mallory"].notes) and "not a regular file" in " ".join(intakes["mallory"].notes)
    assert "eve" not in intakes and "eve" in " ".join(intakes["_unassigned"].notes)
    assert intakes["alice"].notebook.read_bytes() == NOTEBOOK
    assert intakes["alice"].notebook.is_relative_to(tmp_path / "work"), "graded from the grader's own copy"


def test_students_are_kept_apart_whatever_their_names(tmp_path):
    """Folder per student in a zip; Canvas and Moodle ids; one display name for two students; non-ASCII names."""
    archive = tmp_path / "lms.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"alice/{A}.ipynb", NOTEBOOK)                               # a folder per student
        zf.writestr(f"smithj_201_9_{A}.ipynb", NOTEBOOK)                        # Canvas
        zf.writestr(f"smithj_202_8_{A}.ipynb", NOTEBOOK)                        # another J. Smith
        zf.writestr(f"smithj_LATE_203_7_{A}.ipynb", NOTEBOOK)                   # Canvas, late
        zf.writestr(f"Jane Smith_301_assignsubmission_file_/{A}.ipynb", NOTEBOOK)  # Moodle
        zf.writestr(f"Jane Smith_302_assignsubmission_file_/{A}.ipynb", NOTEBOOK)
        zf.writestr(f"José/{A}.ipynb", NOTEBOOK)
        zf.writestr(f"Jos_/{A}.ipynb", NOTEBOOK)
        zf.writestr(f"李雷/{A}.ipynb", NOTEBOOK)
    intakes = collect(archive, A, tmp_path / "out")
    names = {key: i.name for key, i in intakes.items()}
    assert names == {"alice": "alice", "201": "smithj", "202": "smithj", "203": "smithj", "301": "Jane Smith",
                     "302": "Jane Smith", student_id("José"): "José", "Jos_": "Jos_", student_id("李雷"): "李雷"}
    assert all(i.notebook is not None for i in intakes.values())


def test_student_ids_are_valid_and_distinct():
    names = ["José", "Jos_", "Jos-c3-a9", "jean-luc", "jean_luc", ".hidden", "_hidden", "李雷", "_李雷", "a b", "a_b",
             "x", "-x", "_-2dx", "=1+1", "", "_"]
    keys = [student_id(n) for n in names]
    assert len(set(keys)) == len(keys), dict(zip(names, keys))
    assert all(k and k[0] not in "-." and set(k) <= set("abcdefghijklmnopqrstuvwxyz"
                                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") for k in keys)
    assert student_id("alice") == "alice" and student_id("s12345") == "s12345"


def test_two_folders_for_one_key_are_both_graded_and_flagged(tmp_path, monkeypatch):
    monkeypatch.setattr(intake, "student_id", lambda name: name.lower())  # a collision, made to happen
    subs = tmp_path / "subs"
    for name in ("Alice", "alice"):
        (subs / name).mkdir(parents=True)
        (subs / name / f"{A}.ipynb").write_bytes(NOTEBOOK)
    intakes = collect(subs, A, tmp_path / "out")
    assert sorted(intakes) == ["alice", "alice_2"]
    for key in intakes:
        assert intakes[key].flags == ["id collision"]
        assert "'Alice'" in " ".join(intakes[key].notes) and "'alice'" in " ".join(intakes[key].notes)


def test_untrusted_reads_refuse_links_fifos_devices_and_large_files(tmp_path):
    (tmp_path / "plain").write_bytes(b"ok")
    (tmp_path / "big").write_bytes(bytes(100))
    (tmp_path / "link").symlink_to(tmp_path / "plain")
    (tmp_path / "zero").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "inner").write_bytes(b"inner")
    (tmp_path / "linked_folder").symlink_to(tmp_path / "folder", target_is_directory=True)
    assert read_bytes(tmp_path, "plain", 10) == b"ok"
    assert read_bytes(tmp_path, "folder/inner", 10) == b"inner"
    for name in ("big", "link", "zero", "fifo", "linked_folder/inner", "../plain", "/etc/passwd"):
        with pytest.raises(Refused):
            read_bytes(tmp_path, name, 10)
    with pytest.raises(FileNotFoundError):
        read_bytes(tmp_path, "missing", 10)
    files, skipped = regular_files(tmp_path)
    assert set(map(str, files)) == {"plain", "big", "folder/inner"}
    assert {s.split(" ")[0] for s in skipped} == {"link", "zero", "fifo", "linked_folder"}


def test_names_too_long_for_the_file_system_are_kept_apart_and_do_not_stop_the_class(tmp_path):
    archive = tmp_path / "long.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"{'é' * 200}/{A}.ipynb", NOTEBOOK)
        zf.writestr(f"{'é' * 199}ê/{A}.ipynb", NOTEBOOK)
        zf.writestr(f"alice/{'x' * 300}.ipynb", NOTEBOOK)
        zf.writestr(f"bob/{A}.ipynb", NOTEBOOK)
    intakes = collect(archive, A, tmp_path / "out")
    long_keys = [k for k in intakes if k not in ("alice", "bob", "_unassigned")]
    assert len(long_keys) == 2 and all(len(k) <= 96 for k in long_keys)
    assert intakes["bob"].notebook is not None
    assert "x" * 100 in " ".join(intakes["alice"].notes) and "refused" in " ".join(intakes["alice"].notes)


def test_the_grades_csv_holds_no_formulas(tmp_path):
    from autograder.pipeline import StudentResult
    from autograder.reports import write_csv

    write_csv(tmp_path / "g.csv", {"t": 1.0}, [StudentResult("=1+1", score=1.0, name="@SUM(A1)",
                                                             notes=["-cmd|' /C calc'!A0"])])
    row = (tmp_path / "g.csv").read_text().splitlines()[1]
    assert row.startswith("'=1+1,'@SUM(A1),") and "'-cmd" in row


def test_submission_times_come_from_nbgrader_timestamps_only(tmp_path):
    """nbgrader's timestamp.txt (and its secret) beside the notebook, in a collected folder or a zip,
    is the submission time; zip entry dates and file times never are; Canvas's LATE is noted."""
    collected = tmp_path / "submitted"  # as `nbgrader collect` leaves it
    for student, stamp in (("alice", "2025-03-14 22:00:00.000001 UTC"), ("bob", "not a time")):
        folder = collected / student / A
        folder.mkdir(parents=True)
        (folder / f"{A}.ipynb").write_bytes(NOTEBOOK)
        (folder / "timestamp.txt").write_text(stamp)
        (folder / "submission_secret.txt").write_text("ab12" * 32)
    (collected / "carol").mkdir()
    (collected / "carol" / f"{A}.ipynb").write_bytes(NOTEBOOK)
    intakes = collect(collected, A, tmp_path / "out")
    assert str(intakes["alice"].timestamp) == "2025-03-14 22:00:00.000001+00:00"
    assert intakes["alice"].secret == "ab12" * 32
    assert not any("extra files" in n for n in intakes["alice"].notes), "nbgrader's own files are not extras"
    assert intakes["bob"].timestamp is None and any("holds no time" in n for n in intakes["bob"].notes)
    assert intakes["carol"].timestamp is None and intakes["carol"].secret is None

    archive = tmp_path / "lms.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"dave/{A}.ipynb", NOTEBOOK)
        zf.writestr("dave/timestamp.txt", "2025-03-15 01:00:00 UTC")
        zf.writestr(zipfile.ZipInfo(f"erin/{A}.ipynb", date_time=(2030, 1, 1, 0, 0, 0)), NOTEBOOK)
        zf.writestr(f"smithj_LATE_203_7_{A}.ipynb", NOTEBOOK)
    intakes = collect(archive, A, tmp_path / "out2")
    assert str(intakes["dave"].timestamp) == "2025-03-15 01:00:00+00:00"
    assert intakes["erin"].timestamp is None, "a zip entry's date is not a submission time"
    assert intakes["203"].timestamp is None and any("Canvas marks this submission late" in n
                                                    for n in intakes["203"].notes)
