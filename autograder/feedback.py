"""nbgrader preprocessors for the feedback students receive."""
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from autograder.outputs import error_output


class ShortenTestErrors(Preprocessor):
    """In test cells, replace an error's traceback by its message.

    The checks' messages say what was tested and what differed; the traceback would add only the
    lines around the failing call, hidden tests included.
    """

    enabled = Bool(True).tag(config=True)  # nbconvert's preprocessors are off unless enabled

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = error_output(output.get("ename", "Error"), output.get("evalue", ""))["traceback"]
        return cell, resources
