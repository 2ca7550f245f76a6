# Two entry points that work on a fresh machine with Python 3.11+:
#   make demo   set up, then find the 2012 race and verify the fix
#   make test   set up, then run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast lint bench bench-stress clean system-deps

# The venv with fsrace alone (what the demo needs), and with the test extra on top.
$(BIN)/fsrace: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "fsrace needs Python 3.11 or newer (found $$($(PYTHON) --version))"; exit 1; }
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || \
		{ echo "python3 -m venv failed; installing python3-venv"; \
		  apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	@touch $@

# With the example file system package, whose protocols the tests find by entry point.
$(VENV)/.test-extra: $(BIN)/fsrace examples/fsrace-ntfs3/pyproject.toml
	$(BIN)/pip install -q -e '.[test]' -e examples/fsrace-ntfs3
	@touch $@

demo: $(BIN)/fsrace
	$(BIN)/fsrace demo

# Debian packages some tests need, installed when missing (as root): headless Chromium for
# the HTML report, mkfs tools, FUSE (fuse3 brings
# libfuse3, which mfusepy loads) and fio for fsrace stress, debootstrap and qemu for --vm,
# gcc and the C library (static) for the stress worker. A path is checked as a file.
SYSTEM_DEPS := chromium:chromium chromedriver:chromium-driver mkfs.ext4:e2fsprogs \
	mkfs.xfs:xfsprogs mkfs.btrfs:btrfs-progs fusermount3:fuse3 fio:fio \
	debootstrap:debootstrap qemu-system-x86_64:qemu-system-x86 \
	cc:gcc /usr/include/stdio.h:libc6-dev
system-deps:
	@missing=""; for dep in $(SYSTEM_DEPS); do what=$${dep%%:*}; \
		if [ "$${what#/}" != "$$what" ]; then [ -e "$$what" ]; else command -v $$what >/dev/null; fi \
			|| missing="$$missing $${dep##*:}"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				--no-install-recommends $$missing >/dev/null; \
		else \
			echo "missing$$missing and not root: the tests that need them will be skipped"; \
		fi; \
	fi

test: $(VENV)/.test-extra system-deps
	$(BIN)/ruff check src tests examples
	$(BIN)/mypy
	$(BIN)/pytest -q -m "not slow and not realfs and not vm" -n 2  # two cores: half the wait
	$(BIN)/pytest -q examples/fsrace-ntfs3/tests
	$(BIN)/pytest -q -m realfs
	$(BIN)/pytest -q -m vm
	$(BIN)/pytest -q -m slow -n 2  # two processes: the verdict table alone takes minutes

test-fast: $(VENV)/.test-extra
	$(BIN)/pytest -q -m "not slow and not realfs and not vm" -n 2

lint: $(VENV)/.test-extra
	$(BIN)/ruff check src tests examples
	$(BIN)/mypy

bench: $(VENV)/.test-extra
	$(BIN)/python bench/run.py

bench-stress: $(VENV)/.test-extra system-deps
	$(BIN)/python bench/stress.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache
