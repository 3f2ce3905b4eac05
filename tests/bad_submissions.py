"""A class of bad submissions for 07_self_attention, each with the score it honestly earns.

Every case is built from the release notebook as a student would hand it in, so the corpus follows
the assignment when it changes. ``CLASS[name] = (build, expected score, flags that must be
raised, a phrase the notes must contain)``; ``build(folder)`` writes the student's files into
``folder``, named ``name`` (which intake turns into the student's key, ``student_id(name)``).
Points: sdpa 3, causal_mask 1, mha 4, pe 2 (10 in all).

The attacks on the grader itself (borrowed records, leaked solutions, a FIFO, forged records,
links handed in, script in the feedback) run in a last cell, after the hidden checks recorded.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat

from autograder.course import source_notebook
from autograder.intake import student_id
from submissions import filled_release, solution_sources
from wrong_answers import wrong_answers

A = "07_self_attention"
NOTEBOOK = f"{A}.ipynb"


def write(folder: Path, notebook, name: str = NOTEBOOK) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / name)


def write_bytes(folder: Path, data: bytes, name: str = NOTEBOOK) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def with_answer(grade_id: str, source: str, solved: bool = True):
    return filled_release(A, {grade_id: source}, solved=solved)


def reference(grade_id: str) -> str:
    return solution_sources(A)[grade_id]


def cells_edited(edit):
    """The reference submission with ``edit(cells)`` applied to its list of cells."""
    def build(folder: Path):
        notebook = filled_release(A)
        notebook.cells = edit(notebook.cells)
        write(folder, notebook)
    return build


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def retype(cells, target: str):
    cell = next(c for c in cells if grade_id(c) == target)
    new = nbformat.v4.new_markdown_cell(cell.source)
    new.metadata = cell.metadata
    return [new if c is cell else c for c in cells]


def with_last_cell(source: str, solved: bool = False, markdown: bool = False):
    """A submission with one more cell at the end (after every hidden check has recorded)."""
    def build(folder: Path):
        notebook = filled_release(A, solved=solved)
        maker = nbformat.v4.new_markdown_cell if markdown else nbformat.v4.new_code_cell
        notebook.cells.append(maker(source))
        write(folder, notebook)
    return build


def with_cells(*cells, solved: bool = True):
    def build(folder: Path):
        notebook = filled_release(A, solved=solved)
        notebook.cells.extend(cells)
        write(folder, notebook)
    return build


def many_cells(folder: Path):
    notebook = filled_release(A)
    notebook.cells += [nbformat.v4.new_markdown_cell(f"note {i}") for i in range(100_000)]
    write(folder, notebook)


def deeply_nested_json(folder: Path):
    notebook = filled_release(A)
    notebook.cells[0].metadata["deep"] = "NESTING"
    text = nbformat.writes(notebook).replace('"NESTING"', "[" * 200_000 + "]" * 200_000)
    write_bytes(folder, text.encode())


def linked_notebook(folder: Path):
    """The notebook handed in is a link to the solutions (as rsync -a or a hub folder keeps it)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / NOTEBOOK).symlink_to(source_notebook(A))


def broken_nbgrader_metadata(folder: Path):
    notebook = filled_release(A)
    no_id = nbformat.v4.new_code_cell("x = 1")
    no_id.metadata["nbgrader"] = {"grade": True, "points": 5, "locked": False, "solution": False}
    empty_id = nbformat.v4.new_code_cell("y = 2")
    empty_id.metadata["nbgrader"] = {"grade_id": "", "schema_version": 1, "solution": True, "grade": False}
    notebook.cells += [no_id, empty_id]
    write(folder, notebook)


def old_format(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / NOTEBOOK).write_text(nbformat.writes(nbformat.convert(filled_release(A), 3), version=3))


