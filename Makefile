# Two entry points that work on a fresh machine with Python 3.11+:
#   make demo   set up, then find the 2012 race and verify the fix
#   make test   set up, then run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast lint bench clean browser-deps

$(BIN)/fsrace: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "fsrace needs Python 3.11 or newer (found $$($(PYTHON) --version))"; exit 1; }
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || \
		{ echo "python3 -m venv failed; installing python3-venv"; \
		  apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

demo: $(BIN)/fsrace
	$(BIN)/fsrace demo

# The HTML report's test drives headless Chromium from Debian's packages.
browser-deps:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing chromium and chromium-driver (Debian packages)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				--no-install-recommends chromium chromium-driver >/dev/null; \
		else \
			echo "chromium/chromium-driver missing and not root: the browser test will be skipped"; \
		fi; \
	fi

test: $(BIN)/fsrace browser-deps
	$(BIN)/ruff check src tests
	$(BIN)/pytest -q -m "not slow"
	$(BIN)/pytest -q -m slow

test-fast: $(BIN)/fsrace
	$(BIN)/pytest -q -m "not slow"

lint: $(BIN)/fsrace
	$(BIN)/ruff check src tests

bench: $(BIN)/fsrace
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache
