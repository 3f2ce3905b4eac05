"""Judge a sandboxed run, outside the sandbox: compare the recorded outputs with the reference's.

The kernel only recorded what the student's functions returned on the hidden inputs
(``autograder.checks.record_outputs``). Here, in the grader's own process, each graded test cell is
judged: it passes only if it ran without error *and* every hidden case it checks matches the
reference. A cell whose visible tests pass but some of whose groups of hidden cases fail earns
that share of its points (``_score_groups``); a failing cell gets an error output saying what
differed. nbgrader then scores the notebook from its outputs (``autograde --no-execute``), as it
would have after executing it.
"""
from __future__ import annotations

import ast
import copy
import io
import re
from pathlib import Path

import torch
from nbformat.v4 import new_output

from autograder.checks import UNSTORABLE, compare_case, grading_device, group_of, record_path, where_of
from autograder.outputs import error_output, message_output
from autograder.untrusted import Refused, read_bytes

HIDDEN_CHECK = re.compile(r"""check_against_reference\(\s*["']([^"']+)["']\s*,\s*["']([^"']+)["']""")
CELL_FRAME = re.compile(r"Cell In\[\d*\], line (\d+)")  # IPython's name for a frame in a notebook cell
ANSI = re.compile(r"\x1b\[[0-9;]*m")
MAX_RECORD_BYTES = 64 * 2**20


def _recorded_outputs(name: str, record_dir: Path) -> list:
    """The outputs the sandbox recorded for ``name``, as plain data; ValueError says what is wrong."""
    try:
        data = read_bytes(record_dir, record_path(record_dir, name).relative_to(record_dir), MAX_RECORD_BYTES)
    except FileNotFoundError:
        raise ValueError("the hidden tests did not run (the cell did not reach them)") from None
    except Refused as error:
        raise ValueError(f"the recorded outputs were not a plain file the grader reads ({error})") from None
    try:
        record = torch.load(io.BytesIO(data), weights_only=True)
    except Exception as error:  # a tampered file, or a result that is not plain data
        raise ValueError(f"the recorded outputs could not be read ({type(error).__name__})") from None
    outputs = record.get("outputs") if isinstance(record, dict) else None
    if not isinstance(outputs, list) or not all(
            isinstance(o, dict) and ("value" in o or isinstance(o.get("error"), str)) for o in outputs):
        raise ValueError("the recorded outputs are not in the grader's format")
    return outputs


def _judge_case(name: str, case: dict, output: dict | None, device: torch.device) -> str | None:
    where = where_of(name, case)
    if output is None:
        return f"{where}: no result was recorded (the run was cut short)"
    if "value" not in output:
        return output["error"] if output["error"].startswith(name) else f"{where}: {output['error']}"
    value = output["value"]
    if isinstance(value, dict) and isinstance(value.get(UNSTORABLE), str):
        return f"{where}: returned a {value[UNSTORABLE]}, not plain tensors or Python values"
    if isinstance(value, dict) and isinstance(value.get("__wrong_device__"), str):
        return (f"{where}: a result is on {value['__wrong_device__']} but the inputs were on {device.type}; "
                "create new tensors on the inputs' device")
    try:
        compare_case(value, case, name, device, check_device=False)
    except AssertionError as failure:
        return str(failure)
    except Exception as error:  # a recorded value of a shape compare was not written for
        return f"{where}: the recorded result could not be compared ({type(error).__name__})"
    return None


def judge_groups(name: str, record_dir: Path, cases: list[dict], device: torch.device) -> dict[str, str | None]:
    """{group of hidden cases: None if every case in it matches the reference, else the first failure}.

    ``device`` is where the grader ran the kernel (its own knowledge, never the record's word): it
    sets the tolerance."""
    groups: dict[str, str | None] = {group_of(case): None for case in cases}
    try:
        outputs = _recorded_outputs(name, record_dir)
    except ValueError as error:
        return {group: f"{name}: {error}" for group in groups}
    for i, case in enumerate(cases):
        if groups[group_of(case)] is None:
            groups[group_of(case)] = _judge_case(name, case, outputs[i] if i < len(outputs) else None, device)
    return groups


def judge_name(name: str, record_dir: Path, cases: list[dict], device: torch.device) -> str | None:
    """None if every hidden case of ``name`` matches the reference, else the failures, one per group."""
    failures = [f for f in judge_groups(name, record_dir, cases, device).values() if f]
    return "\n".join(failures) or None


