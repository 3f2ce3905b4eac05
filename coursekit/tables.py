"""The results files the chapters ship: a CSV (or TSV) whose first line is the command that wrote it; or, where
several commands add rows to one file, a CSV whose ``command`` column says which command made each row."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable


def write_table(path: Path, rows: list[dict], command: str) -> None:
    """Rows of one shape to ``path`` (tab-separated if it ends in .tsv), floats with 4 decimals, after a first
    line ``# command``, so that every number says how to make it again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(f"# {command}\n")
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t" if path.suffix == ".tsv" else ",",
                           lineterminator="\n")
        w.writeheader()
        w.writerows({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows)


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def upsert_row(path: Path, row: dict, key: Iterable[str]) -> None:
    """Put ``row`` (with a ``command`` column) into the CSV at ``path``, replacing the row with the same values of
    the ``key`` columns; rows sorted by those values."""
    key = tuple(key)
    rows = [r for r in read_rows(path) if any(str(r[k]) != str(row[k]) for k in key)] if path.exists() else []
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row), lineterminator="\n")
        w.writeheader()
        w.writerows(sorted(rows + [row], key=lambda r: tuple(str(r[k]) for k in key)))


def read_rows(path: Path) -> list[dict]:
    """A file ``upsert_row`` wrote, back as dicts, numbers as int or float."""
    with open(path, encoding="utf-8", newline="") as f:
        return [{k: _number(v) for k, v in r.items()} for r in csv.DictReader(f)]


def read_table(path: Path, text_columns: Iterable[str] = ()) -> list[dict]:
    """A file ``write_table`` wrote, back as dicts: numbers as int or float, except in ``text_columns``
    (outputs such as "1" that are text)."""
    text_columns = set(text_columns)
    with open(path, encoding="utf-8", newline="") as f:
        f.readline()
        reader = csv.DictReader(f, delimiter="\t" if path.suffix == ".tsv" else ",")
        return [{k: (v if k in text_columns else _number(v)) for k, v in r.items()} for r in reader]


def table_command(path: Path) -> str:
    """The command that wrote a results file (its first line)."""
    with open(path, encoding="utf-8") as f:
        return f.readline().removeprefix("# ").strip()
