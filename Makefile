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

test: test-unit test-ptf test-e2e

test-unit: proto system-deps
	$(PY) -m pytest -q

# PTF smoke test of p4sim: start `p4sim run` on the router of ptf_tests/smoke in the background
# (killed by the trap however the recipe ends), poll until it prints its ready line, then run
# PTF over BMv2's nanomsg packet protocol; the test programs the tables over P4Runtime.
# Then the data-plane suite of p4src/ (ptf_tests/dataplane/run.sh, same steps, ports 0-7 and 64).
PTF_SMOKE_PROGRAM ?= ptf_tests/smoke/router.p4
PTF_SMOKE_PORTS   ?= 0-7
.PHONY: test-ptf
test-ptf: proto
	@tmp=$$(mktemp -d); pid=; \
	trap 'test -n "$$pid" && kill $$pid 2>/dev/null; wait 2>/dev/null; rm -rf "$$tmp"' EXIT; \
	set -e; \
	$(PY) -m p4sim p4info $(PTF_SMOKE_PROGRAM) -o "$$tmp/p4info.txt"; \
	$(PY) -m p4sim run $(PTF_SMOKE_PROGRAM) --packet-socket "ipc://$$tmp/p4sim.ipc" \
	  --grpc-addr 127.0.0.1:0 --device-id 1 --log-console >"$$tmp/p4sim.out" 2>"$$tmp/p4sim.log" & \
	pid=$$!; \
	for i in $$(seq 300); do \
	  grep -q '^p4sim ready' "$$tmp/p4sim.out" && break; \
	  kill -0 $$pid 2>/dev/null || { echo "p4sim exited:"; cat "$$tmp/p4sim.log"; exit 1; }; \
	  sleep 0.1; \
	done; \
	port=$$(sed -n 's/.*grpc-port=\([0-9]*\).*/\1/p' "$$tmp/p4sim.out"); \
	test -n "$$port" || { echo "p4sim not ready after 30 s:"; cat "$$tmp/p4sim.log"; exit 1; }; \
	$(VENV)/bin/ptf --platform nn --device-socket "0-{$(PTF_SMOKE_PORTS)}@ipc://$$tmp/p4sim.ipc" \
	  --test-dir ptf_tests/smoke --pypath "$(CURDIR)" --log-file "$$tmp/ptf.log" \
	  --test-params "grpc_addr='127.0.0.1:$$port';device_id=1;p4info='$$tmp/p4info.txt'" \
	  || { echo "--- p4sim log"; tail -n 50 "$$tmp/p4sim.log"; exit 1; }
	VENV=$(VENV) PY=$(PY) ptf_tests/dataplane/run.sh

# End-to-end PTF suite (ptf_tests/e2e/run.sh): p4sim, the crypto worker and the controller on
# free ports with a temporary state directory; the tests are TunnelOffload API clients that send
# and check real packets. E2E_TESTS picks tests, e.g. `make test-e2e E2E_TESTS=e2e_rekey`.
E2E_TESTS ?=
.PHONY: test-e2e
test-e2e: proto
	VENV=$(VENV) PY=$(PY) ptf_tests/e2e/run.sh $(E2E_TESTS)

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

# `make run`: serve the API. BMv2 simple_switch_grpc in Docker when `docker info` works, else the
# embedded target p4sim; TARGET=bmv2|sim forces one. Polls readiness, prints where the API listens
# and the certificate to trust; Ctrl-C stops everything it started (scripts/run.sh, docs/docker.md).
TARGET ?= auto
run: proto
	TARGET=$(TARGET) VENV=$(VENV) scripts/run.sh

# The Docker images of docker/Dockerfile (p4c-compiled BMv2 switch; controller + crypto worker).
IMAGE_TAG ?= dev
.PHONY: images
images:
	docker build --file docker/Dockerfile --target switch --tag tunnel-offload/switch:$(IMAGE_TAG) .
	docker build --file docker/Dockerfile --target app --tag tunnel-offload/app:$(IMAGE_TAG) .
