"""Run untrusted code (a student's notebook) with the operating system's limits.

With bubblewrap (Debian package ``bubblewrap``) the command runs in new mount, PID, network, IPC
and UTS namespaces, as an unprivileged user, and sees only: the system's /usr and /etc, the Python
installation and virtual environment, the support package and the grader's code (read-only), one
scratch folder and a private /tmp (its only writable places). It cannot see solutions/, the
gradebook, the expected outputs or other students' work, and it has no network at all. Killing it
kills every process it started (they all live in its PID namespace).

On top of that, always: a wall-clock limit for the whole run, a memory limit (a cgroup when the
machine lets us create one, else an address-space rlimit), a process limit (a cgroup and an
rlimit), a file-size limit, no core dumps; as root, a size limit on the scratch folder
(``scratch_folder``). Without bubblewrap the command runs with the limits alone, and a warning
says what is not prevented.

With cgroups, only the notebook's kernel is in them: the runner that drives it starts the kernel
in the groups that ``$COURSE_CGROUPS`` names, reads their counters to tell which cell went over a
limit, and stops that cell's kernel. A fork bomb or a memory bomb cannot starve the runner or
make the out-of-memory killer choose it, so it always ends the same way.
"""
from __future__ import annotations

import contextlib
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course import REPO

SANDBOX_UID = 60000  # + the worker's slot: each worker's processes are counted apart
CGROUP_V1 = Path("/sys/fs/cgroup")
CGROUPS_INSIDE = Path("/run/grader-cgroups")  # where the sandbox sees the kernel's cgroups
ENV_CGROUPS = "COURSE_CGROUPS"                # ":"-separated folders of the kernel's cgroups
RUNNER_PROCESSES = 32                         # the runner's threads, on top of the kernel's processes
WORK = "work"                                 # the kernel's working folder, inside the scratch folder


@dataclass
class Limits:
    cell_timeout: int = 60               # seconds per cell (the runner interrupts the cell)
    notebook_timeout: int = 600          # seconds for the whole notebook (the sandbox is killed)
    memory_bytes: int = 4 * 2**30
    processes: int = 256
    output_bytes: int = 2_000_000        # kept in the executed notebook; the rest is dropped
    file_bytes: int = 256 * 2**20
    disk_bytes: int = 512 * 2**20        # the scratch folder, where it can be a tmpfs


@dataclass
class Result:
    returncode: int
    timed_out: bool
    seconds: float
    log: str
    warnings: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=1)
