# The whole set-up: `make demo` runs the demo, `make test` runs the tests. Both create .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: the local CPU build here, the standard build elsewhere.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/genloom train digits --family vae --minutes 2 --out runs/demo
	@echo "open runs/demo/report.html"

test: install-dev
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs
