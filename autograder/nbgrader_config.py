# nbgrader's configuration for this course, the only one. It is loaded
# - by the course grader (python -m autograder), which sets CourseDirectory.root to its working folder
#   (.grading/ by default) whose `source` is a link to solutions/;
# - by nbgrader itself, Jupyter Lab's formgrader and the JupyterHub exchange, through the repository's
#   nbgrader_config.py, which maps the course directory onto solutions/, notebooks/ and .nbgrader/.
c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

import os  # noqa: E402

import nbgrader.api  # noqa: E402

from autograder.feedback import TEMPLATES, NameTestCells, ShortenTestErrors, markdown2html  # noqa: E402
from autograder.nbgrader_run import alembic_head  # noqa: E402

c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"

# A new gradebook records its schema revision; nbgrader asks an `alembic` process found on PATH for
# it, which fails when the virtual environment is not activated (and takes seconds): ask in-process.
nbgrader.api.get_alembic_version = alembic_head

# What a student sees in place of a solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Executing a submission: a per-cell limit so an infinite loop fails its cell instead of hanging
# the class. Hardening (memory, processes, network, sandbox) is the grader's job, not nbgrader's.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True
c.Execute.iopub_timeout = 10

# Students may not change the tests: autograde restores the locked cells from the gradebook.
c.Autograde.create_student = True

# Late submissions. A submission's time is its timestamp.txt (written by `nbgrader submit`, kept by
# `nbgrader collect`, read by the course grader from folders and zips); an assignment is due when
# its gradebook entry has a due date (`nbgrader db assignment add A --duedate "2025-03-14 23:59 UTC"`,
# formgrader's assignment page, or the course grader's --due). The penalty: per_day of the score
# for each day or part of a day late (past grace_minutes), at most the whole score.
c.AssignLatePenalties.plugin_class = "autograder.late.LatePenalty"
c.LatePenalty.per_day = 0.1
c.LatePenalty.grace_minutes = 0

# Feedback shows each test's verdict and message, but not the hidden tests' code; and nothing a
# student wrote runs when someone opens it: HTML in Markdown and in outputs is sanitized,
# JavaScript outputs are dropped (the grader keeps only text and image outputs to begin with).
# Its table of contents names each test by its exercise; its math is MathML made here, so the page
# loads nothing from the network (autograder/feedback.py says why).
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbconvert.preprocessors.sanitize import SanitizeHTML  # noqa: E402
from nbgrader.preprocessors import ClearHiddenTests, GetGrades  # noqa: E402

c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, ShortenTestErrors, NameTestCells, SanitizeHTML,
                                   CSSHTMLHeaderPreprocessor]
c.SanitizeHTML.enabled = True  # nbconvert's preprocessors do nothing unless enabled
# For the feedback's exporter only (formgrader's pages keep their own): nbgrader's templates first
# (its feedback/index.html.j2), then the course's feedback/ folder: the page (course.html.j2, which
# extends nbgrader's) and a mathjax macro that loads nothing.
c.GenerateFeedback.HTMLExporter.extra_template_basedirs = [
    os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions", "formgrader", "templates"), str(TEMPLATES)]
c.GenerateFeedback.HTMLExporter.template_file = "course.html.j2"
c.GenerateFeedback.HTMLExporter.filters = {"markdown2html": markdown2html}
