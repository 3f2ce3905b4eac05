# The course's commands. Everything runs inside .venv, which the first command creates.
#   make book     build the HTML book, every chapter executed   -> _build/html/index.html
#   make test     the whole test suite (what CI runs)
#   make release  regenerate notebooks/ (student versions) from solutions/
#   make grade ASSIGNMENT=07_self_attention SUBMISSIONS=path/to/submissions [WORKERS=n] [GRADE_OPTS="--cell-timeout 30 ..."]
#   make workspace         students: copy the exercise notebooks into my-work/ (git-ignored), never overwriting
#   make student-edition   what students get (notebooks, coursekit, the book; no solutions) -> _build/student-edition
#   make gpu-check         on a machine with a GPU: every hidden case on CUDA, a small class graded, every page run
#   make gpu-wheels        here, with network: the wheels a GPU machine without network lacks -> .whl/

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

ASSIGNMENT  ?=
SUBMISSIONS ?=
WORKDIR     ?= .grading
WORKERS     ?= $(shell nproc 2>/dev/null || echo 1)
GRADE_OPTS  ?=
WORKSPACE   ?= my-work

.PHONY: venv book test release grade workspace student-edition gpu-check gpu-wheels system-packages clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
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
	$(BIN)/python -m autograder grade $(ASSIGNMENT) $(SUBMISSIONS) --workdir $(WORKDIR) --workers $(WORKERS) $(GRADE_OPTS)

# A student's own copies of the exercise notebooks, in a folder git ignores: `git pull` updates
# notebooks/ and never conflicts with your work. Run it again after an update: it copies what is new
# (a chapter added since) and leaves every file already in $(WORKSPACE)/ as it is.
workspace:
	@mkdir -p "$(WORKSPACE)"; find notebooks -type f ! -path '*/.ipynb_checkpoints/*' | sort | while read -r f; do \
	  t="$(WORKSPACE)/$${f#notebooks/}"; \
	  if [ ! -e "$$t" ]; then mkdir -p "$$(dirname "$$t")" && cp -p "$$f" "$$t" && echo "new: $$t"; fi; done; \
	echo "your notebooks: $(WORKSPACE)/ (kept as they are; open them with: $(BIN)/jupyter lab $(WORKSPACE)/)"

student-edition: book
	$(BIN)/python -m autograder student-edition _build/student-edition --book _build/html

# The GPU machine has Python 3.12 with its own CUDA build of PyTorch and no network: it uses .venv
# when there is one, else its python3 with the wheels that `make gpu-wheels` put in .whl/.
GPU_PYTHON := $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
GPU_SITE   := /tmp/course-gpu-site
# what the GPU image lacks of requirements.txt, less the book's toolchain and the Jupyter UIs
GPU_WHEELS := $(shell grep -v '^\#' requirements.txt \
  | grep -viE '^(torch|numpy|matplotlib|contourpy|cycler|fonttools|kiwisolver|pillow|pyparsing|packaging|python-dateutil|six|sympy|mpmath|networkx|filelock|fsspec|jinja2|markupsafe|typing.extensions|pygments|psutil|pyyaml|requests|urllib3|idna|certifi|charset-normalizer|attrs|tabulate|iniconfig|pluggy|coverage|pytest|nbval|playwright|greenlet|docutils|imagesize|snowballstemmer|babel|latexcodec|alabaster|json5|async-lru)==' \
  | grep -viE '^(sphinx|myst|pydata|accessible|jupyter-book|jupyter-cache|jupyter-lsp|jupyter_builder|jupyterlab==|notebook==|pybtex|linkify|mdit|markdown-it|mdurl|uc-micro|lazy)')

gpu-check:
	@if [ ! -x $(BIN)/python ] && [ -d .whl ]; then \
	  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $(GPU_SITE) .whl/*.whl; fi
	PYTHONPATH=$(GPU_SITE):$(CURDIR) $(GPU_PYTHON) -m autograder.gpu_check

gpu-wheels:
	mkdir -p .whl
	python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 --platform any -d .whl $(GPU_WHEELS)
	@du -sh .whl

clean:
	rm -rf _build $(WORKDIR)
