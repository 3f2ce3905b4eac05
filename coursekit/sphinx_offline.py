"""Sphinx extension: a book that works offline.

- MathJax is served from the built book instead of a CDN. The files come from the
  ``sphinx-mathjax-offline`` package (pinned in requirements.txt); we use the SVG output, which
  needs no web fonts, and copy only that one file.
- Thebe (live code cells backed by a remote Binder kernel, loaded from a CDN) is dropped: Jupyter
  Book 1 adds its scripts to every page, twice, even with Thebe turned off. The course's demos
  run without a kernel instead (coursekit.widgets).
"""
import importlib.util
import os

from sphinx.util.fileutil import copy_asset_file

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


def setup(app):
    _mathjax_source()  # fail early, not after a long build
    app.config.mathjax_path = f"mathjax/{MATHJAX_FILE}"
    app.connect("build-finished", _copy_mathjax)
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
