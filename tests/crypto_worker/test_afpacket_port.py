"""The crypto port over AF_PACKET, as on BMv2 with a veth pair: the worker's entry point runs in
a network namespace this test creates, on one end of a veth; the test plays the switch on the
other end and must get its frames back transformed. The namespace is removed in `finally`.

Needs root (CI runs as root); skipped otherwise. Run just this file:
    .venv/bin/python -m pytest tests/crypto_worker/test_afpacket_port.py -q
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cw_support import Keying, ip_of, p4_decrypt_message, p4_encrypt_message, scapy_sa
from grpc_health.v1 import health_pb2, health_pb2_grpc
from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import ESP
from scapy.packet import Raw

from bench.crypto.netns import socket_in_namespace
from crypto_worker.ciphers import SUITE_BY_ENC_TYPE_NAME
from crypto_worker.shim import SHIM_BYTES
from tunneloffload.crypto.v1 import worker_pb2 as pb
from tunneloffload.crypto.v1 import worker_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[2]
SUITE = SUITE_BY_ENC_TYPE_NAME["_aes256ccm128"]
OUTER = IP(src="203.0.113.1", dst="203.0.113.2")
PACKET_OUTGOING = 4

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=30)


@pytest.fixture
def veth_worker(tmp_path: Path) -> Iterator[tuple[socket.socket, pb_grpc.CryptoWorkerStub]]:
    namespace = f"cw-{uuid.uuid4().hex[:8]}"
    try:
        _run("ip", "netns", "add", namespace)
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        pytest.skip(f"cannot create a network namespace here: {error}")
    process = None
    switch_side = None
    channel = None
    try:
        _run("ip", "-n", namespace, "link", "add", "cw-switch", "type", "veth",
             "peer", "name", "cw-crypto")
        for name in ("cw-switch", "cw-crypto"):
            # No IPv6 on the veth: the kernel's own ND/MLD frames would otherwise share the wire.
            knob = f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6"
            _run("ip", "netns", "exec", namespace, "sh", "-c",
                 f"if [ -e {knob} ]; then echo 1 > {knob}; fi")
            _run("ip", "-n", namespace, "link", "set", name, "mtu", "9000", "up")
        sa_socket = str(tmp_path / "sa.sock")
        process = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, "-m", "crypto_worker",
             "--sa-socket", sa_socket, "--interface", "cw-crypto", "--log-level", "WARNING"],
            cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
        channel = grpc.insecure_channel(f"unix:{sa_socket}")
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 20
        while True:  # poll readiness
            assert process.poll() is None, "worker exited"
            try:
                health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                break
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        switch_side = socket_in_namespace(namespace, "cw-switch")
        yield switch_side, pb_grpc.CryptoWorkerStub(channel)
    finally:
        if channel is not None:
            channel.close()
        if switch_side is not None:
            switch_side.close()
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", namespace], check=False, timeout=30)


def _receive(sock: socket.socket, timeout_s: float = 5.0) -> bytes:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], deadline - time.monotonic())
        if not readable:
            break
        frame, address = sock.recvfrom(65535)
        if address[2] != PACKET_OUTGOING and frame[:1] == b"\x01":  # shim version 1
            return frame
    raise AssertionError("no frame came back from the worker")


def test_worker_answers_on_the_veth(
    veth_worker: tuple[socket.socket, pb_grpc.CryptoWorkerStub],
) -> None:
    switch_side, stub = veth_worker
    keys = Keying.random(SUITE)
    for sa_index, spi, direction in ((1, 0x1001, pb.DIRECTION_ENCRYPT),
                                     (2, 0x1002, pb.DIRECTION_DECRYPT)):
        stub.AddSa(pb.AddSaRequest(
            params=pb.SaParams(sa_index=sa_index, spi=spi, direction=direction,
                               cipher=pb.Cipher.Value(SUITE.proto_name), mode=pb.MODE_TUNNEL),
            key=pb.SaKey(key=keys.key, salt=keys.salt)))
    inner = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5, dport=6) / Raw(b"v" * 1400)
    batch = []
    for _ in range(8):  # a burst, so the worker reads more than one frame per wake-up
        message, _ = p4_encrypt_message(inner, sa_index=1, spi=0x1001, tunnel_header=OUTER,
                                        nat_t=False)
        batch.append(message)
    for message in batch:
        switch_side.send(message)
    replies = [_receive(switch_side) for _ in batch]
    peer = scapy_sa(SUITE, keys, spi=0x1001, tunnel_header=OUTER, nat_t=False)
    assert [ip_of(r[SHIM_BYTES:])[ESP].seq for r in replies] == list(range(1, 9))
    assert bytes(peer.decrypt(ip_of(replies[0][SHIM_BYTES:]))) == bytes(inner)

    sender = scapy_sa(SUITE, keys, spi=0x1002, tunnel_header=OUTER, nat_t=False)
    inbound, esp_offset = p4_decrypt_message(sender.encrypt(inner, seq_num=1), sa_index=2,
                                             tunnel=True, nat_t=False)
    switch_side.send(inbound)
    reply = _receive(switch_side)
    assert reply[SHIM_BYTES + esp_offset + 8 :] == bytes(inner)
    assert reply[9] == 4
