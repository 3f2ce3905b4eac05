"""Sphinx extension: a book that works offline, and is light and well referenced.

- MathJax is served from the built book instead of a CDN. The files come from the
  ``sphinx-mathjax-offline`` package (pinned in requirements.txt); we use the SVG output, which
  needs no web fonts, and copy only that one file.
- Thebe (live code cells backed by a remote Binder kernel, loaded from a CDN) is dropped: Jupyter
  Book 1 adds its scripts to every page, twice, even with Thebe turned off. The course's demos
  run without a kernel instead (coursekit.widgets).
- No source maps: the themes ship ``.map`` files (megabytes) that only a browser's developer tools read.
- The figures that cells draw (``_images/*.png``) become palette PNGs of 256 colours, as the demos' frames are
  (``coursekit.widgets.figure_to_png``): a chapter page, with its images, stays under 2 MB.
- Each chapter (a MyST Markdown notebook) is offered as ``.ipynb`` by the page's download button, without
  outputs, ready to run: ``_sources/book/NN_slug.ipynb``.
- Figures and tables numbered by chapter: "Fig. 7.3" is the third figure of chapter 07 (``book/07_slug``), whatever
  the chapters before it hold, so adding a chapter renumbers nothing else.
- Numbered tables: a cell whose output is a table takes the cell metadata ``mystnb: figure: {name: tab-..., caption:
  ...}``, like a figure; a name that starts with ``tab-`` makes it a table, numbered "Table N" (caption above it)
  and referred to with ``{numref}``.
- One style sheet, ``coursekit/static/course.css``: nothing wider than the text column (tables and long equations
  scroll in their own box, code wraps), so a 400 px phone never scrolls a page sideways.
- Citations in author-year form with round brackets, "Vaswani et al. (2017)" and "(Vaswani et al., 2017)":
  ``bibtex_reference_style: author_year_round`` (sphinxcontrib-bibtex).
"""
import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from docutils import nodes
from sphinx.transforms import SphinxTransform
from sphinx.util.fileutil import copy_asset_file
from sphinx.writers.html5 import HTML5Translator

MATHJAX_FILE = "tex-svg.js"


def _mathjax_source() -> str:
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or spec.origin is None:
        raise RuntimeError("sphinx-mathjax-offline is not installed (see requirements.txt)")
    return os.path.join(os.path.dirname(spec.origin), "static", "mathjax", MATHJAX_FILE)


def _copy_mathjax(app, exc):
    if exc is None:
        target = os.path.join(app.outdir, "_static", "mathjax")
        os.makedirs(target, exist_ok=True)
        copy_asset_file(_mathjax_source(), target)


def _is_thebe(script) -> bool:
    body = getattr(script, "attributes", {}).get("body", "")
    return "thebe" in str(script).lower() or "THEBE_JS_URL" in body


def _drop_thebe(app, pagename, templatename, context, doctree):
    if "script_files" in context:
        context["script_files"] = [s for s in context["script_files"] if not _is_thebe(s)]


def _drop_source_maps(app, exc):
    if exc is None and app.builder.format == "html":
        for source_map in Path(app.outdir, "_static").rglob("*.map"):
            source_map.unlink()


def _palette_images(app, exc):
    """Full-colour PNGs as 256-colour palette PNGs (median cut, no dithering), where that is smaller."""
    if exc is not None or app.builder.format != "html":
        return
    import io

    from PIL import Image

    for path in Path(app.outdir, "_images").glob("*.png"):
        with Image.open(path) as image:
            if image.mode == "P":
                continue
            rgba = image.convert("RGBA")
        flat = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
        out = io.BytesIO()
        flat.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            out, format="PNG", optimize=True)
        if out.tell() < path.stat().st_size:
            path.write_bytes(out.getvalue())


