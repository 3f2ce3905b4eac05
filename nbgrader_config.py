# nbgrader's configuration where nbgrader looks for it: `nbgrader ...` and `jupyter lab` (formgrader)
# started in this folder, and the JupyterHub exchange. It loads the course's one configuration,
# autograder/nbgrader_config.py, and makes this repository the course directory:
#
#   source   = solutions/            (the reference notebooks)
#   release  = notebooks/            (what `nbgrader release_assignment` hands out)
#   .nbgrader/                       (git-ignored) submitted/, autograded/, feedback/, gradebook.db
#
# COURSE_NBGRADER_DIR=path moves the working part (.nbgrader/) elsewhere, e.g. to a temporary
# course in the tests. Set the course id (below) and the exchange (c.Exchange.root) to your hub's:
# this file is read after the hub's global nbgrader configuration.
import os
import sys

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)
here = os.path.dirname(os.path.abspath(__file__))
if here not in sys.path:  # the course's modules, for an nbgrader that is not the virtual environment's
    sys.path.insert(0, here)
load_subconfig(os.path.join(here, "autograder", "nbgrader_config.py"))  # noqa: F821

work = os.path.join(here, os.environ.get("COURSE_NBGRADER_DIR", ".nbgrader"))
os.makedirs(work, exist_ok=True)  # the gradebook's folder: SQLite does not create it
c.CourseDirectory.root = here
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = os.path.join(work, "submitted")
c.CourseDirectory.autograded_directory = os.path.join(work, "autograded")
c.CourseDirectory.feedback_directory = os.path.join(work, "feedback")
c.CourseDirectory.db_url = f"sqlite:///{os.path.join(work, 'gradebook.db')}"
c.CourseDirectory.course_id = "ngrams-to-vit"
