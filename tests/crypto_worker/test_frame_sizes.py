"""Every frame length class through the real packet path (FrameProcessor.process_batch, real SAs,
real AES): legal frames up to the MTU are encrypted and decrypt with scapy, larger results are
dropped and counted as OVERSIZE, garbage of any length is counted as MALFORMED, an unforeseen
error drops only its frame (INTERNAL), and the next good frame always passes.

Run just this file: .venv/bin/python -m pytest tests/crypto_worker/test_frame_sizes.py -q
"""

from __future__ import annotations

import os

import pytest
from cw_support import Keying, ip_of, p4_decrypt_message, p4_encrypt_message, sa_config, scapy_sa
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw

from crypto_worker.ciphers import SUITE_BY_ENC_TYPE_NAME
from crypto_worker.drops import DropReason
from crypto_worker.esp import DEFAULT_MTU, MAX_FRAME
from crypto_worker.processor import FrameProcessor
from crypto_worker.sa import Direction
from crypto_worker.sa_table import SaTable
from crypto_worker.shim import SHIM_BYTES

GCM16 = SUITE_BY_ENC_TYPE_NAME["_aes256gcm128"]
ENCRYPT_SPI, DECRYPT_SPI = 0x5001, 0x5002
ETH, IPV4, ESP_OVERHEAD = 14, 20, 8 + 8 + 16  # ESP header, IV, ICV (trailer added below)


def _packet(total: int) -> IP:
    """An IPv4/UDP packet of exactly `total` bytes."""
    return IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / Raw(b"z" * (total - 28))


def _sealed_ip_length(total: int) -> int:
    """The IP length of the worker's transport-mode result for a `total`-byte packet."""
    payload = total - IPV4
    return IPV4 + ESP_OVERHEAD + payload + 2 + (-(payload + 2) % 4)


def _largest_legal(mtu: int) -> int:
    return max(t for t in range(mtu - 64, mtu + 1) if _sealed_ip_length(t) <= mtu)


class Rig:
    def __init__(self, mtu: int = DEFAULT_MTU) -> None:
        self.out_keys, self.in_keys = Keying.random(GCM16), Keying.random(GCM16)
        self.table = SaTable()
        self.table.add(sa_config(sa_index=1, spi=ENCRYPT_SPI, direction=Direction.ENCRYPT,
                                 suite=GCM16, tunnel=False, nat_t=False), self.out_keys.keys())
        self.table.add(sa_config(sa_index=2, spi=DECRYPT_SPI, direction=Direction.DECRYPT,
                                 suite=GCM16, tunnel=False, nat_t=False), self.in_keys.keys())
        self.processor = FrameProcessor(self.table, mtu=mtu)
        self.peer_out = scapy_sa(GCM16, self.out_keys, spi=ENCRYPT_SPI, tunnel_header=None,
                                 nat_t=False)
        self.peer_in = scapy_sa(GCM16, self.in_keys, spi=DECRYPT_SPI, tunnel_header=None,
                                nat_t=False)
        self.inbound_seq = 0

    def encrypt_message(self, total: int) -> bytes:
        return p4_encrypt_message(_packet(total), sa_index=1, spi=ENCRYPT_SPI,
                                  tunnel_header=None, nat_t=False)[0]

    def decrypt_message(self, total: int) -> bytes:
        self.inbound_seq += 1
        esp = self.peer_in.encrypt(_packet(total), seq_num=self.inbound_seq)
        return p4_decrypt_message(esp, sa_index=2, tunnel=False, nat_t=False)[0]

    def drops(self, sa_index: int) -> dict[DropReason, int]:
        sa = self.table.get(sa_index)
        assert sa is not None
        return dict(sa.counters.drops)

    def assert_good_frames_pass(self) -> None:
        """A small frame each way still comes back, transformed correctly."""
        replies = self.processor.process_batch([self.encrypt_message(100),
                                                self.decrypt_message(100)])
        assert len(replies) == 2
        opened = self.peer_out.decrypt(ip_of(replies[0][SHIM_BYTES:]))
        assert bytes(opened) == bytes(_packet(100))
        assert ip_of(replies[1][SHIM_BYTES:]).len == 100 + 8  # P4 removes the ESP header


LEGAL = _largest_legal(DEFAULT_MTU)
# Packet lengths from the smallest IP packet to the largest that fits a 65,535-byte frame after
# P4's ESP header (14 + total + 8 <= 65,535), with every boundary of the MTU and the IP length.
ENCRYPT_TOTALS = [28, 29, 30, 31, 64, 1500, LEGAL - 1, LEGAL, LEGAL + 1, LEGAL + 2, 9000,
                  9001, 16384, 65000, 65466, 65467, 65499, 65500, 65501, MAX_FRAME - ETH - 8]


