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
            before_key, before_src = visible.get_attribute("data-key"), visible.get_attribute("src")
            change_first_control(tab, demo)
            visible = demo.locator(".ck-frame:not([hidden])")
            assert visible.count() == 1
            assert visible.get_attribute("data-key") != before_key, f"demo {i}: the state did not change"
            assert visible.get_attribute("src") != before_src, f"demo {i}: the figure did not change"
            assert visible.evaluate("img => img.complete && img.naturalWidth > 0"), "the new figure is drawn"
        browser.close()
    assert not errors, errors


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
