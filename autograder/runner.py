"""Execute one submission, inside the sandbox: ``python -m autograder.runner IN OUT [options]``.

Runs every cell in a fresh kernel (ZeroMQ over IPC: the sandbox has no network, not even loopback),
working in ``--workdir``, and writes the executed notebook to OUT after each cell, so that a run
stopped from outside still counts the cells it finished. Student code cannot stop the rest of the class from being graded, and
it cannot hide its own failures either:

- a cell that runs past ``--cell-timeout`` is interrupted and gets a TimeoutError output;
- a cell that kills the kernel (``os._exit``, a crash, a signal) gets an error output, and the
  notebook is run again from the top in a new kernel without that cell, so the cells after it are
  still graded (at most ``--max-restarts`` times);
- output beyond ``--max-output`` bytes in total is dropped, with a note in the cell;
- the kernel, and only the kernel, is held to ``--max-processes`` and the memory limit: in the
  cgroups that ``$COURSE_CGROUPS`` names where the grader made them (it then sees their counters:
  a cell that went over a limit gets a ResourceLimit error, its kernel is stopped, and the
  notebook is run again without it), else by an rlimit on its processes.
"""
from __future__ import annotations

import argparse
import os
import resource
import signal
import sys
import tempfile
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbformat.v4 import new_output

from autograder.outputs import error_output
from autograder.sandbox import ENV_CGROUPS, kill_members


class BoundedClient(NotebookClient):
    """An nbclient that keeps at most ``max_output`` bytes of output for the whole notebook.

    Every way a kernel adds to the notebook counts: new outputs, and display updates, which
    rewrite every earlier output with the same display id (one small update can multiply into
    many). Widget state is not kept at all: grading needs none of it."""

    def __init__(self, *args, max_output: int, **kwargs):
        super().__init__(*args, store_widget_state=False, **kwargs)
        self.max_output, self.output_bytes, self.truncated_cells = max_output, 0, set()

    def _within_budget(self, size: int, outs, cell_index: int) -> bool:
        if self.output_bytes + size > self.max_output:
            if cell_index not in self.truncated_cells:
                self.truncated_cells.add(cell_index)
                outs.append(new_output("stream", name="stderr", text=OUTPUT_LIMIT_NOTE.format(self.max_output)))
            return False
        self.output_bytes += size
        return True

    def output(self, outs, msg, display_id, cell_index):
        if not self._within_budget(len(str(msg.get("content", ""))), outs, cell_index):
            return None
        return super().output(outs, msg, display_id, cell_index)

    def _update_display_id(self, display_id, msg):
        targets = sum(len(indices) for indices in self._display_id_map.get(display_id, {}).values())
        cell_index = next(iter(self._display_id_map.get(display_id, {})), None)
        if cell_index is None:
            return None
        outs = self.nb.cells[cell_index].outputs
        if not self._within_budget(targets * len(str(msg.get("content", ""))), outs, cell_index):
            return None
        return super()._update_display_id(display_id, msg)


OUTPUT_LIMIT_NOTE = "[grader] output beyond {:,} bytes was dropped\n"


def _timed_out(cell) -> bool:
    # nbclient interrupts a cell at its time limit; the kernel reports the KeyboardInterrupt
    return any(o.get("ename") in ("KeyboardInterrupt", "TimeoutError") for o in cell.get("outputs", []))


class KernelLimits:
    """Where the kernel's limits live, how to put a new kernel under them, and how to tell it went over."""

    def __init__(self, max_processes: int):
        self.max_processes = max_processes
        self.cgroups = [Path(p) for p in os.environ.get(ENV_CGROUPS, "").split(":") if p]

    def enter(self) -> None:
        """Runs in the new kernel's process before it starts: join the cgroups, or take the rlimit."""
        for group in self.cgroups:
            (group / "cgroup.procs").write_text(str(os.getpid()))
        if not self.cgroups:
            resource.setrlimit(resource.RLIMIT_NPROC, (self.max_processes, self.max_processes))

    def breaches(self) -> dict[str, int]:
        """How many times so far each limit has refused the kernel (memory: a process was killed)."""
        counts = {}
        for group in self.cgroups:
            for name, counter, key in (("memory limit", "memory.oom_control", "oom_kill"),
                                       ("process limit", "pids.events", "max")):
                if (group / counter).exists():
                    fields = dict(line.split() for line in (group / counter).read_text().splitlines())
                    counts[name] = int(fields.get(key, 0))
        return counts

    def memory_bytes(self) -> int | None:
        for group in self.cgroups:
            if (group / "memory.limit_in_bytes").exists():
                return int((group / "memory.limit_in_bytes").read_text())
        return None

    def kill(self, kernel_pgid: int | None) -> None:
        """Stop the kernel and whatever it started (a fork bomb's children hold the process limit)."""
        if kernel_pgid:
            try:
                os.killpg(kernel_pgid, signal.SIGKILL)
            except OSError:
                pass
        for _ in range(100):  # a bomb forks while we kill; its cgroup caps how many there are
            if kill_members(self.cgroups):
                return


