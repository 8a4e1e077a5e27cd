"""State and secrets: restart persistence, keys sealed at rest, never in logs, errors, reads or
reprs, and the store key's file permissions.

Run just this file: .venv/bin/python -m pytest tests/controller/test_controller_state.py -q
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import pytest
from ctl_builders import geneve_decap, geneve_encap, ipsec_dec, ipsec_enc, match_ipv4
from ctl_client import all_tunnels, create, tls_channel, wait_serving

from controller.keys import SaKey
from controller.sealing import KeySealer, SealingError, load_or_create_store_key
from controller.store import DATABASE_FILE
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc

# Recognisable key material: raw AES-256 + GCM salt, and a hex-text key.
RAW_KEY = bytes(range(0xA0, 0xA0 + 36))
HEX_KEY = os.urandom(32).hex().encode()


def _forms(key: bytes) -> list[bytes]:
    """Every way the key could leak: raw, hex (both cases), and the decoded bytes of hex."""
    forms = [key, key.hex().encode(), key.hex().upper().encode()]
    try:
        decoded = bytes.fromhex(key.decode())
        forms += [decoded, decoded[:16]]
    except (UnicodeDecodeError, ValueError):
        forms.append(key[:16])
    return forms


async def _populate(stub: pb_grpc.ipTunnelServiceStub) -> None:
    response = await create(
        stub,
        ipsec_dec(1, spi=780, key=HEX_KEY),
        geneve_encap(2, match=match_ipv4(tunnel_id=1)),
        geneve_decap(3),
        ipsec_enc(4, spi=4587, key=RAW_KEY, match=match_ipv4(tunnel_id=3)),
    )
    assert response.errorStatus == 0


async def test_restart_keeps_every_tunnel_and_key(start_controller, state_dir: Path) -> None:
    first = await start_controller()
    async with tls_channel(first) as channel:
        await wait_serving(channel)
        stub = pb_grpc.ipTunnelServiceStub(channel)
        await _populate(stub)
        before = [item.SerializeToString() for item in await all_tunnels(stub)]
    await first.stop(grace=None)

    second = await start_controller()  # same state dir
    async with tls_channel(second) as channel:
        await wait_serving(channel)
        stub = pb_grpc.ipTunnelServiceStub(channel)
        assert [item.SerializeToString() for item in await all_tunnels(stub)] == before
        # The chaining graph survived: deleting the chained-from tunnel is still refused.
        refused = await create(stub, pb.ipTunnelRequest(tunnelId=1, operation=pb._DELETE))
        assert "chained from by tunnel(s) 2" in refused.responses[0].error.errorString
    decrypt_sa = second.store.tunnels[1].security_associations[0]
    assert decrypt_sa.secret.reveal_key() == bytes.fromhex(HEX_KEY.decode())
    assert decrypt_sa.secret.reveal_salt() == bytes(4)  # salt-less key: all-zero salt
    encrypt_sa = second.store.tunnels[4].security_associations[0]
    assert (encrypt_sa.secret.reveal_key(), encrypt_sa.secret.reveal_salt()) == (
        RAW_KEY[:32], RAW_KEY[32:])


async def test_keys_never_in_logs_reads_errors_or_database(
        start_controller, state_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    controller = await start_controller(log_wire=True)
    async with tls_channel(controller) as channel:
        await wait_serving(channel)
        stub = pb_grpc.ipTunnelServiceStub(channel)
        await _populate(stub)
        bad_key = bytes(range(0x40, 0x40 + 30))
        refused = await create(stub, ipsec_enc(5, spi=5000, key=bad_key))
        assert refused.responses[0].error.errorMessage.ipsecError == pb.invalidKey
        reads = [item.SerializeToString() for item in await all_tunnels(stub)]
        reads.append((await stub.getIpTunnel(pb.tunnelId(tunnelId=4))).SerializeToString())
        reads.append(refused.SerializeToString())
    await controller.stop(grace=None)

    assert "controller.wire" in caplog.text and "<redacted>" in caplog.text
    state_bytes = b"".join(path.read_bytes() for path in state_dir.rglob("*")
                           if path.is_file() and path.name != "store.key")
    for key in (HEX_KEY, RAW_KEY, bad_key):
        for form in _forms(key):
            assert form.decode("latin-1") not in caplog.text
            assert all(form not in read for read in reads)
            assert form not in state_bytes
    assert (state_dir / DATABASE_FILE).stat().st_mode & 0o777 == 0o600
    rows = sqlite3.connect(state_dir / DATABASE_FILE).execute(
        "SELECT count(*) FROM sealed_keys").fetchone()
    assert rows == (2,)


def test_secret_repr_hides_the_key() -> None:
    secret = SaKey(key=RAW_KEY[:32], salt=RAW_KEY[32:])
    assert repr(secret) == str(secret) == f"{secret}" == "<secret len=36>"
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(secret)


def test_sealed_key_is_bound_to_its_tunnel_and_spi(tmp_path: Path) -> None:
    sealer = KeySealer(load_or_create_store_key(tmp_path))
    secret = SaKey(key=RAW_KEY[:32], salt=RAW_KEY[32:])
    sealed = sealer.seal(secret, tunnel_id=7, spi=780)
    assert RAW_KEY[:16] not in sealed
    assert sealer.open(sealed, tunnel_id=7, spi=780) == secret
    for tunnel_id, spi in ((8, 780), (7, 781)):
        with pytest.raises(SealingError):
            sealer.open(sealed, tunnel_id=tunnel_id, spi=spi)
    other = KeySealer(os.urandom(32))
    with pytest.raises(SealingError):
        other.open(sealed, tunnel_id=7, spi=780)


def test_store_key_file_is_private(tmp_path: Path) -> None:
    key = load_or_create_store_key(tmp_path)
    path = tmp_path / "store.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_store_key(tmp_path) == key
    path.chmod(0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        load_or_create_store_key(tmp_path)


async def test_a_moved_sealed_key_stops_the_start(start_controller, state_dir: Path) -> None:
    first = await start_controller()
    async with tls_channel(first) as channel:
        await wait_serving(channel)
        await _populate(pb_grpc.ipTunnelServiceStub(channel))
    await first.stop(grace=None)
    with sqlite3.connect(state_dir / DATABASE_FILE) as db:
        [blob] = db.execute("SELECT sealed FROM sealed_keys WHERE tunnel_id = '1'").fetchone()
        db.execute("UPDATE sealed_keys SET sealed = ? WHERE tunnel_id = '4'", (blob,))
    with pytest.raises(SealingError, match="tunnel 4 spi 4587"):
        await start_controller()


def test_a_crash_mid_stream_is_reported_at_the_next_start(tmp_path: Path, caplog) -> None:
    """Journal rows left by a run that stopped between a request's data-plane writes and its
    answer are logged at the next start (applied-but-unacknowledged, or interrupted), then
    cleared; a clean stream leaves none."""
    from controller.dataplane import TunnelChange
    from controller.model import Operation
    from controller.store import TunnelStore

    sealer = KeySealer(load_or_create_store_key(tmp_path))
    path = tmp_path / DATABASE_FILE
    store = TunnelStore(path, sealer)
    tunnel = _tunnel(41)
    applied = TunnelChange(operation=Operation.CREATE, before=None, after=tunnel)
    store.stage(applied, store.journal_begin("s1", 0, applied)).commit()
    interrupted = TunnelChange(operation=Operation.CREATE, before=None, after=_tunnel(42))
    store.journal_begin("s1", 1, interrupted)
    store.stage(interrupted)  # never committed: the process "dies" here
    store.close()

    caplog.set_level(logging.WARNING, logger="controller.store")
    store = TunnelStore(path, sealer)
    messages = [record.getMessage() for record in caplog.records]
    assert any("stream s1 request 0 (CREATE tunnel 41) was applied but never acknowledged"
               in message for message in messages), messages
    assert any("stream s1 request 1 (CREATE tunnel 42) was being applied" in message
               and "not committed" in message for message in messages), messages
    assert sorted(store.tunnels) == [41]
    assert store.journal() == []
    store.close()


def test_retired_fingerprints_are_keyed_and_persisted(tmp_path: Path) -> None:
    from controller.store import TunnelStore

    store_key = load_or_create_store_key(tmp_path)
    secret = SaKey(key=b"\x07" * 32, salt=b"\x01\x02\x03\x04")
    fingerprint = KeySealer(store_key).fingerprint(secret)
    assert fingerprint != KeySealer(os.urandom(32)).fingerprint(secret)  # keyed
    store = TunnelStore(tmp_path / DATABASE_FILE, KeySealer(store_key))
    assert not store.is_retired(fingerprint)
    store.retire(fingerprint)
    store.close()
    store = TunnelStore(tmp_path / DATABASE_FILE, KeySealer(store_key))
    assert store.is_retired(store.fingerprint(secret))
    store.close()
    database = (tmp_path / DATABASE_FILE).read_bytes()
    assert b"\x07" * 32 not in database


def _tunnel(tunnel_id: int):  # type: ignore[no-untyped-def]
    from controller.model import GeneveDecap, Match, NextAction, Tunnel

    return Tunnel(tunnel_id=tunnel_id, match=Match(), next_action=NextAction.FORWARD,
                  body=GeneveDecap())
