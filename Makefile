# The course's commands. Everything runs inside .venv, which the first command creates.
#   make book     build the HTML book, every chapter executed   -> _build/html/index.html
#   make test     the whole test suite (what CI runs)
#   make release  regenerate notebooks/ (student versions) from solutions/
#   make grade ASSIGNMENT=07_self_attention SUBMISSIONS=path/to/submissions
#   make student-edition   what students get (notebooks, coursekit, the book; no solutions) -> _build/student-edition

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

ASSIGNMENT  ?=
SUBMISSIONS ?=
WORKDIR     ?= .grading

.PHONY: venv book test release grade student-edition system-packages clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

book: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "The book is at $(CURDIR)/_build/html/index.html"

# From Debian's packages (needs root, as on CI): headless Chromium for the browser tests, and
# bubblewrap, the grader's sandbox.
system-packages:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v bwrap >/dev/null 2>&1 || missing="$$missing bubblewrap"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing$$missing and cannot install here: browser tests skip, the grader runs without its sandbox"; fi; fi

test: $(STAMP) system-packages
	$(BIN)/python -m pytest

release: $(STAMP)
	$(BIN)/python -m autograder release

grade: $(STAMP) system-packages
	@test -n "$(ASSIGNMENT)" -a -n "$(SUBMISSIONS)" || { echo "usage: make grade ASSIGNMENT=07_self_attention SUBMISSIONS=path"; exit 2; }
	$(BIN)/python -m autograder grade $(ASSIGNMENT) $(SUBMISSIONS) --workdir $(WORKDIR)

student-edition: book
	$(BIN)/python -m autograder student-edition _build/student-edition --book _build/html

clean:
	rm -rf _build $(WORKDIR)
