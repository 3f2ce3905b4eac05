"""The feedback page's Markdown: code reads as the notebook wrote it, and stays inert."""
from nbconvert.preprocessors.sanitize import SanitizeHTML
from nbformat.v4 import new_markdown_cell, new_notebook

from autograder.feedback import markdown2html


def rendered(markdown: str) -> str:
    """What the feedback exporter does to a Markdown cell: nbconvert's sanitizer, then our filter."""
    nb, _ = SanitizeHTML(enabled=True).preprocess(new_notebook(cells=[new_markdown_cell(markdown)]), {})
    return markdown2html({}, nb.cells[0].source)


def test_special_tokens_in_code_are_escaped_once():
    html = rendered("Right-padded with `<pad>` = 0.\n\n```\nids = [<bos>, 5, <eos>]\n```")
    assert "<code>&lt;pad&gt;</code>" in html and "&amp;lt;" not in html
    assert "[&lt;bos&gt;, 5, &lt;eos&gt;]" in html


def test_html_a_student_writes_stays_text():
    html = rendered("`<script>alert(1)</script>` and <script>alert(2)</script> <img src=x onerror=alert(3)>")
    assert "<script" not in html and "<img" not in html  # all of it shown as text: &lt;script&gt;


def test_typewriter_tokens_in_display_math_become_mathml():
    html = rendered("$$\n\\text{input}_{b,1} = \\texttt{<bos>}\n$$")
    assert "<math" in html and 'class="tex"' not in html, "rendered as MathML, not left as its TeX source"
    assert "&lt;</mo>" in html and "&gt;</mo>" in html and "<script" not in html
