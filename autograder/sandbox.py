"""Run untrusted code (a student's notebook) with the operating system's limits.

With bubblewrap (Debian package ``bubblewrap``) the command runs in new mount, PID, network, IPC
and UTS namespaces, as an unprivileged user of its own (a uid leased for this run alone, so two
graders on one machine never share one), and sees only: the system's /usr and /etc, the Python
installation and virtual environment, the support package, the few grader modules a kernel needs
to run and record (``SANDBOX_MODULES``, read-only), one scratch folder and a private /tmp (its
only writable places). It cannot see solutions/, the hidden cases, the gradebook, the expected
outputs or other students' work, and it has no network at all. Killing it kills every process it
started (they all live in its PID namespace).

On top of that, always: a wall-clock limit for the whole run, a memory limit (a cgroup when the
machine lets us create one, else an address-space rlimit), a process limit (a cgroup and an
rlimit), a file-size limit, no core dumps; as root, a size limit on the scratch folder
(``scratch_folder``). Without bubblewrap the command runs with the limits alone, and a warning
says what is not prevented.

With cgroups, the kernel and its runner each have a memory group of their own: the runner that
drives the kernel starts it in the groups that ``$COURSE_CGROUPS`` names, reads their counters to
tell which cell went over a limit, and stops that cell's kernel. A fork bomb or a memory bomb
cannot starve the runner or make the out-of-memory killer choose it, so it always ends the same
way; a flood of messages that swells the runner itself ends at ``RUNNER_MEMORY_BYTES``, flagged.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from autograder.course import REPO

UID_RANGE = range(60000, 64000)              # one leased per run: each run's processes are its own
CGROUP_V1 = Path("/sys/fs/cgroup")
CGROUPS_INSIDE = Path("/run/grader-cgroups")  # where the sandbox sees the kernel's cgroups
ENV_CGROUPS = "COURSE_CGROUPS"                # ":"-separated folders of the kernel's cgroups
RUNNER_PROCESSES = 32                         # the runner's threads, on top of the kernel's processes
RUNNER_MEMORY_BYTES = 1 << 30                 # the runner's own memory group
WORK = "work"                                 # the kernel's working folder, inside the scratch folder
# the grader's modules a sandboxed kernel imports (the runner and the recorder); not the hidden
# cases, the reference loader or anything that knows where the solutions are
SANDBOX_MODULES = ("__init__.py", "checks.py", "course.py", "outputs.py", "runner.py", "sandbox.py")


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
    runner_out_of_memory: bool = False


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
    grader = REPO / "autograder"
    readonly = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(),
                Path(os.path.realpath(sys.executable)).parent.parent, REPO / "coursekit"}
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
    for path in sorted(readonly | {scratch, grader}):
        for parent in _parents(path):  # bwrap would create these 0700: unreadable for the sandbox user
            if parent not in made and not any(parent == r or r in parent.parents for r in readonly):
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
    for path in sorted(readonly):
        args += ["--ro-bind", str(path), str(path)]
    args += ["--perms", "0755", "--dir", str(grader)]
    for module in SANDBOX_MODULES:
        args += ["--ro-bind", str(grader / module), str(grader / module)]
    for device in sorted(Path("/dev").glob("nvidia*")):  # the GPU, when there is one
        args += ["--dev-bind", str(device), str(device)]
    if cgroups:
        args += ["--perms", "0755", "--dir", str(CGROUPS_INSIDE)]
    for group in cgroups:  # only cgroup.procs is the sandbox user's to write: it may join, not loosen
        args += ["--bind", str(group), str(CGROUPS_INSIDE / group.parent.name)]
    # the sandbox sees its own scratch folder only; /tmp is its own too
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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o711)  # no sandbox user may list the others' folders
    path.mkdir(mode=0o700)
    mounted = os.geteuid() == 0 and _mount_tmpfs(path, limits.disk_bytes)
    (path / WORK).mkdir()
    mounted = mounted and _mount_tmpfs(path / WORK, limits.disk_bytes)
    try:
        yield [] if mounted else ["the scratch folder could not be a size-limited tmpfs (needs root): only "
                                  "each file's size is limited, not the space a notebook fills"]
    finally:
        _remove_scratch(path)


def _mount_tmpfs(path: Path, size: int) -> bool:
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def scratch_full(path: Path) -> bool:
    """Whether the notebook filled its size-limited working folder."""
    work = path / WORK
    if not _is_mount(work):
        return False
    usage = shutil.disk_usage(work)
    return usage.used >= 0.98 * usage.total


def _is_mount(folder: Path) -> bool:
    """A mount point, and not a link to one: the sandbox user owns the scratch folder and could put
    a link to any mount point where its working folder was (if that was no tmpfs)."""
    return not folder.is_symlink() and os.path.ismount(folder)


def _remove_scratch(path: Path) -> None:
    for folder in (path / WORK, path):
        if _is_mount(folder):
            subprocess.run(["umount", "--lazy", str(folder)], check=True)
    shutil.rmtree(path, ignore_errors=True)  # does not follow links


@dataclass
class Cgroups:
    kernel: list[Path]          # memory and pids: the kernel joins them itself
    runner: Path | None         # memory: the runner is put there before it starts

    def all(self) -> list[Path]:
        return self.kernel + ([self.runner] if self.runner else [])


def _cgroups(limits: Limits, uid: int) -> Cgroups | None:
    """cgroup v1 groups for one run, or None where we may not create them.

    The groups belong to root; the kernel's ``cgroup.procs`` to the sandbox user, so that the
    runner can put the kernel it starts in them."""
    name = f"course-grader-{uuid.uuid4().hex[:12]}"
    made = []
    try:
        for path, setting, value in ((CGROUP_V1 / "memory" / f"{name}-runner", "memory.limit_in_bytes",
                                      RUNNER_MEMORY_BYTES),
                                     (CGROUP_V1 / "memory" / name, "memory.limit_in_bytes", limits.memory_bytes),
                                     (CGROUP_V1 / "pids" / name, "pids.max", limits.processes)):
            path.mkdir()
            made.append(path)
            (path / setting).write_text(str(value))
        for group in made[1:]:
            os.chown(group / "cgroup.procs", uid, uid)
        return Cgroups(kernel=made[1:], runner=made[0])
    except OSError:
        _remove_cgroups(made)
        return None


def out_of_memory_kills(group: Path) -> int:
    """How many processes the memory limit of ``group`` has killed."""
    fields = dict(line.split() for line in (group / "memory.oom_control").read_text().splitlines())
    return int(fields.get("oom_kill", 0))


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


@contextlib.contextmanager
def leased_uid():
    """A uid from ``UID_RANGE`` that no other run on this machine holds (a lock file per uid,
    held for the run: two workers, or two graders such as two Slurm shards, never share one)."""
    folder = Path("/run/course-grader") if os.geteuid() == 0 else Path(tempfile.gettempdir()) / "course-grader"
    folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    for uid in UID_RANGE:
        fd = os.open(folder / f"uid-{uid}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield uid
        finally:
            os.close(fd)  # closing releases the lock
        return
    raise RuntimeError(f"every sandbox uid in {UID_RANGE} is in use")


def _limit_self(limits: Limits, cgroups: Cgroups | None) -> None:
    """Runs in the child between fork and exec: join the runner's group, or set the memory rlimit
    (the runner puts its kernel in the kernel's groups)."""
    if cgroups:
        (cgroups.runner / "cgroup.procs").write_text(str(os.getpid()))
    else:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    nproc = limits.processes + RUNNER_PROCESSES
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run(command: list[str], scratch: Path, limits: Limits, env: dict[str, str]) -> Result:
    """Run ``command`` in the sandbox with ``scratch`` as its only writable folder."""
    with leased_uid() as uid:
        return _run_as(uid, command, scratch, limits, env)


def _run_as(uid: int, command: list[str], scratch: Path, limits: Limits, env: dict[str, str]) -> Result:
    warnings = []
    scratch.mkdir(parents=True, exist_ok=True)
    for path in [scratch, *scratch.rglob("*")]:  # what the grader put there: inputs, the notebook
        os.chown(path, uid, uid)
    cgroups = _cgroups(limits, uid)
    if cgroups is None:
        warnings.append("no cgroup could be created: memory is limited by address space (RLIMIT_AS) and "
                        "processes by RLIMIT_NPROC only")
    counters = [str(g) for g in cgroups.kernel] if cgroups else []
    if bubblewrap():
        command = bubblewrap_args(scratch, uid, cgroups.kernel if cgroups else []) + command
        counters = [str(CGROUPS_INSIDE / g.parent.name) for g in cgroups.kernel] if cgroups else []
    else:
        warnings.append("bubblewrap is not available: the notebook ran with resource limits only, and could "
                        "read any file this user can (apt-get install bubblewrap)")
    env = {ENV_CGROUPS: ":".join(counters), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "HOME": str(scratch / WORK), "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"), "MPLBACKEND": "Agg",
           "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8",
           # this checkout's course code, also where the virtual environment's editable install points
           # elsewhere (a git worktree); and one thread per kernel: exercises run on small tensors,
           # and a second thread that spins while the other core is busy makes them many times slower
           "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **env}
    start = time.monotonic()
    process = subprocess.Popen(command, cwd=scratch, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True, preexec_fn=lambda: _limit_self(limits, cgroups))
    timed_out, runner_oom = False, False
    try:
        log = _read_bounded(process, limits.notebook_timeout)
        timed_out = log is None
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if cgroups:
            runner_oom = out_of_memory_kills(cgroups.runner) > 0
            _remove_cgroups(cgroups.all())
    return Result(process.returncode, timed_out, time.monotonic() - start,
                  (log or b"").decode("utf-8", "replace")[-4000:], warnings, runner_oom)


def _read_bounded(process: subprocess.Popen, timeout: float, keep: int = 64 * 1024) -> bytes | None:
    """The last ``keep`` bytes the process printed, read until it ends; None past ``timeout``
    (the process group is then killed). A sandbox that prints without end costs no memory."""
    deadline = time.monotonic() + timeout
    fd, tail = process.stdout.fileno(), b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return None
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:  # end of file: the process closed its output
                try:
                    process.wait(timeout=max(left, 1.0))
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                    return None
                return tail
            tail = (tail + chunk)[-keep:]
        elif process.poll() is not None:  # ended, though something it left holds the pipe open
            return tail