def _finally_lines(source: str) -> set[int]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {line for node in ast.walk(tree) if isinstance(node, ast.Try)
            for statement in node.finalbody for line in range(statement.lineno, statement.end_lineno + 1)}


def failing_line(error: dict, source: str) -> str:
    """Where in the test cell ``error`` was raised: the line and the comments just above it, or
    only "in a hidden test" (their source stays hidden), or "" when the traceback does not say."""
    frame = CELL_FRAME.search(ANSI.sub("", "\n".join(error.get("traceback", []))))
    lines = source.splitlines()
    if frame is None or not 1 <= int(frame.group(1)) <= len(lines):
        return ""
    number = int(frame.group(1))
    if any(line.strip() == "### BEGIN HIDDEN TESTS" for line in lines[:number]):
        return "raised in a hidden test"
    if number in _finally_lines(source):  # Python blames the end of a `finally:` for what the `try:` raised
        return ""
    shown = [lines[number - 1]]
    for line in reversed(lines[:number - 1][-2:]):
        if not line.strip().startswith("#"):
            break
        shown.insert(0, line)
    return f"raised at line {number} of the test cell:\n" + "\n".join("    " + line.strip() for line in shown)


def has_error(cell) -> bool:
    return any(output.get("output_type") == "error" for output in cell.get("outputs", []))


def _score_groups(cell, groups: dict[tuple[str, str], str | None], points: float) -> str | None:
    """Put the hidden tests' verdict on ``cell``: nothing if every group passed, an error if none
    did, else partial credit (nbgrader scores a cell by the number it displays): the cell's points
    times the share of groups that passed. Returns what failed, or None."""
    failed = [f for f in groups.values() if f]
    if not failed:
        return None
    message = "\n".join(failed)
    passed = len(groups) - len(failed)
    if not passed:
        cell.outputs.insert(0, error_output("AssertionError", message))
        return message
    earned = round(points * passed / len(groups), 2)
    summary = (f"partial credit: {passed} of {len(groups)} groups of hidden cases passed, "
               f"{earned:g} of {points:g} points. What failed:\n{message}")
    cell.outputs[:0] = [message_output(summary),
                        new_output("execute_result", data={"text/plain": f"{earned:g}"}, execution_count=1)]
    return summary


def judge(notebook, assignment: str, record_dir: Path, expected: dict, tests: dict) -> dict[str, str | None]:
    """Annotate ``notebook``'s failing test cells in place; return {test grade_id: failure or None}.

    ``tests`` are the trusted test cells (grade_id -> cell, from solutions/): which hidden checks a
    cell runs is read from them, never from the executed notebook, which the sandbox could rewrite.
    A test cell missing from the notebook is put back, failed.
    """
    cells = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id"): c
             for c in notebook.cells if c.cell_type == "code"}
    device = grading_device()
    verdicts = {}
    for grade_id, trusted in tests.items():
        cell = cells.get(grade_id)
        if cell is None:
            cell = copy.deepcopy(trusted)
            cell.outputs, cell.execution_count = [], None
            notebook.cells.append(cell)
        cell.source = trusted.source
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                output["name"] = "stdout"  # nbgrader zeroes a cell that wrote to stderr: warnings must not
            if output.get("output_type") == "execute_result":
                # nbgrader reads a number here as the cell's score; a trusted test cell never ends on an
                # expression, so this came from the student's code (a call to the display hook)
                output["output_type"] = "display_data"
                output.pop("execution_count", None)
        if has_error(cell):  # failed on its own: a visible test, or the student's code raised
            index, error = next((i, o) for i, o in enumerate(cell.outputs) if o.get("output_type") == "error")
            where = failing_line(error, trusted.source)
            evalue = f"{error.get('evalue', '')}\n{where}".strip()
            failure = f"{error.get('ename')}: {evalue}"
            cell.outputs[index] = error_output(error.get("ename", "Error"), evalue)
        elif cell.get("execution_count") is None:
            failure = "this test cell was not run (the notebook was stopped before it)"
            cell.outputs.insert(0, error_output("AssertionError", failure))
        else:
            names = [name for a, name in HIDDEN_CHECK.findall(trusted.source) if a == assignment]
            groups = {(n, g): f for n in names
                      for g, f in judge_groups(n, record_dir, expected["cases"].get(n, []), device).items()}
            failure = _score_groups(cell, groups, float(trusted.metadata["nbgrader"]["points"]))
        verdicts[grade_id] = failure
    return verdicts
