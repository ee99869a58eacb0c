# LipAgent: `make demo` and `make test` build the virtual environment first (`make setup`).
VENV    ?= .venv
PYTHON  ?= python3
# torch first, pinned, so nothing resolves it to a newer build (on a CPU box that would pull GBs of CUDA).
TORCH   ?= torch==2.13.0
STAMP   := $(VENV)/.installed
# The Pythons `make setup` and `make test` were run on (pyproject allows 3.11 and later).
PYTHONS ?= 3.11 3.12 3.13

.PHONY: setup check-python demo test bench mutation clean

setup: $(STAMP)

# Before anything is installed: on another Python pip would fail minutes later in its resolver, or install
# versions nobody ran the tests with.
check-python:
	@$(PYTHON) -c 'import sys; v = "%d.%d" % sys.version_info[:2]; ok = v in "$(PYTHONS)".split(); \
	ok or sys.exit("make setup: LipAgent installs on Python $(PYTHONS); $(PYTHON) is Python " + v + \
	". Give another one: make setup PYTHON=python3.13")'

$(STAMP): pyproject.toml constraints.txt | check-python
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q $(TORCH)
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(VENV)/bin/pip install -q -c constraints.txt -e ".[dev,gguf]"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/lipagent demo --out demo-out

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/python -m pytest

bench: setup
	$(VENV)/bin/python bench/bench_pipeline.py

# Hours on 2 cores: mutmut over the modules where a silent bug costs accuracy or data (bench/mutation.py).
mutation: setup
	$(VENV)/bin/pip install -q -c constraints.txt -e ".[mutation]"
	$(VENV)/bin/python bench/mutation.py

clean:
	rm -rf demo-out .pytest_cache mutants