def bubblewrap() -> str | None:
    """Path of a working ``bwrap``, or None."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    probe = subprocess.run([path, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "true"],
                           capture_output=True)
    return path if probe.returncode == 0 else None


def _parents(path: Path) -> list[Path]:
    return [p for p in reversed(path.parents) if p != Path("/")]


def bubblewrap_args(scratch: Path, uid: int, cgroups: list[Path]) -> list[str]:
    """The namespaces and the file system the sandbox sees."""
    readonly = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(),
                Path(os.path.realpath(sys.executable)).parent.parent,
                REPO / "coursekit", REPO / "autograder"}
    args = [bubblewrap(), "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        target = Path("/") / name
        if target.is_symlink():
            args += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            args += ["--ro-bind", str(target), str(target)]
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]  # /tmp as usual, private
    made = set()
    for path in sorted(readonly | {scratch}):
        for parent in _parents(path):  # bwrap would create these 0700: unreadable for the sandbox user
            if parent not in made and not any(parent == r or r in parent.parents for r in readonly):
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
    for path in sorted(readonly):
        args += ["--ro-bind", str(path), str(path)]
    for device in sorted(Path("/dev").glob("nvidia*")):  # the GPU, when there is one
        args += ["--dev-bind", str(device), str(device)]
    if cgroups:
        args += ["--perms", "0755", "--dir", str(CGROUPS_INSIDE)]
    for group in cgroups:  # only cgroup.procs is the sandbox user's to write: it may join, not loosen
        args += ["--bind", str(group), str(CGROUPS_INSIDE / group.parent.name)]
    args += ["--bind", str(scratch), str(scratch), "--chdir", str(scratch)]
    args += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
             "--inh-caps=-all", "--bounding-set=-all"]
    return args


@contextlib.contextmanager
def scratch_folder(path: Path, limits: Limits):
    """An empty folder for one run, removed afterwards; yields the warnings it calls for.

    The notebook's kernel works in its ``WORK`` sub-folder; the grader's files (inputs, records,
    the executed notebook) stay beside it. As root, each is a tmpfs of ``limits.disk_bytes``: a
    notebook that writes without end fills its own folder, not the grader's disk nor the space its
    results need (and the pages count in its kernel's memory). Elsewhere both are plain folders,
    and only each file's size is limited."""
    _remove_scratch(path)
    path.mkdir(parents=True)
    mounted = os.geteuid() == 0 and _mount_tmpfs(path, limits.disk_bytes)
    (path / WORK).mkdir()
    mounted = mounted and _mount_tmpfs(path / WORK, limits.disk_bytes)
    try:
        yield [] if mounted else ["the scratch folder could not be a size-limited tmpfs (needs root): only "
                                  "each file's size is limited, not the space a notebook fills"]
    finally:
        _remove_scratch(path)


def _mount_tmpfs(path: Path, size: int) -> bool:
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def scratch_full(path: Path) -> bool:
    """Whether the notebook filled its size-limited working folder."""
    work = path / WORK
    if not os.path.ismount(work):
        return False
    usage = shutil.disk_usage(work)
    return usage.used >= 0.98 * usage.total


def _remove_scratch(path: Path) -> None:
    for folder in (path / WORK, path):
        if os.path.ismount(folder):
            subprocess.run(["umount", "--lazy", str(folder)], check=True)
    shutil.rmtree(path, ignore_errors=True)


def _cgroup(limits: Limits, uid: int) -> list[Path] | None:
    """cgroup v1 memory and pids groups for one kernel, or None where we may not create them.

    The groups belong to root; their ``cgroup.procs`` to the sandbox user, so that the runner can
    put the kernel it starts in them."""
    name = f"course-grader-{uuid.uuid4().hex[:12]}"
    groups = []
    try:
        memory, pids = CGROUP_V1 / "memory" / name, CGROUP_V1 / "pids" / name
        memory.mkdir()
        groups.append(memory)
        (memory / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
        pids.mkdir()
        groups.append(pids)
        (pids / "pids.max").write_text(str(limits.processes))
        for group in groups:
            os.chown(group / "cgroup.procs", uid, uid)
        return groups
    except OSError:
        _remove_cgroups(groups)
        return None


def kill_members(groups: list[Path]) -> bool:
    """SIGKILL every process in ``groups``; True if there was none left to kill."""
    pids = [pid for group in groups for pid in (group / "cgroup.procs").read_text().split()]
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except OSError:  # gone already
            pass
    return not pids


def _remove_cgroups(groups: list[Path]) -> None:
    for group in groups:
        for _ in range(50):  # what is left of the kernel may take a moment to go after the kill
            try:
                kill_members([group])
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def _limit_self(limits: Limits, cgroups: list[Path] | None) -> None:
    """Runs in the child between fork and exec: set the rlimits (the runner puts its kernel in the cgroups)."""
    if not cgroups:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    nproc = limits.processes + RUNNER_PROCESSES
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run(command: list[str], scratch: Path, limits: Limits, env: dict[str, str], slot: int = 0) -> Result:
    """Run ``command`` in the sandbox with ``scratch`` as its only writable folder."""
    warnings = []
    uid = SANDBOX_UID + slot
    scratch.mkdir(parents=True, exist_ok=True)
    os.chown(scratch, uid, uid)
    for path in scratch.rglob("*"):
        os.chown(path, uid, uid)
    cgroups = _cgroup(limits, uid)
    if cgroups is None:
        warnings.append("no cgroup could be created: memory is limited by address space (RLIMIT_AS) and "
                        "processes by RLIMIT_NPROC only")
    counters = [str(g) for g in cgroups or []]
    if bubblewrap():
        command = bubblewrap_args(scratch, uid, cgroups or []) + command
        counters = [str(CGROUPS_INSIDE / g.parent.name) for g in cgroups or []]
    else:
        warnings.append("bubblewrap is not available: the notebook ran with resource limits only, and could "
                        "read any file this user can (apt-get install bubblewrap)")
    env = {ENV_CGROUPS: ":".join(counters), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(scratch / WORK),
           "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"), "MPLBACKEND": "Agg",
           "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8", **env}
    start = time.monotonic()
    process = subprocess.Popen(command, cwd=scratch, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True, preexec_fn=lambda: _limit_self(limits, cgroups))
    timed_out = False
    try:
        log, _ = process.communicate(timeout=limits.notebook_timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(process.pid, signal.SIGKILL)
        log, _ = process.communicate()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        _remove_cgroups(cgroups or [])
    return Result(process.returncode, timed_out, time.monotonic() - start,
                  log.decode("utf-8", "replace")[-4000:], warnings)
