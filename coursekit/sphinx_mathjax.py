"""Sphinx extension: serve MathJax from the built book instead of a CDN, so math renders offline.

The MathJax 3 files come from the ``sphinx-mathjax-offline`` package (pinned in requirements.txt).
We use the SVG output, which needs no web fonts, and copy only that one file.
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


def setup(app):
    _mathjax_source()  # fail early, not after a long build
    app.config.mathjax_path = f"mathjax/{MATHJAX_FILE}"
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
