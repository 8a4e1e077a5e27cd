"""Interop with Wireshark's ESP dissector (tshark; its own C code on libgcrypt).

Every AES-GCM ENC_TYPE (ICV 8, 12, 16; AES-128 and AES-256) in every mode (transport, tunnel,
both with NAT-T; IPv4 and IPv6): the worker encrypts, the frames go into a pcap, and tshark, given
the SAs in its `esp_sa` table, decrypts each one to the original payload with the ICV reported
correct. A frame with one ICV bit flipped must be reported bad, so the ICV check is real.
Wireshark 4.0 decrypts no AES-CCM ESP, so CCM is covered by the scapy tests only.

Needs tshark (`make tshark`, Debian package). Run just this file:
    .venv/bin/python -m pytest tests/crypto_worker/test_tshark_interop.py -q
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import pytest
from cw_support import Keying, p4_encrypt_message, sa_config, worker_with
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from crypto_worker.ciphers import SUITES, AeadAlgorithm
from crypto_worker.sa import Direction
from crypto_worker.shim import SHIM_BYTES

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark missing: run `make tshark`")

GCM_SUITES = [s for s in SUITES if s.algorithm is AeadAlgorithm.GCM]
MODES = [(False, False), (False, True), (True, False), (True, True)]  # (tunnel, nat_t)
FIELDS = ["frame.number", "esp.spi", "esp.sequence", "esp.icv_good", "esp.icv_bad",
          "esp.protocol", "esp.pad", "esp.contained_data"]


def _uat_record(version: int, spi: int, icv_bytes: int, key: bytes) -> str:
    """One esp_sa row of tshark 4.0: protocol, src, dst, SPI, encryption, key, auth, auth key."""
    algorithm = f"AES-GCM with {icv_bytes} octet ICV [RFC4106]"
    return (
        f'uat:esp_sa:"IPv{version}","*","*","0x{spi:08x}","{algorithm}","0x{key.hex()}",'
        '"NULL",""'
    )


def _packet(version: int, index: int) -> IP | IPv6:
    body = Raw(f"tshark interop packet {index}".encode())
    if version == 4:
        return IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=1000 + index, dport=9) / body
    return IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1000 + index, dport=9) / body


def test_tshark_decrypts_and_verifies_every_gcm_suite_and_mode(tmp_path: Path) -> None:
    frames: list[Ether] = []
    expected: dict[int, tuple[int, bytes, int]] = {}  # spi -> (next header, plaintext, seq)
    options: list[str] = []
    for number, (suite, version, (tunnel, nat_t)) in enumerate(
        itertools.product(GCM_SUITES, (4, 6), MODES)
    ):
        spi = 0x5000 + number
        keying = Keying.random(suite)
        config = sa_config(sa_index=1, spi=spi, direction=Direction.ENCRYPT, suite=suite,
                           tunnel=tunnel, nat_t=nat_t)
        _, processor = worker_with((config, keying.keys()))
        outer = None
        if tunnel:
            outer = IP(src="203.0.113.1", dst="203.0.113.2") if version == 4 else IPv6(
                src="2001:db8:ff::1", dst="2001:db8:ff::2")
        packet = _packet(version, number)
        message, _ = p4_encrypt_message(packet, sa_index=1, spi=spi, tunnel_header=outer,
                                        nat_t=nat_t)
        processor.process(message)  # sequence 1 is not sent: tshark must find sequence 2
        reply = processor.process(message)
        assert reply is not None
        frames.append(Ether(reply[SHIM_BYTES:]))
        if tunnel:
            expected[spi] = (4 if version == 4 else 41, bytes(packet), 2)
        else:
            expected[spi] = (17, bytes(packet[UDP]), 2)
        options += ["-o", _uat_record(version, spi, suite.icv_bytes, keying.key + keying.salt)]
    tampered = bytearray(bytes(frames[0]))
    tampered[-1] ^= 0x01
    frames.append(Ether(bytes(tampered)))
    pcap = tmp_path / "worker-esp.pcap"
    wrpcap(str(pcap), frames)

    assert TSHARK is not None
    command = [TSHARK, "-n", "-r", str(pcap),
               "-o", "esp.enable_encryption_decode:TRUE",
               "-o", "esp.enable_authentication_check:TRUE",
               *options, "-T", "fields", "-E", "separator=|"]
    for field in FIELDS:
        command += ["-e", field]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    rows = [line.split("|") for line in result.stdout.strip().splitlines()]
    assert len(rows) == len(frames)
    for row in rows[:-1]:
        _, spi_text, sequence, good, bad, next_header, pad, contained = row
        spi = int(spi_text, 16)
        wanted_next_header, plaintext, wanted_sequence = expected.pop(spi)
        assert (good, bad) == ("1", "0"), f"ICV not verified for SPI 0x{spi:x}: {row}"
        assert int(sequence, 0) == wanted_sequence
        assert int(next_header, 0) == wanted_next_header
        assert bytes.fromhex(pad) == bytes(range(1, len(bytes.fromhex(pad)) + 1))
        assert bytes.fromhex(contained) == plaintext
    assert expected == {}
    tampered_row = rows[-1]
    assert (tampered_row[3], tampered_row[4]) == ("0", "1"), tampered_row
