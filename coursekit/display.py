"""How the book shows figures and tables: one style for every chapter."""
from __future__ import annotations

import matplotlib.pyplot as plt
from IPython.display import HTML

BOOK_STYLE = {"figure.dpi": 100, "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8,
              "ytick.labelsize": 8, "legend.fontsize": 8}


def use_book_style() -> None:
    """Matplotlib settings for figures at most 7 inches wide: the width of the book's page."""
    plt.rcParams.update(BOOK_STYLE)


def html_table(header, rows, align=None) -> HTML:
    """A small HTML table (a notebook's Markdown output has no tables); numbers right-aligned.

    ``align``: one of "left"/"right" per column; by default the first column left, the rest right.
    """
    align = align or ["left"] + ["right"] * (len(header) - 1)
    head = "".join(f'<th style="text-align:{a}">{h}</th>' for h, a in zip(header, align))
    cell = '<td style="text-align:{}{}">{}</td>'
    body = "".join("<tr>" + "".join(cell.format(a, ";white-space:nowrap" if a == "right" else "", c)
                                    for c, a in zip(row, align)) + "</tr>" for row in rows)
    return HTML(f'<table class="table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')


def block_diagram(ax, boxes: dict, arrows: list, title: str = "", fontsize: float = 9) -> None:
    """Boxes joined by arrows, for architecture figures (the papers' block diagrams) drawn as data.

    boxes: {name: (x, y, label, colour)}, centres in axes units 0-1 (labels may hold "\\n");
    arrows: [(from, to)], a box name or an (x, y) point at either end (an input or output that has
    no box). Box widths follow their labels; arrows run from edge to edge.
    """
    from matplotlib.patches import FancyArrowPatch

    patches = {}
    for name, (x, y, label, colour) in boxes.items():
        patches[name] = ax.text(x, y, label, ha="center", va="center", fontsize=fontsize,
                                bbox=dict(boxstyle="round,pad=0.45", fc=colour, ec="0.25", lw=0.8))
    for start, end in arrows:
        a = patches.get(start) if isinstance(start, str) else None
        b = patches.get(end) if isinstance(end, str) else None
        xy_a = boxes[start][:2] if a else start
        xy_b = boxes[end][:2] if b else end
        ax.add_patch(FancyArrowPatch(xy_a, xy_b, patchA=a.get_bbox_patch() if a else None,
                                     patchB=b.get_bbox_patch() if b else None, arrowstyle="-|>",
                                     mutation_scale=9, lw=0.9, color="0.2", shrinkA=1, shrinkB=1))
    ax.set(xlim=(0, 1), ylim=(0, 1), title=title)
    ax.axis("off")
