"""The course's late-submission rule, as an nbgrader plugin (``AssignLatePenalties.plugin_class``).

nbgrader computes how late a submission is from the gradebook: the submission's time (the
``timestamp.txt`` that ``nbgrader submit`` writes and ``nbgrader collect`` keeps) against the
assignment's due date (``nbgrader db assignment add A --duedate ...``, formgrader's assignment
page, or the course grader's ``--due``). Without a due date nothing is late. This plugin turns the
lateness into points: ``per_day`` of the notebook's score for each day or part of a day past the
due date and the ``grace_minutes``, at most the whole score. Both are set in
``autograder/nbgrader_config.py``.
"""
from __future__ import annotations

import math

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float


class LatePenalty(LateSubmissionPlugin):
    per_day = Float(0.1, help="fraction of the score lost per day (or part of one) late").tag(config=True)
    grace_minutes = Float(0.0, help="minutes past the due date that are not yet late").tag(config=True)

    def days_late(self, total_seconds_late: float) -> int:
        return max(0, math.ceil((total_seconds_late - 60 * self.grace_minutes) / 86400))

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float:
        days = self.days_late(total_seconds_late)
        penalty = min(score, score * self.per_day * days)
        self.log.info("%s is %d day(s) late: penalty %g of %g points", student_id, days, penalty, score)
        return penalty
