# TunnelOffload build and test entry points. Every target builds what it needs into .venv first,
# so `make test` and `make run` work on a fresh clone.
PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(VENV)/bin/pip
PROTOS  := $(shell find proto -name '*.proto' | sort)
STAMP   := $(VENV)/.installed-stamp
GEN_STAMP := tunneloffload/.generated-stamp

.PHONY: all venv proto test test-unit lint run clean

all: proto

# The virtual environment, rebuilt whenever the pins in pyproject.toml change.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]' --config-settings editable_mode=compat
	touch $@

venv: $(STAMP)

# Python stubs for every .proto under proto/, generated (never checked in) by the pinned
# grpcio-tools into the `tunneloffload` package at the top of the tree.
$(GEN_STAMP): $(STAMP) $(PROTOS)
	rm -rf tunneloffload
	$(PY) -m grpc_tools.protoc -I proto --python_out=. --grpc_python_out=. --pyi_out=. $(PROTOS)
	find tunneloffload -type d -exec touch {}/__init__.py \;
	touch $@

proto: $(GEN_STAMP)

test: test-unit

test-unit: proto
	$(PY) -m pytest -q

lint: proto
	$(VENV)/bin/ruff check controller p4sim crypto_worker tunnelctl tests ptf_tests bench

clean:
	rm -rf $(VENV) tunneloffload .pytest_cache build *.egg-info
