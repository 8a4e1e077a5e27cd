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

test-unit: proto system-deps
	$(PY) -m pytest -q

lint: proto
	$(VENV)/bin/ruff check controller p4sim crypto_worker tunnelctl tests ptf_tests bench

clean:
	rm -rf $(VENV) tunneloffload .pytest_cache build *.egg-info

# System packages the tests need, from Debian: tshark (the crypto worker's Wireshark interop test)
# and iproute2 (its veth / network-namespace test). Installed non-interactively when missing;
# CI runs as root on a possibly fresh machine. Without root the tests that need them skip.
.PHONY: system-deps
system-deps:
	@if command -v tshark >/dev/null 2>&1 && command -v ip >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends tshark iproute2 >/dev/null; \
	else echo "system-deps: not root, tshark/iproute2 missing; their tests will skip"; fi

# Crypto worker speed: packets/s per core through the real port I/O vs the bare AEAD call.
BENCH_PACKETS ?= 20000
.PHONY: bench-crypto
bench-crypto: proto
	$(PY) bench/crypto/run.py --packets $(BENCH_PACKETS)
