"""The HTML book: built with every chapter executed, offline, and its demos respond in a browser."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from autograder.course import REPO, assignments

CHAPTERS = [f"book/{p.stem}.html" for p in sorted((REPO / "book").glob("[0-9][0-9]_*.md"))]
EXERCISES = [f"notebooks/{a}/{a}.html" for a in assignments()]
# The closing page gathers the chapters' results: executed and read like a chapter, but with no notation box,
# questions or demos of its own.
PAGES = [*CHAPTERS, "book/results.html"]


def test_every_chapter_and_exercise_is_in_the_table_of_contents():
    toc = (REPO / "_toc.yml").read_text()
    for page in PAGES + EXERCISES:
        assert f"file: {page.removesuffix('.html')}" in toc, f"{page} is not in _toc.yml"


def test_pages_exist(built_book):
    for page in ["index.html", "book/preface.html", *PAGES, *EXERCISES, "search.html"]:
        assert (built_book / page).exists(), page


@pytest.mark.parametrize("page", PAGES)
def test_chapters_ran_without_errors(built_book, page):
    html = (built_book / page).read_text()
    assert "Traceback (most recent call last)" not in html
    assert "cell_output" in html, "the chapter's code was executed and its outputs are in the page"
    if page in CHAPTERS:  # the closing page gathers results and has no demos of its own
        assert html.count('class="ck-demo"') >= 2, "at least two interactive demos"


@pytest.mark.parametrize("page", ["book/preface.html", *PAGES, *EXERCISES])
def test_pages_need_no_network(built_book, page):
    html = (built_book / page).read_text()
    external = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(https?://[^"]+)"', html)
    assert not external, f"{page} loads {external}"
    assert "_static/mathjax/tex-svg.js" in html
    assert (built_book / "_static" / "mathjax" / "tex-svg.js").exists()


@pytest.mark.parametrize("page", EXERCISES)
def test_exercise_page_shows_stubs_and_offers_the_notebook(built_book, page):
    html = (built_book / page).read_text()
    assert "NotImplementedError" in html and "BEGIN HIDDEN TESTS" not in html
    assert "BEGIN SOLUTION" not in html
    notebook = Path(page).with_suffix(".ipynb")
    assert (built_book / "_sources" / notebook).exists(), "the download button serves the .ipynb"
    assert f"_sources/{notebook.name}" in html or notebook.name in html


@pytest.mark.browser
@pytest.mark.parametrize("page", CHAPTERS)
def test_demos_respond_in_a_real_browser(built_book, chromium, page):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        errors = []
        tab = browser.new_page()
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.goto((built_book / page).as_uri())
        demos = tab.locator(".ck-demo")
        assert demos.count() >= 2
        for i in range(demos.count()):
            demo = demos.nth(i)
            demo.scroll_into_view_if_needed()
            visible = demo.locator(".ck-frame:not([hidden])")
            assert visible.count() == 1, "exactly one frame is shown"
            # a figure demo shows an image per state; a text demo, the text itself
            content = "el => el.tagName === 'IMG' ? el.src : el.innerText"
            before_key, before = visible.get_attribute("data-key"), visible.evaluate(content)
            change_first_control(tab, demo)
            visible = demo.locator(".ck-frame:not([hidden])")
            assert visible.count() == 1
            assert visible.get_attribute("data-key") != before_key, f"demo {i}: the state did not change"
            assert visible.evaluate(content) != before, f"demo {i}: what it shows did not change"
            assert visible.evaluate("el => el.tagName === 'IMG' ? el.complete && el.naturalWidth > 0 "
                                    ": el.offsetHeight > 0 && el.innerText.trim().length > 0"), "the new state is drawn"
        browser.close()
    assert not errors, errors




@pytest.mark.browser
def test_navigation_buttons_work_in_a_real_browser(built_book, chromium):
    """On a phone the navigation and page-outline buttons open their panels and the links in them
    lead on; on a wide screen the navigation button collapses the sidebar and brings it back."""
    from playwright.sync_api import sync_playwright

    page, target = CHAPTERS[0], CHAPTERS[1]
    link_to_target = f'nav.bd-docs-nav a.reference.internal[href="{Path(target).name}"]'
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        errors = []

        def open_tab(width, height):
            tab = browser.new_page(viewport={"width": width, "height": height})
            tab.on("pageerror", lambda error: errors.append(str(error)))
            tab.goto((built_book / page).as_uri())
            return tab

        def the_button(tab, kind):
            button = tab.locator(f".{kind}-toggle:visible")
            assert button.count() == 1, f"one {kind} toggle button is shown, not {button.count()}"
            return button

        # 400 px: the table of contents is off screen until the navigation button opens it.
        tab = open_tab(400, 800)
        link = tab.locator(link_to_target)
        assert not on_screen(link), "the table of contents starts closed on a narrow screen"
        the_button(tab, "primary").click()
        assert eventually(lambda: on_screen(link)), "the navigation button opens the table of contents"
        link.click()
        tab.wait_for_url(f"**/{target}")
        assert on_screen(tab.locator("article h1").first), f"{target} is loaded and shown"
        tab.close()

        # 400 px: the page-outline button opens the outline of the page.
        tab = open_tab(400, 800)
        outline = tab.locator(".bd-sidebar-secondary .page-toc a").first
        assert not on_screen(outline), "the page outline starts closed on a narrow screen"
        the_button(tab, "secondary").click()
        assert eventually(lambda: on_screen(outline)), "the page-outline button opens the outline"
        tab.close()

        # 1280 px: the sidebar is shown; the navigation button hides it, and a second click shows it.
        tab = open_tab(1280, 900)
        sidebar = tab.locator(".bd-sidebar-primary")
        assert on_screen(sidebar), "the sidebar is shown on a wide screen"
        the_button(tab, "primary").click()
        assert eventually(lambda: not on_screen(sidebar)), "the navigation button collapses the sidebar"
        the_button(tab, "primary").click()
        assert eventually(lambda: on_screen(sidebar)), "a second click brings the sidebar back"
        tab.close()
        browser.close()
    assert not errors, errors


# Elements of the article that stick out of its column and are not inside a box that scrolls or clips them
# (a wide table in a scrolling box is fine: the box fits; the table's far columns are a swipe away).
OVERFLOW_JS = """() => {
  const art = document.querySelector('main article') || document.querySelector('article');
  const column = art.getBoundingClientRect();
  const contained = el => {
    for (let a = el.parentElement; a && a !== art; a = a.parentElement) {
      if (['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(a).overflowX)) return true;
    }
    return false;
  };
  const out = [];
  for (const el of art.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if ((r.right > column.right + 1 || r.left < column.left - 1) && !contained(el)) {
      out.push(el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ? '.' +
        el.className.split(' ')[0] : '') + ' ' + Math.round(r.right - column.right) + ' px past the column: ' +
        (el.innerText || el.textContent || '').trim().slice(0, 50));
    }
  }
  return {sideways: document.documentElement.scrollWidth - window.innerWidth, outside: out};
}"""


@pytest.mark.browser
@pytest.mark.parametrize("page", ["book/preface.html", *PAGES, *EXERCISES])
def test_nothing_is_wider_than_the_column(built_book, chromium, page):
    """At 1280 px and on a 400 px phone, the page never scrolls sideways and no element of the article sticks out
    of the text column: tables and long equations scroll inside their own box, code wraps (coursekit/static)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        problems = []
        for width in (1280, 400):
            tab = browser.new_page(viewport={"width": width, "height": 900})
            tab.goto((built_book / page).as_uri())
            tab.wait_for_function("() => !window.MathJax || !MathJax.startup || MathJax.startup.promise"
                                  " .then(() => true)")
            tab.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
            found = tab.evaluate(OVERFLOW_JS)
            if found["sideways"] > 1:
                problems.append(f"{width} px: the page scrolls sideways by {found['sideways']} px")
            problems += [f"{width} px: {item}" for item in found["outside"][:8]]
            tab.close()
        browser.close()
    assert not problems, f"{page}:\n" + "\n".join(problems)


SHRUNK_JS = """() => {
  const out = [];
  for (const img of document.querySelectorAll('main article img')) {
    if (img.naturalWidth < 540 || img.getBoundingClientRect().width === 0 && img.hidden) continue;
    const shown = img.getBoundingClientRect().width || parseFloat(getComputedStyle(img).width);
    if (shown < 539) out.push((img.alt || img.src.slice(-40)) + ': ' + Math.round(shown) + ' of ' + img.naturalWidth + ' px');
  }
  return out;
}"""


@pytest.mark.browser
@pytest.mark.parametrize("page", PAGES)
def test_figures_stay_legible_on_a_phone(built_book, chromium, page):
    """At 400 px a figure or demo frame is not shrunk below 540 px (its labels would be 4-5 px high): it keeps its
    width and scrolls inside its box (coursekit/static/course.css)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        tab = browser.new_page(viewport={"width": 400, "height": 900})
        tab.goto((built_book / page).as_uri())
        tab.wait_for_load_state("load")
        shrunk = tab.evaluate(SHRUNK_JS)
        browser.close()
    assert not shrunk, f"{page}: figures shrunk below 540 px at 400 px:\n" + "\n".join(shrunk[:8])


def on_screen(locator) -> bool:
    """Whether a reader sees the element: rendered visible, and at least partly inside the viewport."""
    return locator.is_visible() and locator.evaluate(
        "el => { const r = el.getBoundingClientRect();"
        " return r.width > 0 && r.height > 0 && r.right > 0 && r.bottom > 0"
        " && r.left < window.innerWidth && r.top < window.innerHeight; }")


def eventually(condition, seconds: float = 5.0) -> bool:
    """Poll `condition` until it holds or `seconds` pass (the sidebars open and close with transitions)."""
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True

def change_first_control(tab, demo):
    """Move the demo's first control as a reader would: keyboard on a slider, click, or choose."""
    control = demo.locator(".ck-controls [name]").first
    kind = control.evaluate("el => el.type")
    if kind == "range":
        control.focus()
        at_end = control.evaluate("el => el.value === el.max")
        tab.keyboard.press("ArrowLeft" if at_end else "ArrowRight")
    elif kind == "checkbox":
        control.click()
    else:
        options = control.locator("option")
        current = control.evaluate("el => el.value")
        other = next(options.nth(j).get_attribute("value") for j in range(options.count())
                     if options.nth(j).get_attribute("value") != current)
        control.select_option(other)


# ---- What every chapter page must have (issue #12): references, numbered figures, a light page, a notebook ----

MAX_PAGE_BYTES = 2 * 10**6  # a chapter page, its HTML and its own images (the theme's shared files apart)


def article(built_book, page):
    """The page's main content, parsed (BeautifulSoup)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup((built_book / page).read_text(), "html.parser")
    return soup.select_one("main article") or soup.select_one("article")


@pytest.mark.parametrize("page", PAGES)
def test_chapter_cites_its_references(built_book, page):
    """A "References" section with a bibliography (sphinxcontrib-bibtex, filtered to the chapter), every citation in
    the prose resolved and linked to an entry of this page's list, and every entry cited."""
    body = article(built_book, page)
    section = body.select_one("section#references")
    assert section is not None and section.find(["h2", "h3"]).get_text(strip=True).rstrip("#") == "References", \
        "the chapter ends with a '## References' section"
    entries = section.select('[role="doc-biblioentry"]')
    assert entries, "the References section lists the works the chapter cites ({bibliography} :filter: docname in docnames)"
    citations = body.select("span.bibtex-citation")
    assert citations, "the prose cites its sources with {cite:t} / {cite:p}"
    text = body.get_text(" ")
    assert "{cite" not in text and "could not find bibtex key" not in text, "no citation role left unresolved"
    ids = {entry.get("id") for entry in entries}
    cited = set()
    for citation in citations:
        links = citation.select("a[href]")
        assert links, f"a citation without a link: {citation.get_text()!r}"
        for link in links:
            target = link["href"].split("#")[-1]
            assert link["href"].startswith("#") and target in ids, \
                f"{citation.get_text()!r} links to {link['href']!r}, not to an entry of this page's references"
            cited.add(target)
    assert ids <= cited, "every work in the references is cited in the chapter"


@pytest.mark.parametrize("page", PAGES)
def test_figures_and_tables_are_numbered_and_captioned(built_book, page):
    """Every image a cell draws is in a figure with a number and a caption (cell metadata `mystnb: figure:
    {caption, name}`); every figure on the page, tables included, is numbered in order within the chapter ("Fig. 7.3")
    and captioned. The interactive demos' frames (.ck-demo) are exempt, though they may be captioned too."""
    stem = Path(page).stem
    prefix = f"{int(stem[:2])}." if stem[:2].isdigit() else ""  # the closing page's figures are Fig. 1, 2, ...
    body = article(built_book, page)
    for img in body.find_all("img"):
        if img.find_parent(class_="ck-demo"):
            continue
        assert img.find_parent("figure") is not None, f"an image outside a numbered figure: {img.get('src')}"
    figures = body.find_all("figure")
    assert figures, "the chapter has numbered figures"
    numbers = {"Fig.": [], "Table": []}
    for figure in figures:
        caption = figure.find("figcaption")
        number = caption and caption.select_one(".caption-number")
        assert number is not None, f"figure {figure.get('id')!r} has no numbered caption"
        kind, _, n = number.get_text(strip=True).partition(" ")
        assert kind in numbers and re.fullmatch(rf"{prefix}\d+", n), f"figure {figure.get('id')!r}: {number.get_text()!r}"
        numbers[kind].append(int(n.split(".")[-1]))
        words = caption.get_text(" ", strip=True).removeprefix(number.get_text(" ", strip=True)).split()
        assert len(words) >= 5, f"{number.get_text(strip=True)} has no real caption: {' '.join(words)!r}"
    for table in body.select("table > caption .caption-number"):  # Markdown tables with {table}
        kind, _, n = table.get_text(strip=True).partition(" ")
        assert kind == "Table" and re.fullmatch(rf"{prefix}\d+", n), f"a table numbered {table.get_text()!r}"
        numbers["Table"].append(int(n.split(".")[-1]))
    for kind, found in numbers.items():
        assert sorted(found) == list(range(1, len(found) + 1)), f"{kind} numbers {found}: one sequence per chapter"


def page_weight(built_book, page) -> int:
    """Bytes a reader downloads for the page itself: its HTML (with the demos' frames inside it) and its own images."""
    html_path = built_book / page
    html = html_path.read_text()
    own = {(html_path.parent / src).resolve()
           for src in re.findall(r'<img[^>]+src="([^"]+)"', html) if not src.startswith(("data:", "http"))}
    return html_path.stat().st_size + sum(p.stat().st_size for p in own)


@pytest.mark.parametrize("page", PAGES)
def test_chapter_page_is_light(built_book, page):
    weight = page_weight(built_book, page)
    assert weight <= MAX_PAGE_BYTES, (f"{page} weighs {weight / 1e6:.2f} MB with its images (at most "
                                      f"{MAX_PAGE_BYTES / 1e6:.0f} MB): fewer demo states, smaller figures")


def test_no_source_maps_are_shipped(built_book):
    maps = sorted(str(p.relative_to(built_book)) for p in built_book.rglob("*.map"))
    assert not maps, f"source maps are only for developer tools: {maps}"


def test_demo_frames_are_palette_pngs(built_book):
    import base64
    import io

    from PIL import Image

    html = (built_book / CHAPTERS[0]).read_text()
    frames = re.findall(r'class="ck-frame"[^>]*src="data:image/png;base64,([^"]+)"', html)
    assert frames, "the chapter's figure demos are pre-rendered as PNG"
    for frame in frames[:5]:
        with Image.open(io.BytesIO(base64.b64decode(frame))) as image:
            assert image.mode == "P", f"a demo frame is a palette PNG, not {image.mode}"


@pytest.mark.parametrize("page", PAGES)
def test_chapter_is_offered_as_a_notebook(built_book, page):
    """The download button offers the chapter as .ipynb (no outputs, ready to run), besides its .md source."""
    import nbformat

    notebook = Path("_sources") / Path(page).with_suffix(".ipynb")
    assert (built_book / notebook).exists(), f"{notebook} is in the built book"
    nb = nbformat.read(built_book / notebook, as_version=4)
    nbformat.validate(nb)
    source = (REPO / Path(page).with_suffix(".md")).read_text()
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code_cells) == source.count("```{code-cell}"), "every code cell of the chapter"
    assert not any(c.outputs for c in code_cells), "shipped without outputs"
    assert f'href="../{notebook.as_posix()}"' in (built_book / page).read_text(), "the download button links to it"