def _offer_notebook(app, pagename, templatename, context, doctree):
    """A chapter written as a MyST Markdown notebook is offered as .ipynb, without outputs (the theme does it only
    when a launch button is configured). Runs before the theme builds its download button (priority 501)."""
    source = Path(app.env.doc2path(pagename))
    if doctree is None or source.suffix != ".md":
        return
    text = source.read_text(encoding="utf-8")
    if "```{code-cell}" not in text:
        return
    import nbformat
    from myst_nb.core.read import read_myst_markdown_notebook

    notebook = read_myst_markdown_notebook(text, path=source)
    target = Path(app.outdir, "_sources", pagename + ".ipynb")
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(target))
    context["ipynb_source"] = pagename + ".ipynb"


class table_figure(nodes.figure):
    """A figure that holds a table (a cell's output): numbered with the tables, captioned above."""


class _NumberTables(SphinxTransform):
    """myst-nb wraps a cell's output in a figure when the cell has ``mystnb: figure`` metadata; a ``tab-`` name makes
    it a table. Runs before Sphinx collects the labels and numbers (SphinxDomains, priority 850)."""

    default_priority = 800

    def apply(self, **kwargs):
        for figure in list(self.document.findall(nodes.figure)):
            if type(figure) is nodes.figure and any(name.startswith("tab-") for name in figure["names"]):
                figure.__class__ = table_figure  # in place: the document's ids still point at it
                figure["classes"].append("ck-table")
                for caption in [child for child in figure.children if isinstance(child, nodes.caption)]:
                    figure.remove(caption)
                    figure.insert(0, caption)


def _number_by_chapter(app, env):
    """Sphinx numbers figures across the whole book (there are no section numbers); renumber them within each
    chapter, after its number. Runs after the toctree collector has assigned the numbers (env-get-updated, 500)."""
    for docname, by_type in env.toc_fignumbers.items():
        chapter = re.match(r"book/(\d+)_", docname)
        for numbers in by_type.values():
            for k, figure_id in enumerate(sorted(numbers, key=numbers.get), start=1):
                numbers[figure_id] = (int(chapter.group(1)), k) if chapter else (k,)
    return []


def _register_reference_style():
    import sphinxcontrib.bibtex.plugin
    from sphinxcontrib.bibtex.style.referencing import BracketStyle
    from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle

    def round_brackets():
        return BracketStyle(left="(", right=")")

    @dataclass
    class AuthorYearRound(AuthorYearReferenceStyle):
        bracket_parenthetical: BracketStyle = field(default_factory=round_brackets)
        bracket_textual: BracketStyle = field(default_factory=round_brackets)
        bracket_author: BracketStyle = field(default_factory=round_brackets)
        bracket_label: BracketStyle = field(default_factory=round_brackets)
        bracket_year: BracketStyle = field(default_factory=round_brackets)

    sphinxcontrib.bibtex.plugin.register_plugin(
        "sphinxcontrib.bibtex.style.referencing", "author_year_round", AuthorYearRound, force=True)


STATIC = Path(__file__).resolve().parent / "static"


def _add_static(app):
    app.config.html_static_path.append(str(STATIC))


def setup(app):
    _mathjax_source()  # fail early, not after a long build
    app.connect("builder-inited", _add_static)
    app.add_css_file("course.css")
    app.config.mathjax_path = f"mathjax/{MATHJAX_FILE}"
    app.connect("build-finished", _copy_mathjax)
    app.connect("build-finished", _drop_source_maps)
    app.connect("build-finished", _palette_images)
    app.connect("html-page-context", _drop_thebe, priority=900)
    app.connect("html-page-context", _offer_notebook, priority=400)
    app.add_enumerable_node(table_figure, "table",
                            html=(HTML5Translator.visit_figure, HTML5Translator.depart_figure))
    app.add_transform(_NumberTables)
    app.connect("env-get-updated", _number_by_chapter, priority=900)
    _register_reference_style()
    return {"parallel_read_safe": True, "parallel_write_safe": True}
