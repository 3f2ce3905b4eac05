"""The demo helper: every state is pre-rendered for the static book, and Jupyter gets live widgets."""
from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from coursekit.widgets import MAX_STATES, Dropdown, Slider, Toggle, interactive_figure, interactive_html


def draw(a, b, c):
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [a, a * (2 if b else 1)], color="red" if c == "r" else "blue")
    ax.set_title(f"{a}{b}{c}")
    return fig


def demo():
    return interactive_figure(draw, a=Slider("a", [1, 2, 3], value=2), b=Toggle("b"),
                              c=Dropdown("colour", {"red": "r", "blue": "b"}, value="b"))


def test_static_html_holds_one_distinct_image_per_state():
    html = demo().static_html()
    frames = re.findall(r'<img class="ck-frame" data-key="([\d-]+)"( hidden)? alt="[^"]*" src="([^"]+)"', html)
    assert sorted(k for k, _, _ in frames) == sorted(f"{a}-{b}-{c}" for a in range(3) for b in range(2) for c in range(2))
    assert len({src for _, _, src in frames}) == 12, "each state draws its own figure"
    visible = [k for k, hidden, _ in frames if not hidden]
    assert visible == ["1-0-1"], "only the initial state (a=2, b off, colour blue) is shown"


def test_static_controls_start_at_the_initial_values():
    html = demo().static_html()
    assert re.search(r'<input type="range" name="a" min="0" max="2" step="1" value="1"', html)
    assert '<option value="1" selected>blue</option>' in html
    assert '<input type="checkbox" name="b">' in html
    assert "https://" not in html and "http://" not in html, "no CDN, no server"


def test_mimebundle_offers_live_widget_and_static_html():
    bundle = demo()._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/html"].count('class="ck-frame"') == 12


def test_same_demo_draws_the_same_pages_with_distinct_ids():
    first, second = demo().static_html(), demo().static_html()
    ids = [re.search(r'id="(ck-[0-9a-f]{12})"', html).group(1) for html in (first, second)]
    assert ids[0] != ids[1], "two demos on one page must not share an id"
    assert first.replace(ids[0], "ID") == second.replace(ids[1], "ID")


def test_too_many_states_is_refused():
    too_many = interactive_figure(draw, a=Slider("a", list(range(MAX_STATES + 1))), b=Toggle("b"),
                                  c=Dropdown("c", {"r": "r"}))
    with pytest.raises(ValueError, match="states"):
        too_many.static_html()


def test_a_text_demo_shows_its_states_as_text():
    demo = interactive_html(lambda word, loud: f"<p>{word.upper() if loud else word}</p>",
                            word=Dropdown("word", {"manga": "manga", "banco": "banco"}), loud=Toggle("loud", value=True))
    html = demo.static_html()
    frames = re.findall(r'<div class="ck-frame" data-key="([\d-]+)"( hidden)? aria-label="[^"]*"><p>(\w+)</p></div>', html)
    assert {(k, text) for k, _, text in frames} == {("0-0", "manga"), ("0-1", "MANGA"), ("1-0", "banco"),
                                                    ("1-1", "BANCO")}
    assert [k for k, hidden, _ in frames if not hidden] == ["0-1"]
    assert "<img" not in html and "ck-frame" in html
    assert "application/vnd.jupyter.widget-view+json" in demo._repr_mimebundle_()
