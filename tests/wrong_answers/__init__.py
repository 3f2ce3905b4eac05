"""Plausible wrong answers, one module per assignment (``07_self_attention`` -> ``self_attention.py``).

Each module defines ``WRONG = {answer cell grade_id: wrong source}`` (the mistake other tests use),
``MORE_WRONG = {answer cell grade_id: [wrong sources]}`` (at least two more per answer),
``ALTERNATIVES = {answer cell grade_id: [correct sources written differently]}`` (loops instead of
vectorised code, other formulas, other dtypes or types the docstring allows) and
``TESTED_BY = {test cell grade_id: answer cell grade_id}``. Each wrong answer must lose points in
its own test cell, visible or hidden part, and cost nothing elsewhere; each alternative must keep
full marks (``tests/test_grading.py`` grades them all as one class).
"""
import importlib


def wrong_answers(assignment: str):
    """The module for ``NN_slug``, or None when the assignment has none yet."""
    slug = assignment.split("_", 1)[1]
    return importlib.import_module(f"wrong_answers.{slug}")
