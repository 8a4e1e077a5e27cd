"""``p4sim run --pcap DIR``: one pcap per port and direction, read back with scapy.

Run: .venv/bin/python -m pytest tests/p4sim/test_pcap.py -q
"""

from __future__ import annotations

import os
import selectors
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pynng
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from p4sim.ports import NnPacketSocket, PacketPump, PcapCapture
from p4sim.ports.nn_protocol import MsgType, decode, encode_frame

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_MS = 3000

# Every frame leaves on the port after the one it came in on, with its TTL decremented, so the
# out file's frames differ from the in file's.
NEXT_PORT_P4 = """
#include <core.p4>
#include <v1model.p4>
header ethernet_t { bit<48> dst; bit<48> src; bit<16> type; }
header ipv4_t { bit<64> head; bit<8> ttl; bit<8> proto; bit<16> csum; bit<64> addrs; }
struct headers_t { ethernet_t eth; ipv4_t ip; }
struct meta_t { }
parser P(packet_in pkt, out headers_t hdr, inout meta_t m, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.eth); pkt.extract(hdr.ip); transition accept; }
}
control V(inout headers_t hdr, inout meta_t m) { apply { } }
control I(inout headers_t hdr, inout meta_t m, inout standard_metadata_t sm) {
    apply { sm.egress_spec = sm.ingress_port + 1; hdr.ip.ttl = hdr.ip.ttl - 1; }
}
control E(inout headers_t hdr, inout meta_t m, inout standard_metadata_t sm) { apply { } }
control C(inout headers_t hdr, inout meta_t m) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.eth); pkt.emit(hdr.ip); } }
V1Switch(P(), V(), I(), E(), C(), D()) main;
"""


def frames(count: int) -> list[bytes]:
    return [bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                  / IP(src="10.0.0.1", dst="10.0.0.2", ttl=64, id=i) / UDP() / (b"x" * i))
            for i in range(count)]


class Forward:
    def process(self, port: int, frame: bytes) -> list[tuple[int, bytes]]:
        return [(port + 1, frame[::-1])]


def test_dataplane_writes_each_port_in_and_out(tmp_path):
    address = f"ipc://{tmp_path}/dev.ipc"
    capture = PcapCapture(tmp_path / "pcap")
    dataplane = PacketPump(Forward(), device_socket=NnPacketSocket(address), capture=capture)
    dataplane.start()
    sent = frames(20)
    try:
        with pynng.Pair0(dial=address, recv_timeout=TIMEOUT_MS) as ptf:
            for number, frame in enumerate(sent):
                ptf.send(encode_frame(MsgType.PACKET_IN, 1 + number % 2, frame))
            got = [decode(ptf.recv()) for _ in sent]
    finally:
        dataplane.stop()
    assert [m.payload for m in got] == [f[::-1] for f in sent]
    files = sorted(p.name for p in (tmp_path / "pcap").iterdir())
    assert files == ["port1_in.pcap", "port2_in.pcap", "port2_out.pcap", "port3_out.pcap"]
    assert [bytes(p) for p in rdpcap(str(tmp_path / "pcap" / "port1_in.pcap"))] == sent[0::2]
    assert [bytes(p) for p in rdpcap(str(tmp_path / "pcap" / "port2_in.pcap"))] == sent[1::2]
    assert ([bytes(p) for p in rdpcap(str(tmp_path / "pcap" / "port3_out.pcap"))]
            == [f[::-1] for f in sent[1::2]])
    for name in files:
        assert stat.S_IMODE(os.stat(tmp_path / "pcap" / name).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "pcap").st_mode) == 0o700


def test_a_file_is_named_after_the_interface_of_its_port(tmp_path):
    capture = PcapCapture(tmp_path, port_names={5: "veth0"})
    capture.record_out([(5, b"\x00" * 60), (6, b"\x01" * 60)])
    capture.close()
    assert (tmp_path / "veth0_out.pcap").exists() and (tmp_path / "port6_out.pcap").exists()
    assert [bytes(p) for p in rdpcap(str(tmp_path / "veth0_out.pcap"))] == [b"\x00" * 60]


def test_p4sim_run_pcap_captures_what_the_program_did(tmp_path):
    program = tmp_path / "next_port.p4"
    program.write_text(NEXT_PORT_P4)
    address = f"ipc://{tmp_path}/switch.ipc"
    pcap_dir = tmp_path / "captures"
    process = subprocess.Popen(
        [sys.executable, "-m", "p4sim", "run", str(program), "--packet-socket", address,
         "--no-p4runtime", "--pcap", str(pcap_dir)], cwd=REPO, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            if selector.select(timeout=0.1) and process.stdout.readline().startswith("p4sim ready"):
                break
        else:
            raise AssertionError(f"p4sim did not start: {process.stderr.read()}")
        sent = frames(5)
        with pynng.Pair0(dial=address, recv_timeout=TIMEOUT_MS) as ptf:
            for frame in sent:
                ptf.send(encode_frame(MsgType.PACKET_IN, 4, frame))
            got = [decode(ptf.recv()) for _ in sent]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    assert {m.port for m in got} == {5}
    captured_in = rdpcap(str(pcap_dir / "port4_in.pcap"))
    captured_out = rdpcap(str(pcap_dir / "port5_out.pcap"))
    assert [bytes(p) for p in captured_in] == sent
    assert [bytes(p) for p in captured_out] == [m.payload for m in got]
    assert [p[IP].ttl for p in captured_out] == [63] * 5
    assert sorted(p.name for p in pcap_dir.iterdir()) == ["port4_in.pcap", "port5_out.pcap"]
