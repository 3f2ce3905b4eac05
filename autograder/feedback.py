"""What the feedback pages students receive are made of: nbgrader preprocessors, a Markdown filter
and templates (``autograder/templates/feedback/``), set up in ``autograder/nbgrader_config.py``.

- Test cells' errors are shortened to their messages (``ShortenTestErrors``).
- The table of contents names each test cell by its exercise ("2 · The causal mask:
  causal_mask"), taken from the heading above it and the function it tests (``NameTestCells``).
- Math is pre-rendered as MathML (``markdown2html``, with docutils' LaTeX-to-MathML converter),
  which browsers draw themselves: the page loads no script (nbgrader's template loads MathJax from
  a CDN, so offline students saw raw ``$...$``), works wherever the file is copied (the exchange,
  an LMS, an e-mail) and stays small (no 2 MB MathJax in each page). A formula the converter cannot
  read is shown as its TeX source, in ``<code>``.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

from docutils.utils.math.latex2mathml import tex2mathml
from jinja2 import pass_context
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from autograder.outputs import error_output

TEMPLATES = Path(__file__).resolve().parent / "templates"
TOC_KEY = "course_toc"  # the cell metadata the feedback template's table of contents reads

HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*(?:\(\s*\d+(?:\.\d+)?\s+points?\s*\))?\s*$", re.MULTILINE)
DEFINED = re.compile(r"^(?:def|class)\s+([A-Za-z_]\w*)", re.MULTILINE)
SIZED = re.compile(r"\\[Bb]igg?[lrm]?(?![A-Za-z])")  # \big( ... \Bigr): sizes the converter lacks
DOTS = re.compile(r"\\dots(?![A-Za-z])")
TEXTTT = re.compile(r"\\texttt(?![A-Za-z])")  # the converter knows \mathtt, the same typewriter letters, only


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


class ShortenTestErrors(Preprocessor):
    """In test cells, replace an error's traceback by its message.

    The checks' messages say what was tested and what differed; the traceback would add only the
    lines around the failing call, hidden tests included.
    """

    enabled = Bool(True).tag(config=True)  # nbconvert's preprocessors are off unless enabled

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and nbgrader_meta(cell).get("grade"):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = error_output(output.get("ename", "Error"), output.get("evalue", ""))["traceback"]
        return cell, resources


class NameTestCells(Preprocessor):
    """Each test cell's entry in the table of contents: the exercise's heading (without its points)
    and the functions defined in the answer cell above it, in place of nbgrader's "Test cell"."""

    enabled = Bool(True).tag(config=True)

    def preprocess(self, nb, resources):
        title, defined = "", []
        for cell in nb.cells:
            meta = nbgrader_meta(cell)
            if cell.cell_type == "markdown":
                heading = HEADING.search(cell.source)
                if heading and not meta.get("grade"):
                    title, defined = heading["title"], []
            elif meta.get("solution"):
                defined += DEFINED.findall(cell.source)
                if meta.get("grade_id"):  # an answer cell: named by what it defines, for its comment's entry
                    cell.metadata[TOC_KEY] = ", ".join(DEFINED.findall(cell.source))
            elif meta.get("grade") and cell.cell_type == "code":
                name = ": ".join(part for part in (title, ", ".join(defined)) if part)
                cell.metadata[TOC_KEY] = name or meta.get("grade_id", "")
        return nb, resources


def mathml(tex: str, block: bool) -> str:
    """``tex`` as MathML, or, where the converter fails, as its source in ``<code>``. The TeX may
    hold entities (the sanitizer escapes ``<`` in Markdown); the MathML escapes all text it holds."""
    tex = html.unescape(tex)
    try:
        tex_for_converter = TEXTTT.sub(r"\\mathtt", DOTS.sub(r"\\ldots", SIZED.sub("", tex)))
        return tex2mathml(tex_for_converter.strip(), as_block=block)
    except Exception:  # docutils' MathError, or any other failure on a formula a student wrote
        delimiter = "$$" if block else "$"
        return f'<code class="tex">{html.escape(delimiter + tex + delimiter)}</code>'


class MathMLRenderer(IPythonRenderer):
    # The sanitizer has already escaped "<" in the Markdown, and code escapes its text again: undo the
    # first, or `<pad>` reads "&lt;pad&gt;". The text is escaped once, by the code renderers.
    def codespan(self, text: str) -> str:
        return super().codespan(html.unescape(text))

    def block_code(self, code: str, info: str | None = None) -> str:
        return super().block_code(html.unescape(code), info)

    def block_math(self, body: str) -> str:
        return mathml(body, True)

    def inline_math(self, body: str) -> str:
        return mathml(body, False)

    def latex_environment(self, name: str, body: str) -> str:
        return mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", True)


@pass_context
def markdown2html(context, source: str) -> str:
    """nbconvert's ``markdown2html`` filter, with math as MathML (see the module docstring)."""
    cell = context.get("cell", {})
    renderer = MathMLRenderer(escape=False, attachments=cell.get("attachments", {}), anchor_link_text="¶")
    return MarkdownWithMath(renderer=renderer).render(source)
