"""The HTML book: built with every chapter executed, offline, and its demos respond in a browser."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from autograder.course import REPO, assignments

CHAPTERS = [f"book/{p.stem}.html" for p in sorted((REPO / "book").glob("[0-9][0-9]_*.md"))]
EXERCISES = [f"notebooks/{a}/{a}.html" for a in assignments()]


def test_every_chapter_and_exercise_is_in_the_table_of_contents():
    toc = (REPO / "_toc.yml").read_text()
    for page in CHAPTERS + EXERCISES:
        assert f"file: {page.removesuffix('.html')}" in toc, f"{page} is not in _toc.yml"


def test_pages_exist(built_book):
    for page in ["index.html", "book/preface.html", *CHAPTERS, *EXERCISES, "search.html"]:
        assert (built_book / page).exists(), page


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapters_ran_without_errors(built_book, page):
    html = (built_book / page).read_text()
    assert "Traceback (most recent call last)" not in html
    assert "cell_output" in html, "the chapter's code was executed and its outputs are in the page"
    assert html.count('class="ck-demo"') >= 2, "at least two interactive demos"


@pytest.mark.parametrize("page", ["book/preface.html", *CHAPTERS, *EXERCISES])
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