# the answer-cell sources of the attacks and accidents
SDPA = reference("sdpa")
INFINITE_LOOP = SDPA.replace('    d_k = q.size(-1)', '    while True:\n        pass\n    d_k = q.size(-1)')
MEMORY_BOMB = SDPA + "\nhog = []\nwhile True:\n    hog.append(bytearray(50_000_000))\n"
FORK_BOMB = SDPA + "\nimport os\nwhile True:\n    os.fork()\n"
DISK_FILLER = SDPA + """
for i in range(1000):
    with open(f"filler{i}.bin", "wb") as f:
        f.write(bytes(50_000_000))
"""
LOOSEN_LIMITS = """
import os
for group in os.environ.get("COURSE_CGROUPS", "").split(":"):
    for name in ("memory.limit_in_bytes", "pids.max"):
        try:
            with open(os.path.join(group, name), "w") as f:
                f.write("max" if name == "pids.max" else str(2**40))
        except OSError:
            pass
""" + MEMORY_BOMB
SYS_EXIT = "import sys\nsys.exit(1)\n" + SDPA
OS_EXIT = "import os\nos._exit(0)\n" + reference("causal_mask")
KILL_KERNEL = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n" + reference("pe")
HUGE_OUTPUT = reference("causal_mask") + "\nprint('x' * 100_000_000)\n"
NOISY = SDPA.replace('    d_k = q.size(-1)', '    import sys, warnings\n'
                     '    warnings.warn("noisy but right")\n    print("debug " * 50, file=sys.stderr)\n'
                     '    d_k = q.size(-1)')
UNSCALED = wrong_answers(A).WRONG["sdpa"]
PATCH_TESTS = ("import torch\ntorch.testing.assert_close = lambda *args, **kwargs: None\n"
               "torch.allclose = lambda *args, **kwargs: True\n" + UNSCALED)
ALWAYS_EQUAL = '''
class Yes(torch.Tensor):
    def __eq__(self, other):
        return True
    __ne__ = lambda self, other: False

def scaled_dot_product_attention(q, k, v, mask=None):
    fake = torch.zeros(*q.shape[:-1], v.size(-1), device=q.device).as_subclass(Yes)
    return fake, torch.zeros(*q.shape[:-1], k.size(-2), device=q.device).as_subclass(Yes)
'''
GRADER_INTERNALS = '''
import autograder.checks
autograder.checks.check_against_reference = lambda *args, **kwargs: None
autograder.checks.compare = lambda *args, **kwargs: None
'''
READ_EXPECTED = '''
import glob, os, torch

def scaled_dot_product_attention(q, k, v, mask=None):
    places = [os.environ.get("COURSE_EXPECTED_DIR", ""), "/work", "/tmp", os.path.expanduser("~")]
    for place in places:
        for path in glob.glob(os.path.join(place, "**", "07_self_attention.pt"), recursive=True):
            data = torch.load(path, weights_only=True)
            for case in data["cases"]["scaled_dot_product_attention"]:
                if torch.equal(case["args"][0].to(q.device), q) and "expected" in case:
                    return tuple(t.to(q.device) for t in case["expected"])
    raise RuntimeError("found no expected outputs to copy")
'''

BORROW_RECORDS = """
import os
scratch = os.environ["COURSE_RECORD_DIR"]
os.rename(os.path.join(scratch, "records"), os.path.join(scratch, "mine"))
os.symlink(os.path.join(os.path.dirname(scratch), "good_full", "records"), os.path.join(scratch, "records"))
"""
LEAK_SOLUTIONS = """
import os, signal
from pathlib import Path
import autograder
scratch = Path(os.environ["COURSE_RECORD_DIR"])
solution = Path(autograder.__file__).resolve().parent.parent / "solutions" / "07_self_attention" / "07_self_attention.ipynb"
(scratch / "executed.ipynb").unlink()
(scratch / "executed.ipynb").symlink_to(solution)
os.kill(os.getppid(), signal.SIGKILL)  # the runner: it would write the notebook again
"""
FIFO = """
import os, signal
path = os.path.join(os.environ["COURSE_RECORD_DIR"], "executed.ipynb")
os.unlink(path)
os.mkfifo(path)
os.kill(os.getppid(), signal.SIGKILL)
"""
RECORD_NOT_DICTS = """
import os, torch
torch.save({"name": "causal_mask", "outputs": [1, "two", None]},
           os.path.join(os.environ["COURSE_RECORD_DIR"], "records", "causal_mask.pt"))
"""
DISPLAY_UPDATES = reference("causal_mask") + """
from IPython.display import display, update_display
for i in range(5000):
    display("x", display_id="same")
update_display("y" * 50_000, display_id="same")
"""
SCRIPT_MARKDOWN = """Answers below.
<script>window.pwned = "markdown script"</script>
<img src="missing.png" onerror="window.pwned = 'img onerror'">
[a link](javascript:window.pwned='markdown link')
"""
SCRIPT_OUTPUT = """
from IPython.display import HTML, Javascript, display
display(HTML("<script>window.pwned = 'html output'</script><b onmouseover=\\"window.pwned='hover'\\">bold</b>"))
display(Javascript("window.pwned = 'javascript output'"))
"""

