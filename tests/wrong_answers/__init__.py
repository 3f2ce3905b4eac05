"""Plausible wrong answers, one module per assignment (``07_self_attention`` -> ``self_attention.py``).

Each module defines ``WRONG = {answer cell grade_id: wrong source}`` and
``TESTED_BY = {test cell grade_id: answer cell grade_id}``. Each wrong answer must fail its own
test cell, visible or hidden part, and cost nothing elsewhere.
"""
import importlib


def wrong_answers(assignment: str):
    """The module for ``NN_slug``, or None when the assignment has none yet."""
    slug = assignment.split("_", 1)[1]
    return importlib.import_module(f"wrong_answers.{slug}")
