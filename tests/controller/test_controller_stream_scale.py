"""createIpTunnel streams at scale: 100,000 requests in bounded controller memory, the capacity
rule exact across batches, nothing applied for a client that leaves mid-stream, server-allocated
ids the same in both passes, validation cost linear in the stream.

Run just this file: .venv/bin/python -m pytest tests/controller/test_controller_stream_scale.py -q
(the 100,000-request test takes about a minute on two loaded cores).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from ctl_builders import (
    delete,
    hex_key,
    ipsec_dec,
    ipsec_enc,
    match_ipv4,
    update_enc_sa,
)
from ctl_client import all_tunnels

from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb

GROUP = 5  # requests per group of the large stream (below)
# Peak RSS growth allowed for the 100,000-request stream (controller and client share this
# process). Holding the stream as a list of messages (the design before the spool) peaked at
# about +240 MiB here; the spooled stream at about +40 MiB (docs/operations.md).
MAX_GROWTH_MIB = 100


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


def _group(number: int) -> Iterator[pb.ipTunnelRequest]:
    """Five requests that leave the table as they found it: CREATE a decrypt and an encrypt
    tunnel, rekey the encrypt one, DELETE both."""
    decrypt, encrypt = 2 * number + 1, 2 * number + 2
    yield ipsec_dec(decrypt, spi=0x10000 + number,
                    match=match_ipv4(source=f"10.{number >> 16}.{(number >> 8) & 255}."
                                            f"{number & 255}"))
    yield ipsec_enc(encrypt, spi=0x100000 + number, key=hex_key())
    yield update_enc_sa(encrypt, spi=0x200000 + number, key=hex_key())
    yield delete(decrypt)
    yield delete(encrypt)


async def _stream(groups: int) -> AsyncIterator[pb.ipTunnelRequest]:
    for number in range(groups):
        for request in _group(number):
            yield request


async def test_a_100000_request_stream_runs_in_bounded_memory(v1) -> None:
    groups = 100_000 // GROUP
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS from here on
    before = _rss_kib("VmRSS")
    answer = await v1.createIpTunnel(_stream(groups), timeout=600)
    growth_mib = (_rss_kib("VmHWM") - before) / 1024
    assert (answer.requestStatus, answer.errorStatus) == (pb._TUNNEL_ACCEPTED, 0)
    assert len(answer.responses) == 100_000
    expected = [tunnel_id for number in range(groups)
                for tunnel_id in (2 * number + 1, 2 * number + 2, 2 * number + 2,
                                  2 * number + 1, 2 * number + 2)]
    assert [item.tunnelId for item in answer.responses] == expected  # in request order
    assert not any(item.HasField("error") for item in answer.responses)
    assert await all_tunnels(v1) == []
    assert growth_mib < MAX_GROWTH_MIB, f"peak RSS grew {growth_mib:.0f} MiB"