@pytest.mark.parametrize("page", EXERCISES)
def test_exercise_page_leads_back_to_its_chapter(built_book, page):
    """An exercise page is its chapter's section in _toc.yml: its "previous" link is the chapter."""
    chapter = f"book/{Path(page).stem}.html"
    body = (built_book / page).read_text()
    previous = re.search(r'<a class="left-prev"\s+href="([^"]+)"', body)
    assert previous and (built_book / page).parent.joinpath(previous.group(1)).resolve() == \
        (built_book / chapter).resolve(), f"{page}: the previous page is {chapter}"


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_has_notation_and_folded_answers(page):
    """A notation box near the top, and the "try it yourself" questions with their answers folded (CONTRIBUTING)."""
    source = (REPO / Path(page).with_suffix(".md")).read_text()
    notation = source.find("```{admonition} Notation")
    assert notation != -1, "the chapter has an {admonition} Notation box"
    assert notation < source.find("\n## "), "the notation box comes before the first section"
    answers = re.findall(r"```\{admonition\} Answer\s*\n\s*:class: dropdown", source)
    assert len(answers) >= 2, f"the chapter's questions have folded answers ({len(answers)} found)"


def test_preface_says_how_to_serve_the_book():
    preface = (REPO / "book" / "preface.md").read_text()
    assert "python -m http.server -d _build/html" in preface, "full search needs a server; the preface says how"
