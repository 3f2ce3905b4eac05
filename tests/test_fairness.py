"""Grading is fair: every plausible wrong answer loses points in its own test cell only, and every
correct alternative (loops, other formulas, other dtypes the docstring allows) keeps full marks.

One kernel per assignment runs the notebook as the grader restores it (the student's cells, the
trusted test cells with their hidden checks, comparing with the reference's outputs), answered with
the reference. Then, for each answer in ``tests/wrong_answers/``, it runs that answer in place of
the reference's, runs its own test cell and every test cell that calls a name the answer defines
(the only cells it can reach), records which of them fail, and puts the reference back. The real
grader's round trip (sandbox, records, nbgrader) is ``tests/test_grading.py``; the scores here are
the cells' pass or fail in the same notebook, so the two agree.
"""
from __future__ import annotations

import ast
import os

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.checks import ENV_EXPECTED_DIR
from autograder.course import assignments, release_notebook, source_notebook
from autograder.repair import nbgrader_meta, restore_cells
from submissions import filled_release, solution_sources
from wrong_answers import wrong_answers


def defined_names(source: str) -> set[str]:
    return {node.name for node in ast.parse(source).body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def failed(cell) -> bool:
    return any(output.get("output_type") == "error" for output in cell.outputs)


@pytest.mark.parametrize("assignment", assignments())
def test_wrong_answers_lose_their_own_points_and_alternatives_none(assignment, expected_dir, tmp_path):
    source = nbformat.read(source_notebook(assignment), as_version=4)
    release = nbformat.read(release_notebook(assignment), as_version=4)
    notebook, _ = restore_cells(filled_release(assignment), source, release)
    answers = {nbgrader_meta(c)["grade_id"]: i for i, c in enumerate(notebook.cells)
               if nbgrader_meta(c).get("solution")}
    tests = {nbgrader_meta(c)["grade_id"]: i for i, c in enumerate(notebook.cells) if nbgrader_meta(c).get("grade")}
    mutants = wrong_answers(assignment)
    own_test = {answer: test for test, answer in mutants.TESTED_BY.items()}
    reference = solution_sources(assignment)
    variants = []
    for answer in own_test:
        wrong = [mutants.WRONG[answer], *mutants.MORE_WRONG.get(answer, [])]
        right = mutants.ALTERNATIVES.get(answer, [])
        assert len(wrong) >= 3 and len(right) >= 1, f"{answer}: at least 3 wrong answers and 1 alternative"
        variants += [(answer, f"wrong {i}", src, True) for i, src in enumerate(wrong)]
        variants += [(answer, f"alternative {i}", src, False) for i, src in enumerate(right)]

    client = NotebookClient(notebook, timeout=120, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    unfair = {}
    assert os.environ[ENV_EXPECTED_DIR] == str(expected_dir)  # the kernel compares with the reference's outputs
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                client.execute_cell(cell, index)
        baseline = [t for t, i in tests.items() if failed(notebook.cells[i])]
        assert not baseline, f"the reference fails {baseline}"

        def run(index: int, code: str):
            cell = notebook.cells[index]
            cell.source = code
            client.execute_cell(cell, index)
            return cell

        for answer, label, code, wrong in variants:
            run(answers[answer], code)
            reached = {own_test[answer]} | {t for t, i in tests.items()
                                            if defined_names(code) & defined_names_used(notebook.cells[i].source)}
            lost = sorted(t for t in reached if failed(run(tests[t], notebook.cells[tests[t]].source)))
            if lost != ([own_test[answer]] if wrong else []):
                unfair[f"{answer}, {label}"] = lost
            run(answers[answer], reference[answer])
    assert not unfair, ("a wrong answer must fail its own test cell only, an alternative none "
                        f"(answer, variant: the test cells that failed): {unfair}")


def defined_names_used(source: str) -> set[str]:
    return {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}