SCORE_BY_DISPLAY_HOOK = UNSCALED + """
_unscaled = scaled_dot_product_attention

def scaled_dot_product_attention(q, k, v, mask=None):
    get_ipython().displayhook(3.0)  # an execute_result in the test cell: nbgrader reads it as a score
    return _unscaled(q, k, v, mask)
"""

CLASS = {
    # good submissions, graded in the same batch: the bad ones must not affect them
    "good_full": (lambda f: write(f, filled_release(A)), 10, [], ""),
    "good_blank": (lambda f: write(f, filled_release(A, solved=False)), 0, [], ""),
    "good_wrong_pe": (lambda f: write(f, with_answer("pe", wrong_answers(A).WRONG["pe"])), 8, [], ""),
    # files that are not a gradable notebook
    "corrupted_json": (lambda f: write_bytes(f, json.dumps(json.loads(nbformat.writes(filled_release(A))))[:5000].encode()),
                       0, ["unreadable"], "not valid JSON"),
    "empty_file": (lambda f: write_bytes(f, b""), 0, ["unreadable"], "empty"),
    "text_not_notebook": (lambda f: write_bytes(f, b"def scaled_dot_product_attention(): pass\n"),
                          0, ["unreadable"], "not a notebook"),
    "json_not_notebook": (lambda f: write_bytes(f, b'{"answer": 42}'), 0, ["unreadable"], "not a Jupyter notebook"),
    "python_file_only": (lambda f: write_bytes(f, SDPA.encode(), name="answers.py"), None, ["no notebook"], "answers.py"),
    "old_nbformat": (old_format, 10, [], "converted from notebook format 3"),
    # cells deleted, edited, duplicated, re-typed
    "deleted_test_cell": (cells_edited(lambda cells: [c for c in cells if grade_id(c) != "test_pe"]),
                          10, ["cells restored"], "test cell 'test_pe' was missing"),
    "edited_test_cell": (lambda f: write(f, filled_release(A, {"pe": wrong_answers(A).WRONG["pe"], "test_pe": "pass"})),
                         8, ["cells restored"], "test cell 'test_pe' had been edited"),
    "duplicated_test_cell": (cells_edited(lambda cells: cells + [c for c in cells if grade_id(c) == "test_sdpa"]),
                             10, ["cells restored"], "appeared twice"),
    "retyped_test_cell": (cells_edited(lambda cells: retype(cells, "test_mha")), 10, ["cells restored"],
                          "changed to markdown"),
    "deleted_answer_cell": (cells_edited(lambda cells: [c for c in cells if grade_id(c) != "causal_mask"]),
                            9, ["cells restored"], "answer cell 'causal_mask' was missing"),
    # code that breaks the run
    "syntax_error": (lambda f: write(f, with_answer("sdpa", SDPA.replace("def scaled", "def scaled(("))), 7, [], ""),
    "infinite_loop": (lambda f: write(f, with_answer("sdpa", INFINITE_LOOP)), 7, ["cell time limit"],
                      "cell 'test_sdpa' ran past its time limit"),
    # a bomb's cell is stopped when its kernel goes over a limit, and the rest is run without it; the
    # function it defined first is lost with it
    "memory_bomb": (lambda f: write(f, with_answer("sdpa", MEMORY_BOMB)), 7, ["memory limit"],
                    "cell 'sdpa' went over the memory limit"),
    "fork_bomb": (lambda f: write(f, with_answer("sdpa", FORK_BOMB)), 7, ["process limit"],
                  "tried to start more than 64 processes"),
    "disk_filler": (lambda f: write(f, with_answer("sdpa", DISK_FILLER)), 10, ["disk limit"],
                    "filled its 256 MiB scratch folder"),
    "loosens_limits": (lambda f: write(f, with_answer("sdpa", LOOSEN_LIMITS)), 7, ["memory limit"],
                       "cell 'sdpa' went over the memory limit"),
    "sys_exit": (lambda f: write(f, with_answer("sdpa", SYS_EXIT)), 7, [], ""),
    "os_exit": (lambda f: write(f, with_answer("causal_mask", OS_EXIT)), 9, ["kernel died"],
               "cell 'causal_mask' killed the kernel"),
    "kill_kernel": (lambda f: write(f, with_answer("pe", KILL_KERNEL)), 8, ["kernel died"],
                    "cell 'pe' killed the kernel"),
    "huge_output": (lambda f: write(f, with_answer("causal_mask", HUGE_OUTPUT)), 10, ["output limit"],
                    "cell 'causal_mask' printed more than the output limit"),
    "stderr_noise": (lambda f: write(f, with_answer("sdpa", NOISY)), 10, [], ""),
    # code that tries to pass without solving
    "patched_assert_close": (lambda f: write(f, with_answer("sdpa", PATCH_TESTS)), 7, [], ""),
    "always_equal": (lambda f: write(f, with_answer("sdpa", ALWAYS_EQUAL)), 7, [], ""),
    "grader_internals": (lambda f: write(f, with_answer("sdpa", GRADER_INTERNALS, solved=False)), 0, [], ""),
    "reads_expected_outputs": (lambda f: write(f, with_answer("sdpa", READ_EXPECTED)), 7, [], ""),
    "score_by_display_hook": (lambda f: write(f, with_answer("sdpa", SCORE_BY_DISPLAY_HOOK)), 7, [], ""),
    # attacks on the grader: what the kernel leaves behind is never trusted
    "borrows_records": (with_last_cell(BORROW_RECORDS), 0, [], ""),
    "leaks_solutions": (with_last_cell(LEAK_SOLUTIONS), 0, ["did not run"], "executed.ipynb"),
    "fifo_for_notebook": (with_last_cell(FIFO), 0, ["did not run"], "executed.ipynb"),
    "record_not_dicts": (with_last_cell(RECORD_NOT_DICTS, solved=True), 9, [], ""),
    "display_updates": (lambda f: write(f, with_answer("causal_mask", DISPLAY_UPDATES)), 10, ["output limit"],
                        "cell 'causal_mask' printed more than the output limit"),
    "script_in_feedback": (with_cells(nbformat.v4.new_markdown_cell(SCRIPT_MARKDOWN),
                                      nbformat.v4.new_code_cell(SCRIPT_OUTPUT)), 10, [], ""),
    # files that would cost the grader without end, or trip it
    "hundred_thousand_cells": (many_cells, 10, ["too many cells"], "only the first 2,000 were read"),
    "deeply_nested_json": (deeply_nested_json, 0, ["unreadable"], "nested too deeply"),
    "deeply_nested_code": (with_cells(nbformat.v4.new_code_cell("x = " + "[" * 200_000 + "]" * 200_000)), 10, [], ""),
    "broken_nbgrader_metadata": (broken_nbgrader_metadata, 10, [], ""),
    "linked_notebook": (linked_notebook, None, ["no notebook"], "a link"),
    "empty_folder": (lambda f: f.mkdir(parents=True), None, ["no notebook"], "no notebook in the submission"),
    # names in any script, and names that differ only where nbgrader ids cannot; a renamed notebook
    "José": (lambda f: write(f, filled_release(A), name="my copy (1).ipynb"), 10, [], "my copy (1).ipynb"),
    "Jos_": (lambda f: write(f, filled_release(A, solved=False)), 0, [], ""),
    "名前": (lambda f: write(f, filled_release(A, {"pe": wrong_answers(A).WRONG["pe"]})), 8, [], ""),
}


def build_class(folder: Path) -> dict[str, tuple]:
    """Write the class into ``folder``; return {student's key: (score, flags, phrase)}."""
    for student, (build, *_rest) in CLASS.items():
        build(folder / student)
    return {student_id(student): tuple(rest) for student, (_build, *rest) in CLASS.items()}