def save(notebook, path: str) -> None:
    tmp = f"{path}.tmp"
    nbformat.write(notebook, tmp)
    os.replace(tmp, path)


# what a ResourceLimit error says of each limit; the grader finds them there to flag the submission
LIMIT_PHRASES = {"memory limit": "went over the memory limit", "process limit": "tried to start more than"}


def _limit_reason(breached: list[str], limits: KernelLimits) -> str:
    memory = limits.memory_bytes()
    what = {"memory limit": LIMIT_PHRASES["memory limit"] + (f" ({memory / 2**30:.3g} GiB)" if memory else ""),
            "process limit": f"{LIMIT_PHRASES['process limit']} {limits.max_processes} processes"}
    return (f"the cell {' and '.join(what[b] for b in breached)}; its kernel was stopped and the notebook "
            "was run again without it")


def execute(notebook, out: str, cell_timeout: int, max_output: int, max_restarts: int,
            limits: KernelLimits, workdir: str) -> None:
    skipped: dict[int, list] = {}  # cell index -> its outputs: stopped the kernel or timed out; not run again
    timeout_message = f"the cell ran longer than {cell_timeout} s and was stopped"
    for _attempt in range(max_restarts + 1):
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = list(skipped.get(index, [])), None
        # ZeroMQ over Unix sockets, named by an absolute path because the kernel works in another folder
        # than the runner, and a short one because such names have at most 107 bytes
        km = AsyncKernelManager(kernel_name="python3", transport="ipc",
                                ip=os.path.join(tempfile.gettempdir(), f"kernel-{os.getpid()}-ipc"))
        client = BoundedClient(notebook, km=km, timeout=cell_timeout, allow_errors=True,
                               interrupt_on_timeout=True, record_timing=False, max_output=max_output,
                               resources={"metadata": {"path": workdir}},
                               error_on_timeout={"ename": "TimeoutError", "evalue": timeout_message})
        stopped_at = stop_output = None
        with client.setup_kernel(preexec_fn=limits.enter):
            kernel_pgid = km.provisioner.pgid
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type != "code" or index in skipped:
                    continue
                before = limits.breaches()
                try:
                    client.execute_cell(cell, index)
                    if _timed_out(cell):
                        cell.outputs.append(error_output("TimeoutError", timeout_message))
                        skipped[index] = list(cell.outputs)
                except DeadKernelError:
                    stopped_at = index
                    stop_output = error_output("KernelDied", "the kernel died while running this cell (os._exit, "
                                               "a crash, or a signal); the notebook was run again without it")
                breached = [name for name, count in limits.breaches().items() if count > before.get(name, 0)]
                if breached:
                    stopped_at, stop_output = index, error_output("ResourceLimit", _limit_reason(breached, limits))
                save(notebook, out)
                if stopped_at is not None:
                    limits.kill(kernel_pgid)
                    break
        if stopped_at is None:
            return
        skipped[stopped_at] = [stop_output]
    for index, outputs in skipped.items():  # out of restarts: report, and leave the rest unrun
        notebook.cells[index].outputs = outputs
    save(notebook, out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("notebook")
    parser.add_argument("out")
    parser.add_argument("--cell-timeout", type=int, default=60)
    parser.add_argument("--max-output", type=int, default=2_000_000)
    parser.add_argument("--max-restarts", type=int, default=3)
    parser.add_argument("--max-processes", type=int, default=256)
    parser.add_argument("--workdir", default=".", help="the kernel's working folder")
    args = parser.parse_args(argv)
    notebook = nbformat.read(args.notebook, as_version=4)
    execute(notebook, args.out, args.cell_timeout, args.max_output, args.max_restarts,
            KernelLimits(args.max_processes), args.workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
