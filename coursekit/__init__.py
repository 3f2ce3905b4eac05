"""Support code shared by the book, the exercise notebooks and the grader.

Nothing in here is an exercise: graded functions live only in ``solutions/``.
"""
from coursekit.device import get_device, seed_everything

__all__ = ["get_device", "seed_everything"]
