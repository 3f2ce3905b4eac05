# nbgrader's configuration for this course. The autograder (python -m autograder) passes this file
# with --JupyterApp.config_file and sets CourseDirectory.root to a working folder whose `source`
# is a link to solutions/; release, submitted, autograded and feedback live in that folder.
c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"

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

# Feedback shows each test's verdict and message, but not the hidden tests' code; and nothing a
# student wrote runs when someone opens it: HTML in Markdown and in outputs is sanitized,
# JavaScript outputs are dropped (the grader keeps only text and image outputs to begin with).
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbconvert.preprocessors.sanitize import SanitizeHTML  # noqa: E402
from nbgrader.preprocessors import ClearHiddenTests, GetGrades  # noqa: E402

from autograder.feedback import ShortenTestErrors  # noqa: E402

c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, ShortenTestErrors, SanitizeHTML,
                                   CSSHTMLHeaderPreprocessor]
c.SanitizeHTML.enabled = True  # nbconvert's preprocessors do nothing unless enabled
