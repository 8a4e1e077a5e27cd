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

# PTF suites on p4sim (ptf_tests/run_on_p4sim.sh starts `p4sim run` on the suite's program,
# polls its ready line, runs PTF over BMv2's nanomsg packet protocol, stops the switch however it
# ends): the smoke test of p4sim itself (a small IPv4 router), then the data-plane suite of p4src/
# (ports 0-7 and the crypto port 64). Both program the switch over P4Runtime.
.PHONY: test-ptf
test-ptf: proto
	VENV=$(VENV) PY=$(PY) TEST_DIR=ptf_tests/smoke PROGRAM=ptf_tests/smoke/router.p4 PORTS=0-7 \
	  ptf_tests/run_on_p4sim.sh
	VENV=$(VENV) PY=$(PY) ptf_tests/dataplane/run.sh

# End-to-end PTF suite (ptf_tests/e2e/run.sh): p4sim, the crypto worker and the controller on
# free ports with a temporary state directory; the tests are TunnelOffload API clients that send
# and check real packets. E2E_TESTS picks tests, e.g. `make test-e2e E2E_TESTS=e2e_rekey`.
E2E_TESTS ?=
.PHONY: test-e2e
test-e2e: proto
	VENV=$(VENV) PY=$(PY) ptf_tests/e2e/run.sh $(E2E_TESTS)

lint: proto
	$(VENV)/bin/ruff check controller p4sim p4rt_wire process_tuning crypto_worker tunnelctl tests ptf_tests bench examples scripts
	$(VENV)/bin/mypy controller crypto_worker tunnelctl p4sim p4rt_wire process_tuning

# The data plane: `p4` regenerates the checked-in P4Info of p4src/ (commit it with the source
# change; tests/p4src/test_p4info.py fails when they drift), `p4-check` runs p4sim's front end.
P4_PROGRAM ?= p4src/tunnel_offload.p4
.PHONY: p4 p4-check
p4: proto
	$(PY) -m p4sim p4info $(P4_PROGRAM) -o $(P4_PROGRAM:.p4=.p4info.txtpb)

p4-check: proto
	$(PY) -m p4sim check $(P4_PROGRAM)

# Benchmarks (ratios against a baseline measured in the same run): p4sim vs a hand-written
# router, and the crypto worker vs the bare AEAD call.
.PHONY: bench bench-p4sim
bench: bench-p4sim bench-crypto bench-control bench-packets

bench-p4sim: proto
	$(PY) -m bench.p4sim.router_bench

# Control plane at scale (docs/operations.md "Capacity and speed"): the controller with the full
# data plane on p4sim and detached, against an in-repo API server that only stores requests
# (bench/control/run.py); then p4sim's own write batch, counter reads and packets/s at 10 vs
# 60,000 tunnels (bench/control/p4sim_scale.py); then the bare worker and P4Runtime round trips
# every single-request CREATE pays (bench/control/round_trips.py). BENCH_CONTROL_ARGS scales the first, e.g.
# "--stream-small 500 --stream-large 2000 --singles 100 --stats-small 500 --stats-large 2000".
BENCH_CONTROL_ARGS ?=
.PHONY: bench-control
bench-control: proto
	$(PY) -m bench.control.run $(BENCH_CONTROL_ARGS)
	$(PY) -m bench.control.p4sim_scale
	$(PY) -m bench.control.round_trips

# Packets/s end to end through the processes `make run` starts (p4sim, crypto worker,
# controller) for plain, Geneve encap, IPsec encrypt and decrypt, 128 and 1,400 bytes, every output
# checked, each with its ratio to the in-process pipeline (p4sim's Switch.process) in the same run.
# BENCH_PACKETS_ARGS adds options, e.g. "--extra-tunnels 60000" (that many more tunnels installed
# first) or "--extra-tunnels 0,60000 --cases plain,encrypt" (each case at both, same processes).
BENCH_PACKET_COUNT ?= 3000
BENCH_PACKETS_ARGS ?=
.PHONY: bench-packets
bench-packets: proto
	$(PY) -m bench.packets.run --packets $(BENCH_PACKET_COUNT) $(BENCH_PACKETS_ARGS)

# A steady rate through an IPsec encrypt tunnel with a `tunnelctl rekey` every 10 s, through the
# same processes: frames lost, in clear, latency p50/p99 (bench/packets/rekey.py).
BENCH_REKEY_ARGS ?= --rate 5000 --seconds 60 --rekey-every 10
.PHONY: bench-rekey
bench-rekey: proto
	$(PY) -m bench.packets.rekey $(BENCH_REKEY_ARGS)

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
