"""Reading files that a student or a student's code could have made: never follow a link, never
open anything but a regular file, never read more than a stated size.

A sandboxed kernel can replace what it wrote (or any folder on the way to it) with a symbolic
link to another student's records or to the solutions, a FIFO that blocks ``open()`` forever, or
a device that never ends. Every path here is opened one component at a time from a folder the
grader made, with ``O_NOFOLLOW`` (a link is refused, not followed) and ``O_NONBLOCK`` (a FIFO
opens at once and is then refused as not a regular file), and its size is checked on the open
file, so nothing can be swapped in between the check and the read.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath


class Refused(ValueError):
    """A file the grader will not read, and why, in plain words."""


def _open_beneath(base: Path, relative: str | Path) -> int:
    """A read-only file descriptor for ``base/relative``, reached without following any link."""
    parts = PurePosixPath(relative).parts
    if not parts or any(p in ("", ".", "..") for p in parts) or PurePosixPath(relative).is_absolute():
        raise Refused(f"{relative}: not a plain relative path")
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for folder in parts[:-1]:
            try:
                inner = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as error:
                raise Refused(f"{relative}: {folder!r} is not a folder ({error.strerror})") from None
            os.close(fd)
            fd = inner
        try:
            return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        except FileNotFoundError:
            raise
        except OSError as error:
            raise Refused(f"{relative}: cannot be opened as a plain file ({error.strerror})") from None
    finally:
        os.close(fd)


def read_bytes(base: Path, relative: str | Path, max_bytes: int) -> bytes:
    """The content of the regular file ``base/relative``; FileNotFoundError if there is none,
    ``Refused`` if it is a link, not a regular file, or larger than ``max_bytes``."""
    fd = _open_beneath(base, relative)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"{relative}: not a regular file")
        if info.st_size > max_bytes:
            raise Refused(f"{relative}: {info.st_size:,} bytes, more than the {max_bytes:,} allowed")
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):  # the size may grow after fstat: count what is read
            size += len(chunk)
            if size > max_bytes:
                raise Refused(f"{relative}: more than the {max_bytes:,} bytes allowed")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def exists(base: Path, relative: str | Path) -> bool:
    """Whether ``base/relative`` is a regular file reached without links."""
    try:
        fd = _open_beneath(base, relative)
    except (FileNotFoundError, Refused):
        return False
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def regular_files(folder: Path) -> tuple[list[Path], list[str]]:
    """The regular files under ``folder`` (relative paths), walked without following links, and
    what was skipped (links, FIFOs, devices, sockets), by relative path."""
    files, skipped = [], []
    for top, dirs, names in os.walk(folder, followlinks=False):
        here = Path(top)
        for name in list(dirs):
            if (here / name).is_symlink():
                dirs.remove(name)
                skipped.append(f"{(here / name).relative_to(folder)} (a link)")
        for name in names:
            info = os.lstat(here / name)
            relative = (here / name).relative_to(folder)
            if stat.S_ISREG(info.st_mode):
                files.append(relative)
            else:
                kind = "a link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
                skipped.append(f"{relative} ({kind})")
        dirs.sort()
    return sorted(files), sorted(skipped)
