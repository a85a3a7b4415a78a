# llmcap: `make run` starts the dashboard, `make test` runs every check. Both set up .venv first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON   ?= python3.11
VENV     ?= .venv
BIN      := $(VENV)/bin
LOCK     := requirements.lock
HOST     ?= 127.0.0.1
PORT     ?= 8501
CHROMIUM ?= /usr/bin/chromium
HAPROXY  ?= haproxy
WORKERS  ?= 2
PYTEST_ARGS ?=

PIP_VERSION := $(shell sed -n 's/^pip==//p' $(LOCK))
PIP         := $(BIN)/python -m pip --disable-pip-version-check -q
# Every install is held to the lock, the isolated build of llmcap (setuptools) included.
PIP_INSTALL := $(PIP) install -c $(LOCK) --build-constraint $(LOCK)
RUN_STAMP   := $(VENV)/.llmcap-run.stamp
DEV_STAMP   := $(VENV)/.llmcap-dev.stamp

.PHONY: help run serve-team test lint bench chromium proxy lock clean distclean

help:
	@echo "make run     set up .venv and start the dashboard on http://$(HOST):$(PORT)"
	@echo "make serve-team   $(WORKERS) dashboard processes (WORKERS=N) behind HAProxy on http://$(HOST):$(PORT)"
	@echo "make test    set up .venv (with dev tools, chromium and haproxy), lint, run every test"
	@echo "make proxy   install Debian's haproxy for serve --workers (as root; make test does)"
	@echo "make lint    ruff + hadolint"
	@echo "make bench   run every bench/*.py and print one table of figures vs targets"
	@echo "make lock    re-resolve requirements.lock from pyproject.toml"
	@echo "make clean   remove caches and test output (distclean: the venv too)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The stamps are rebuilt when pyproject.toml or the lock is newer, so repeated runs skip pip.
$(RUN_STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(PIP) install pip==$(PIP_VERSION)
	$(PIP_INSTALL) -e '.[app]'
	touch $@

$(DEV_STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(PIP) install pip==$(PIP_VERSION)
	$(PIP_INSTALL) -e '.[dev]'
	touch $@ $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/llmcap serve --host $(HOST) --port $(PORT)

# Several dashboard processes behind HAProxy on one address (README: Serving a team).
serve-team: $(RUN_STAMP) proxy
	$(BIN)/llmcap serve --workers $(WORKERS) --host $(HOST) --port $(PORT)

# Install a Debian package when its program is missing and we are root; otherwise say what to run.
# $(call debian_package,CHECK,PACKAGE,WHAT): CHECK is a shell test that succeeds when the program is there.
define debian_package
	@if ! $(1); then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian $(2) for $(3)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
	  else \
	    echo "note: $(2) is missing and you are not root: $(3) will be skipped (sudo apt-get install $(2))"; \
	  fi; \
	fi
endef

# Debian's chromium for the browser tests (Playwright cannot download its own browser here).
chromium:
	$(call debian_package,[ -x $(CHROMIUM) ],chromium,the browser tests)

# Debian's HAProxy for `llmcap serve --workers N` and its tests (in /usr/sbin, which llmcap also searches).
proxy:
	$(call debian_package,PATH="$$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v $(HAPROXY) >/dev/null,haproxy,the serve --workers tests)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/hadolint --no-color Dockerfile

test: $(DEV_STAMP) chromium proxy lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Every bench/*.py (the load benchmark drives Chromium, so the dev tools are needed), then one table.
bench: $(DEV_STAMP) chromium
	$(BIN)/python bench/run_all.py

# Re-resolve every pin from pyproject.toml in a scratch venv (keeps the pip and setuptools pins).
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip --disable-pip-version-check -q install pip==$(PIP_VERSION)
	.lock-venv/bin/python -m pip --disable-pip-version-check -q install --build-constraint $(LOCK) -e '.[dev]'
	{ sed -n '1,/^# Runtime and dev packages:/p' $(LOCK); \
	  .lock-venv/bin/python -m pip freeze --exclude-editable; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf .lock-venv

clean:
	rm -rf .pytest_cache .ruff_cache .hypothesis test-results artifacts build *.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
