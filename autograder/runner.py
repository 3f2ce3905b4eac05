"""Execute one submission, inside the sandbox: ``python -m autograder.runner IN OUT [options]``.

Runs every cell in a fresh kernel (ZeroMQ over IPC: the sandbox has no network, not even loopback)
and writes the executed notebook to OUT after each cell, so that a run stopped from outside still
counts the cells it finished. Student code cannot stop the rest of the class from being graded, and
it cannot hide its own failures either:

- a cell that runs past ``--cell-timeout`` is interrupted and gets a TimeoutError output;
- a cell that kills the kernel (``os._exit``, a crash, the memory limit) gets an error output, and
  the notebook is run again from the top in a new kernel without that cell, so the cells after it
  are still graded (at most ``--max-restarts`` times);
- output beyond ``--max-output`` bytes in total is dropped, with a note in the cell.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbformat.v4 import new_output


class BoundedClient(NotebookClient):
    """An nbclient that keeps at most ``max_output`` bytes of output for the whole notebook."""

    def __init__(self, *args, max_output: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_output, self.output_bytes, self.truncated_cells = max_output, 0, set()

    def output(self, outs, msg, display_id, cell_index):
        size = len(str(msg.get("content", "")))
        if self.output_bytes + size > self.max_output:
            if cell_index not in self.truncated_cells:
                self.truncated_cells.add(cell_index)
                outs.append(new_output("stream", name="stderr",
                                       text=f"[grader] output beyond {self.max_output:,} bytes was dropped\n"))
            return None
        self.output_bytes += size
        return super().output(outs, msg, display_id, cell_index)


def _timed_out(cell) -> bool:
    # nbclient interrupts a cell at its time limit; the kernel reports the KeyboardInterrupt
    return any(o.get("ename") in ("KeyboardInterrupt", "TimeoutError") for o in cell.get("outputs", []))


def error_output(ename: str, evalue: str):
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def kill_strays() -> None:
    """Kill what a dead kernel left running (a fork bomb's children hold the process limit).

    In the sandbox's PID namespace the only processes are the sandbox's own: keep this runner,
    its parent and the namespace's init, kill the rest."""
    keep = {1, os.getpid(), os.getppid()}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in keep:
            try:
                os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


def save(notebook, path: str) -> None:
    tmp = f"{path}.tmp"
    nbformat.write(notebook, tmp)
    os.replace(tmp, path)


def execute(notebook, out: str, cell_timeout: int, max_output: int, max_restarts: int) -> None:
    skipped: dict[int, list] = {}  # cell index -> its outputs: killed the kernel or timed out; not run again
    for _attempt in range(max_restarts + 1):
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = list(skipped.get(index, [])), None
        km = AsyncKernelManager(kernel_name="python3", transport="ipc")
        client = BoundedClient(notebook, km=km, timeout=cell_timeout, allow_errors=True,
                               interrupt_on_timeout=True, record_timing=False, max_output=max_output,
                               error_on_timeout={"ename": "TimeoutError",
                                                 "evalue": f"the cell ran longer than {cell_timeout} s "
                                                           "and was stopped"})
        died_at = None
        with client.setup_kernel():
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type != "code" or index in skipped:
                    continue
                try:
                    client.execute_cell(cell, index)
                    if _timed_out(cell):
                        cell.outputs.append(error_output("TimeoutError", f"the cell ran longer than {cell_timeout} s "
                                                                          "and was stopped"))
                        skipped[index] = list(cell.outputs)
                except DeadKernelError:
                    died_at = index
                    break
                finally:
                    save(notebook, out)
        if died_at is None:
            return
        if os.environ.get("COURSE_RECORD_DIR"):  # only inside the grader's sandbox
            kill_strays()
        skipped[died_at] = [error_output("KernelDied", "the kernel died while running this cell (os._exit, a "
                                         "crash, or the memory limit); the notebook was run again without it")]
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
    args = parser.parse_args(argv)
    notebook = nbformat.read(args.notebook, as_version=4)
    execute(notebook, args.out, args.cell_timeout, args.max_output, args.max_restarts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