@pytest.mark.parametrize("total", ENCRYPT_TOTALS)
def test_encrypt_every_length_class(total: int) -> None:
    rig = Rig()
    replies = rig.processor.process_batch([rig.encrypt_message(total)])
    if _sealed_ip_length(total) <= DEFAULT_MTU:
        (reply,) = replies
        assert ip_of(reply[SHIM_BYTES:]).len == _sealed_ip_length(total)
        assert bytes(rig.peer_out.decrypt(ip_of(reply[SHIM_BYTES:]))) == bytes(_packet(total))
        assert rig.drops(1) == {}
    else:
        assert replies == []
        assert rig.drops(1) == {DropReason.OVERSIZE: 1}
        sa = rig.table.get(1)
        assert sa is not None and sa.next_sequence == 1  # no sequence number spent on it
    rig.assert_good_frames_pass()


def test_the_65500_byte_frame_of_the_issue_is_dropped_and_the_loop_goes_on() -> None:
    """Formerly OverflowError in ipv4_header_with_length, which killed the packet thread."""
    rig = Rig(mtu=65535)  # even with the largest MTU: the IPv4 length field cannot hold it
    assert _sealed_ip_length(65500) > 65535
    assert rig.processor.process_batch([rig.encrypt_message(65500)] * 3) == []
    assert rig.drops(1) == {DropReason.OVERSIZE: 3}
    rig.assert_good_frames_pass()


@pytest.mark.parametrize("mtu", [1280, 1500, 9000])
def test_the_mtu_is_configurable(mtu: int) -> None:
    rig = Rig(mtu=mtu)
    legal = _largest_legal(mtu)
    replies = rig.processor.process_batch([rig.encrypt_message(legal),
                                           rig.encrypt_message(legal + 1)])
    assert len(replies) == 1 and ip_of(replies[0][SHIM_BYTES:]).len == _sealed_ip_length(legal)
    assert rig.drops(1) == {DropReason.OVERSIZE: 1}


@pytest.mark.parametrize("total", [100, 8900, 8992, 8993, 9100, 20000, 65400])
def test_decrypt_result_over_the_mtu_is_dropped(total: int) -> None:
    rig = Rig()
    replies = rig.processor.process_batch([rig.decrypt_message(total)])
    if total + 8 <= DEFAULT_MTU:  # the ESP header stays for P4 to remove
        assert len(replies) == 1 and ip_of(replies[0][SHIM_BYTES:]).len == total + 8
        assert rig.drops(2) == {}
    else:
        assert replies == [] and rig.drops(2) == {DropReason.OVERSIZE: 1}
    rig.assert_good_frames_pass()


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 30, 33, 34, 35, 60, 1514, 9014, 65535,
                                    MAX_FRAME + SHIM_BYTES])
def test_garbage_of_any_length_is_counted_and_never_stops_the_loop(length: int) -> None:
    rig = Rig()
    garbage = os.urandom(length)
    good_shim = rig.encrypt_message(100)[:SHIM_BYTES]
    messages = [garbage, good_shim + garbage, rig.decrypt_message(100)[:SHIM_BYTES] + garbage]
    replies = rig.processor.process_batch(messages)
    assert replies == []  # random bytes never pass as a frame or authenticate
    total_drops = (sum(rig.drops(1).values()) + sum(rig.drops(2).values())
                   + sum(rig.table.unattributed_drops.values())
                   + sum(rig.table.unknown_sa_drops.values()))
    assert total_drops == 3
    assert DropReason.INTERNAL not in rig.drops(1) | rig.drops(2)
    rig.assert_good_frames_pass()


def test_an_unforeseen_error_drops_only_its_frame_as_internal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig()
    sa = rig.table.get(1)
    assert sa is not None
    real_aead = sa.aead

    class Broken:  # a fault the ESP code does not foresee (unit-test double)
        def seal(self, *_: object) -> bytes:
            raise RuntimeError("injected fault")

    sa.aead = Broken()  # type: ignore[assignment]
    with caplog.at_level("ERROR", logger="crypto_worker.processor"):
        assert rig.processor.process_batch([rig.encrypt_message(100)] * 4) == []
        assert rig.processor.process(rig.encrypt_message(100)) is None
    assert rig.drops(1) == {DropReason.INTERNAL: 5}
    assert len([r for r in caplog.records if "internal error" in r.getMessage()]) == 1
    sa.aead = real_aead
    rig.assert_good_frames_pass()
