"""Durable SA state: the store (SQLite, fsynced), reservations ahead of use, retired keys, a
write failure stopping the SA, counters of a reused index, and SIGKILL of the real worker process
under ESP traffic with resume=true afterwards.

Run just this file: .venv/bin/python -m pytest tests/crypto_worker/test_durable_state.py -q
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from cw_support import Keying, ip_of, p4_decrypt_message, p4_encrypt_message, sa_config, scapy_sa
from grpc_health.v1 import health_pb2, health_pb2_grpc
from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import ESP
from scapy.packet import Raw
from test_worker_process import Switch

from crypto_worker.ciphers import SUITE_BY_ENC_TYPE_NAME
from crypto_worker.drops import DropReason
from crypto_worker.processor import FrameProcessor
from crypto_worker.sa import Direction
from crypto_worker.sa_state import SaStateRefused, SaStateStore, StateStoreError
from crypto_worker.sa_table import SaTable
from crypto_worker.shim import SHIM_BYTES
from tunneloffload.crypto.v1 import worker_pb2 as pb
from tunneloffload.crypto.v1 import worker_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[2]
GCM = SUITE_BY_ENC_TYPE_NAME["_aes256gcm128"]
OUTER = IP(src="203.0.113.1", dst="203.0.113.2")


def _inner(n: int) -> IP:
    return IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=n % 60000 + 1, dport=53) / Raw(b"d" * 30)


def _encrypt_config(index: int = 1, spi: int = 0x7001):
    return sa_config(sa_index=index, spi=spi, direction=Direction.ENCRYPT, suite=GCM,
                     tunnel=True, nat_t=False)


def _decrypt_config(index: int = 2, spi: int = 0x7002):
    return sa_config(sa_index=index, spi=spi, direction=Direction.DECRYPT, suite=GCM,
                     tunnel=True, nat_t=False)


def _wait(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.01)


def test_store_files_are_private_and_hold_no_key(tmp_path: Path) -> None:
    state = tmp_path / "state"
    keys = Keying.random(GCM)
    table = SaTable(SaStateStore.open(state), block=8)
    table.add(_encrypt_config(), keys.keys())
    table.close()
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    for path in state.iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
        content = path.read_bytes()
        assert keys.key not in content and keys.salt not in content


def test_sequence_blocks_are_durable_before_use_and_resume_after_them(tmp_path: Path) -> None:
    keys = Keying.random(GCM)
    table = SaTable(SaStateStore.open(tmp_path), block=16)
    table.add(_encrypt_config(), keys.keys())
    sa = table.get(1)
    assert sa is not None
    processor = FrameProcessor(table)
    message = p4_encrypt_message(_inner(1), sa_index=1, spi=0x7001, tunnel_header=OUTER,
                                 nat_t=False)[0]
    used = []
    for _ in range(40):
        reply = processor.process(message)
        assert reply is not None
        used.append(ip_of(reply[SHIM_BYTES:])[ESP].seq)
        assert max(used) <= sa.reservation.limit  # never above the durable limit
    _wait(lambda: not sa.reservation._pending)
    limit = sa.reservation.limit
    assert 40 < limit <= 40 + 16
    # A crash: the table is gone without remove; a new table on the same directory resumes.
    table._writer.shutdown(wait=True)
    table.store.close()
    again = SaTable(SaStateStore.open(tmp_path), block=16)
    with pytest.raises(SaStateRefused, match="key retired"):
        again.add(_encrypt_config(), keys.keys())  # fresh under a used key: refused
    again.add(_encrypt_config(), keys.keys(), resume=True)
    resumed = again.get(1)
    assert resumed is not None and resumed.next_sequence == limit + 1
    reply = FrameProcessor(again).process(message)
    assert reply is not None and ip_of(reply[SHIM_BYTES:])[ESP].seq == limit + 1
    # Removed: retired, never installed fresh again at any index; a resume of the same SA
    # (what undoing an interrupted rekey needs) continues above the durable limit.
    again.remove(1)
    for index, resume in ((1, False), (5, False), (5, True)):
        with pytest.raises(SaStateRefused, match="key retired|no durable state") as raised:
            again.add(_encrypt_config(index), keys.keys(), resume=resume)
        assert keys.key.hex() not in str(raised.value)
    assert again.get(1) is None and again.get(5) is None
    limit = resumed.reservation.limit
    again.add(_encrypt_config(), keys.keys(), resume=True)
    back = again.get(1)
    assert back is not None and back.next_sequence == limit + 1
    again.remove(1)
    with pytest.raises(SaStateRefused, match="no durable state"):
        again.add(_decrypt_config(), Keying.random(GCM).keys(), resume=True)
    again.close()


def test_replace_retires_the_old_encrypt_key(tmp_path: Path) -> None:
    old, new = Keying.random(GCM), Keying.random(GCM)
    table = SaTable(SaStateStore.open(tmp_path))
    table.add(_encrypt_config(), old.keys())
    with pytest.raises(SaStateRefused, match="key retired"):
        table.replace(_encrypt_config(), old.keys())  # the same key again: refused
    table.replace(_encrypt_config(spi=0x7003), new.keys())
    with pytest.raises(SaStateRefused, match="key retired"):
        table.add(_encrypt_config(9), old.keys())
    table.close()


def test_replay_mark_refuses_everything_accepted_before_a_restart(tmp_path: Path) -> None:
    keys = Keying.random(GCM)
    sender = scapy_sa(GCM, keys, spi=0x7002, tunnel_header=OUTER, nat_t=False)
    frames = [p4_decrypt_message(sender.encrypt(_inner(n), seq_num=n), sa_index=2, tunnel=True,
                                 nat_t=False)[0] for n in range(1, 31)]
    table = SaTable(SaStateStore.open(tmp_path), block=8)
    table.add(_decrypt_config(), keys.keys())
    assert len(FrameProcessor(table).process_batch(frames[:20])) == 20
    sa = table.get(2)
    assert sa is not None and sa.reservation.limit >= 20
    table._writer.shutdown(wait=True)
    table.store.close()
    again = SaTable(SaStateStore.open(tmp_path), block=8)
    again.add(_decrypt_config(), keys.keys(), resume=True)
    resumed = again.get(2)
    assert resumed is not None
    mark = resumed.replay.top  # type: ignore[union-attr]
    assert 20 <= mark <= 20 + 8  # the bound: at most one block of good frames refused
    replies = FrameProcessor(again).process_batch(frames)
    assert len(replies) == 30 - mark
    assert resumed.counters.drops == {DropReason.REPLAY: mark}
    again.close()


class FailingStore(SaStateStore):
    """The real store whose commits start failing on demand (unit-test fault injection)."""

    fail = False

    def _commit(self) -> None:
        if self.fail:
            self._db.execute("ROLLBACK")
            self._db.execute("BEGIN")  # the caller's rollback needs an open transaction
            raise OSError(5, "Input/output error (injected)")
        super()._commit()


def test_a_failed_durable_write_stops_the_sa_at_its_limit(caplog: pytest.LogCaptureFixture) -> None:
    store = FailingStore.in_memory()
    assert isinstance(store, FailingStore)
    table = SaTable(store, block=8)
    table.add(_encrypt_config(), Keying.random(GCM).keys())
    sa = table.get(1)
    assert sa is not None
    store.fail = True
    message = p4_encrypt_message(_inner(1), sa_index=1, spi=0x7001, tunnel_header=OUTER,
                                 nat_t=False)[0]
    with caplog.at_level("ERROR"):
        replies = FrameProcessor(table).process_batch([message] * 20)
        _wait(lambda: not sa.reservation._pending)
        replies += FrameProcessor(table).process_batch([message] * 5)
    sequences = [ip_of(r[SHIM_BYTES:])[ESP].seq for r in replies]
    assert sequences == list(range(1, 9))  # the reserved block, then nothing: never beyond it
    assert sa.counters.drops == {DropReason.STATE_UNAVAILABLE: 17}
    assert any("durable state cannot be written" in r.getMessage() for r in caplog.records)
    with pytest.raises(StateStoreError):
        table.add(_decrypt_config(), Keying.random(GCM).keys())
    assert table.get(2) is None
    table.close()


def test_counters_of_a_reused_index_start_from_zero() -> None:
    table = SaTable()
    keys = Keying.random(GCM)
    sender = scapy_sa(GCM, keys, spi=0x7002, tunnel_header=OUTER, nat_t=False)
    frame = p4_decrypt_message(sender.encrypt(_inner(1), seq_num=1), sa_index=2, tunnel=True,
                               nat_t=False)[0]
    table.add(_decrypt_config(), keys.keys())
    processor = FrameProcessor(table)
    processor.process_batch([frame, frame, frame])  # 1 packet, 2 replays
    final = table.remove(2)
    assert (final.packets, final.drops) == (1, {DropReason.REPLAY: 2})
    table.add(_decrypt_config(spi=0x7004), Keying.random(GCM).keys())
    fresh = table.get(2)
    assert fresh is not None
    assert (fresh.counters.packets, fresh.counters.bytes, fresh.counters.drops) == (0, 0, {})
    table.close()


# --- the real worker process, SIGKILLed under traffic ---------------------------------------

def _start(tmp_path: Path, state: Path) -> tuple[subprocess.Popen[bytes], grpc.Channel]:
    sa_socket = tmp_path / "sa.sock"
    process = subprocess.Popen(
        [sys.executable, "-m", "crypto_worker", "--sa-socket", str(sa_socket), "--nanomsg",
         f"ipc://{tmp_path}/crypto-port.ipc", "--state-dir", str(state),
         "--sequence-block", "64", "--log-level", "WARNING"],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    channel = grpc.insecure_channel(f"unix:{sa_socket}")
    health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=20,
                                              wait_for_ready=True)
    return process, channel


def test_sigkill_under_traffic_then_resume_reuses_no_sequence_and_accepts_no_replay(
    tmp_path: Path,
) -> None:
    switch = Switch(f"ipc://{tmp_path}/crypto-port.ipc")
    out_keys, in_keys = Keying.random(GCM), Keying.random(GCM)
    params = {
        10: pb.SaParams(sa_index=10, spi=0x100A, direction=pb.DIRECTION_ENCRYPT,
                        cipher=pb.Cipher.Value(GCM.proto_name), mode=pb.MODE_TUNNEL),
        11: pb.SaParams(sa_index=11, spi=0x100B, direction=pb.DIRECTION_DECRYPT,
                        cipher=pb.Cipher.Value(GCM.proto_name), mode=pb.MODE_TUNNEL),
    }
    keys = {10: pb.SaKey(key=out_keys.key, salt=out_keys.salt),
            11: pb.SaKey(key=in_keys.key, salt=in_keys.salt)}
    sender = scapy_sa(GCM, in_keys, spi=0x100B, tunnel_header=OUTER, nat_t=False)
    inbound = {n: p4_decrypt_message(sender.encrypt(_inner(n), seq_num=n), sa_index=11,
                                     tunnel=True, nat_t=False)[0] for n in range(1, 400)}
    outbound = p4_encrypt_message(_inner(0), sa_index=10, spi=0x100A, tunnel_header=OUTER,
                                  nat_t=False)[0]
    state = tmp_path / "state"
    emitted: list[tuple[int, int]] = []
    accepted = 0
    process, channel = _start(tmp_path, state)
    try:
        stub = pb_grpc.CryptoWorkerStub(channel)
        for index in (10, 11):
            stub.AddSa(pb.AddSaRequest(params=params[index], key=keys[index]))
        for n in range(1, 151):  # traffic both ways, then SIGKILL with more in flight
            switch.send(outbound)
            switch.send(inbound[n])
        for _ in range(300):
            raw = switch.receive()
            if raw[1] == 1:  # shim op ENCRYPT
                reply = ip_of(raw[SHIM_BYTES:])
                emitted.append((reply[ESP].spi, reply[ESP].seq))
            else:
                accepted += 1
        for _ in range(50):
            switch.send(outbound)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        channel.close()
    try:
        switch.socket.recv_timeout = 500
        while True:  # whatever the worker sent before it died
            raw = switch.receive()
            reply = ip_of(raw[SHIM_BYTES:])
            emitted.append((reply[ESP].spi, reply[ESP].seq))
    except Exception:  # noqa: BLE001 - pynng.Timeout: nothing more in flight
        pass
    switch.socket.recv_timeout = 5000
    assert accepted == 150

    process, channel = _start(tmp_path, state)
    try:
        stub = pb_grpc.CryptoWorkerStub(channel)
        with pytest.raises(grpc.RpcError) as raised:  # a fresh SA under the used key
            stub.AddSa(pb.AddSaRequest(params=params[10], key=keys[10]))
        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "key retired" in raised.value.details()
        for index in (10, 11):
            stub.AddSa(pb.AddSaRequest(params=params[index], key=keys[index], resume=True))
        for n in range(1, 151):  # every old frame replayed: all refused
            switch.send(inbound[n])
        for _ in range(100):
            switch.send(outbound)
        for _ in range(100):
            reply = ip_of(switch.receive()[SHIM_BYTES:])
            emitted.append((reply[ESP].spi, reply[ESP].seq))
        # Traffic passes again: new inbound frames above the durable mark are accepted.
        info = {s.params.sa_index: s for s in stub.ListSas(pb.ListSasRequest()).sas}
        mark = info[11].replay_top
        assert 150 <= mark <= 150 + 64
        switch.send(inbound[mark + 1])
        opened = switch.receive()
        assert opened[1] == 2 and opened[SHIM_BYTES + 14 + 20 + 8 :] == bytes(_inner(mark + 1))
        counters = {c.sa_index: c for c in stub.GetCounters(pb.GetCountersRequest()).sas}
        drops = {pb.DropReason.Name(d.reason): d.packets for d in counters[11].drops}
        assert drops == {"DROP_REASON_REPLAY": 150}
        assert counters[11].packets == 1 and counters[10].packets == 100
    finally:
        channel.close()
        process.terminate()
        process.wait(timeout=10)
        switch.socket.close()
    assert len(emitted) == len(set(emitted)) >= 250  # every (SPI, sequence) pair unique
    peer = scapy_sa(GCM, out_keys, spi=0x100A, tunnel_header=OUTER, nat_t=False)
    assert bytes(peer.decrypt(reply)) == bytes(_inner(0))  # and still decrypts
