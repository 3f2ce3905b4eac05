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
