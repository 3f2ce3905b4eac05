"""Demos that are live in Jupyter and still respond in the static HTML book.

A demo is a function that draws a matplotlib figure from a few discrete settings::

    def draw(temperature, causal):
        fig, ax = plt.subplots()
        ...
        return fig

    interactive_figure(draw,
                       temperature=Slider("temperature", [0.25, 0.5, 1, 2, 4], value=1),
                       causal=Toggle("causal mask"))

Displaying the result gives the front end two renderings of the same demo:

* ``application/vnd.jupyter.widget-view+json``: ipywidgets controls that redraw the figure
  on demand, for a running kernel (Jupyter, VS Code, Colab);
* ``text/html``: every state the controls can take, drawn in advance as PNG images, with plain
  HTML controls and a few lines of inline JavaScript that show the matching image. The book
  (``_config.yml`` tells myst-nb to prefer this rendering) needs no kernel, server or CDN.

Because the static page holds one image per state, keep the product of the controls' sizes
small (``MAX_STATES``).

Text (generated samples, tables of numbers) is shown as text, not as a picture of it:
``interactive_html(render, **controls)`` takes a ``render(**settings) -> str`` of HTML and
pre-renders each state as HTML, with the same controls.
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import itertools
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import matplotlib.pyplot as plt

MAX_STATES = 120


@dataclass(frozen=True)
class Slider:
    """A slider over a fixed list of values."""

    label: str
    values: Sequence[Any]
    value: Any = None  # initial value; the first one when None
    fmt: str = "{}"

    def labelled_options(self) -> list[tuple[str, Any]]:
        return [(self.fmt.format(v), v) for v in self.values]

    def initial_index(self) -> int:
        return 0 if self.value is None else list(self.values).index(self.value)

    def live(self):
        import ipywidgets as W

        return W.SelectionSlider(options=self.labelled_options(), value=self.values[self.initial_index()],
                                 description=self.label, continuous_update=False,
                                 style={"description_width": "initial"})

    def static(self, name: str) -> str:
        labels = [label for label, _ in self.labelled_options()]
        i = self.initial_index()
        return (f'<label class="ck-control">{html.escape(self.label)} '
                f'<input type="range" name="{name}" min="0" max="{len(labels) - 1}" step="1" value="{i}" '
                f"data-labels='{html.escape(json.dumps(labels))}'> "
                f"<output>{html.escape(labels[i])}</output></label>")


@dataclass(frozen=True)
class Dropdown:
    """A choice among labelled options: ``{"label shown": value, ...}``."""

    label: str
    options: Mapping[str, Any]
    value: Any = None  # initial value; the first option when None

    @property
    def values(self) -> list[Any]:
        return list(self.options.values())

    def initial_index(self) -> int:
        return 0 if self.value is None else self.values.index(self.value)

    def live(self):
        import ipywidgets as W

        return W.Dropdown(options=list(self.options.items()), value=self.values[self.initial_index()],
                          description=self.label, style={"description_width": "initial"})

    def static(self, name: str) -> str:
        i0 = self.initial_index()
        options = "".join(f'<option value="{i}"{" selected" if i == i0 else ""}>{html.escape(label)}</option>'
                          for i, label in enumerate(self.options))
        return f'<label class="ck-control">{html.escape(self.label)} <select name="{name}">{options}</select></label>'


@dataclass(frozen=True)
class Toggle:
    """An on/off switch."""

    label: str
    value: bool = False

    @property
    def values(self) -> list[bool]:
        return [False, True]

    def initial_index(self) -> int:
        return int(bool(self.value))

    def live(self):
        import ipywidgets as W

        return W.Checkbox(value=bool(self.value), description=self.label, indent=False)

    def static(self, name: str) -> str:
        checked = " checked" if self.value else ""
        return f'<label class="ck-control"><input type="checkbox" name="{name}"{checked}> {html.escape(self.label)}</label>'


Control = Slider | Dropdown | Toggle

_STYLE = """<style>
.ck-demo{border:1px solid #d0d7de;border-radius:6px;padding:.6em;margin:1em 0}
.ck-controls{display:flex;flex-wrap:wrap;gap:.4em 1.6em;align-items:center;margin-bottom:.5em;font-size:.9em}
.ck-control{display:inline-flex;gap:.4em;align-items:center;margin:0}
.ck-control output{min-width:3em;font-variant-numeric:tabular-nums}
.ck-frame{max-width:100%;height:auto}
</style>"""

# Reads the controls, builds the key of the state ("i-j-k": one index per control, in order)
# and shows the one image drawn for that state.
_SCRIPT = """<script>
(function () {
  var root = document.getElementById("%(uid)s");
  var inputs = Array.prototype.slice.call(root.querySelectorAll(".ck-controls [name]"));
  function index(el) {
    if (el.type === "checkbox") return el.checked ? 1 : 0;
    return parseInt(el.value, 10);
  }
  function update() {
    inputs.forEach(function (el) {
      if (el.type === "range") {
        el.parentNode.querySelector("output").textContent = JSON.parse(el.dataset.labels)[index(el)];
      }
    });
    var key = inputs.map(index).join("-");
    root.querySelectorAll(".ck-frame").forEach(function (img) {
      img.hidden = img.dataset.key !== key;
    });
    root.dataset.state = key;
  }
  inputs.forEach(function (el) {
    el.addEventListener("input", update);
    el.addEventListener("change", update);
  });
  update();
})();
</script>"""


PALETTE_COLOURS = 128  # a demo frame's colours: plots, text and colour maps stay legible at a third of the bytes


def figure_to_png(fig, dpi: int = 80, colours: int | None = PALETTE_COLOURS) -> bytes:
    """PNG bytes of a figure, then close it (pre-rendering draws many figures).

    The static book holds every state of a demo, so a frame is a palette PNG of at most ``colours`` colours
    (median cut, no dithering: flat areas stay flat), on a white background; ``colours=None`` keeps full colour.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    if colours is None:
        return buffer.getvalue()
    from PIL import Image

    with Image.open(buffer) as image:
        rgba = image.convert("RGBA")
    flat = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    palette = flat.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    return out.getvalue()


@dataclass
class _Interactive:
    """What a figure demo and a text demo share: the controls, their states, and both renderings.
    A subclass says how one state is drawn (``frame``) and shown live (``live_output``, ``show``)."""

    render: Callable[..., Any]
    controls: dict[str, Control]
    _serial: int = field(default=0, repr=False)

    def states(self) -> list[tuple[int, ...]]:
        """Every combination of control indices, in a fixed order."""
        return list(itertools.product(*(range(len(c.values)) for c in self.controls.values())))

    def values_of(self, state: Sequence[int]) -> dict[str, Any]:
        return {name: c.values[i] for (name, c), i in zip(self.controls.items(), state)}

    def frame(self, values: dict[str, Any], key: str, hidden: str, alt: str) -> tuple[str, bytes]:
        """(the HTML of one pre-rendered state, the bytes that identify it)"""
        raise NotImplementedError

    def static_html(self) -> str:
        states = self.states()
        if len(states) > MAX_STATES:
            raise ValueError(f"{len(states)} states to pre-render; keep it under {MAX_STATES}")
        initial = tuple(c.initial_index() for c in self.controls.values())
        frames = []
        digest = hashlib.sha1(f"{self.render.__qualname__}:{self._serial}".encode())
        for state in states:
            values = self.values_of(state)
            alt = ", ".join(f"{c.label}: {v}" for c, v in zip(self.controls.values(), values.values()))
            frame, content = self.frame(values, "-".join(map(str, state)), "" if state == initial else " hidden",
                                        html.escape(alt))
            digest.update(content)
            frames.append(frame)
        uid = "ck-" + digest.hexdigest()[:12]
        controls = "".join(c.static(name) for name, c in self.controls.items())
        return (f'{_STYLE}<div class="ck-demo" id="{uid}">'
                f'<form class="ck-controls" onsubmit="return false">{controls}</form>'
                f'<div class="ck-frames">{"".join(frames)}</div></div>'
                + _SCRIPT % {"uid": uid})

    def live_output(self):
        raise NotImplementedError

    def show(self, out, values: dict[str, Any]) -> None:
        raise NotImplementedError

    def live_widget(self):
        import ipywidgets as W

        widgets = {name: c.live() for name, c in self.controls.items()}
        out = self.live_output()

        def redraw(_change=None):
            self.show(out, {name: w.value for name, w in widgets.items()})

        for w in widgets.values():
            w.observe(redraw, names="value")
        redraw()
        return W.VBox([W.HBox(list(widgets.values()), layout=W.Layout(flex_flow="row wrap")), out])

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {"text/plain": f"<interactive {self.kind}: {', '.join(self.controls)}>",
                  "text/html": self.static_html()}
        try:
            bundle.update(self.live_widget()._repr_mimebundle_())
        except ImportError:  # no ipywidgets: the static rendering still works in any HTML front end
            pass
        return bundle


@dataclass
class InteractiveFigure(_Interactive):
    """A figure redrawn from discrete controls; see the module docstring."""

    dpi: int = 80
    kind = "figure"

    def frame(self, values, key, hidden, alt):
        png = figure_to_png(self.render(**values), self.dpi)
        return (f'<img class="ck-frame" data-key="{key}"{hidden} alt="{alt}" '
                f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'), png

    def live_output(self):
        import ipywidgets as W

        return W.Output()

    def show(self, out, values):
        from IPython.display import display

        with out:
            out.clear_output(wait=True)
            fig = self.render(**values)
            display(fig)
            plt.close(fig)


@dataclass
class InteractiveHTML(_Interactive):
    """Text (or any HTML) redrawn from discrete controls: shown as text, selectable and searchable,
    not as a picture of it. ``render(**settings)`` returns an HTML string."""

    kind = "text"

    def frame(self, values, key, hidden, alt):
        body = self.render(**values)
        return f'<div class="ck-frame" data-key="{key}"{hidden} aria-label="{alt}">{body}</div>', body.encode()

    def live_output(self):
        import ipywidgets as W

        return W.HTML()

    def show(self, out, values):
        out.value = self.render(**values)


_counter = itertools.count()


def interactive_figure(render: Callable[..., Any], dpi: int = 80, **controls: Control) -> InteractiveFigure:
    """Wrap ``render(**settings) -> Figure`` with controls; display the result to show it."""
    return InteractiveFigure(render, dict(controls), _serial=next(_counter), dpi=dpi)


def interactive_html(render: Callable[..., str], **controls: Control) -> InteractiveHTML:
    """Wrap ``render(**settings) -> str`` (HTML: generated text, a table) with controls; display it."""
    return InteractiveHTML(render, dict(controls), _serial=next(_counter))
