"""SIGKILL under ESP traffic: the switch (p4sim), the crypto worker, the controller, or all three at
once, each a real process, while a steady stream of frames goes into an encrypt tunnel and scapy-
made ESP into a decrypt tunnel through p4sim's packet port. The killed processes are started
again the way scripts/run.sh starts them (switch, worker, controller; the same state dirs), and
then:

- every (SPI, sequence) pair the encrypt tunnel emitted, before and after, is unique (no AES-GCM
  nonce is used twice), and every one is under the tunnel's original SPI and key;
- every ESP frame the decrypt tunnel accepted before the kill, sent again afterwards, is refused
  (none comes out) and counted as a replay drop;
- both tunnels pass traffic again without a rekey (no request is sent; the same SPIs and keys);
- getIpTunnelStats figures are at least what they were just before the kill.

Run just this file: .venv/bin/python -m pytest tests/controller_dp/test_dp_kill.py -q
(the all-three case alone: ... -k all).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pynng
import pytest
from ctl_builders import ipsec_dec, ipsec_enc, match_ipv4
from dp_support import ControllerProcess, SwitchProcess, WorkerProcess, worker_sas
from scapy.layers.inet import IP, UDP
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from tunneloffload.crypto.v1 import worker_pb2 as wpb
from tunneloffload.crypto.v1 import worker_pb2_grpc as wpb_grpc
from tunneloffload.v1alpha1 import tunneloffload_pb2 as pb
from tunneloffload.v1alpha1 import tunneloffload_pb2_grpc as pb_grpc

PACKET_IN, PACKET_OUT = 3, 4
HOST_MACS = {"src": "02:00:00:00:00:aa", "dst": "02:00:00:00:00:bb"}
ENC_TUNNEL, DEC_TUNNEL = 1, 2
ENC_SPI, DEC_SPI = 4587, 780
OUTER = ("11.0.0.2", "11.0.0.1")  # the encrypt tunnel's outer addresses (ctl_builders default)
PEER = ("11.0.0.2", "11.0.0.1")  # the decrypt tunnel's ESP packets (transport mode, NAT-T)
NAT_T = 4500
CIPHER = pb._aes256gcm128  # scapy 2.8 checks AES-GCM with the 16-byte ICV only
# Sequence numbers / replay marks per durable write: small, so a restart refuses only a few of
# the peer's next frames (at most this many: crypto_worker/reservation.py) and the test is short.
BLOCK = 64
PACE = float(os.environ.get("DP_KILL_PACE", "0.012"))  # seconds between frame pairs
BEFORE, AFTER = 40, 30  # frames that must come out each way before the kill, and after
STATS_FIELDS = ("inPackets", "inBytes", "outPackets", "outBytes", "inPacketsDrops",
                "inBytesDrops", "outPacketsDrops", "outBytesDrops")


@dataclass
class Capture:
    """What came out of the switch: encrypt output as (SPI, seq), decrypt output by the peer's
    sequence number (carried in the payload), anything else as raw frames."""

    esp: list[tuple[int, int]] = field(default_factory=list)
    esp_frames: list[bytes] = field(default_factory=list)
    decrypted: list[int] = field(default_factory=list)
    other: list[bytes] = field(default_factory=list)


class EspStream:
    """A steady stream both ways through the switch's front-panel packet socket, on threads.

    One frame pair every PACE seconds: a plaintext frame matching the encrypt tunnel and the
    peer's next ESP frame (sequence 1, 2, 3, …) for the decrypt tunnel. A second thread records
    every frame the switch sends out. Sends while the switch is down time out and are lost (the
    socket redials by itself when the switch is back)."""

    def __init__(self, url: str, peer: SecurityAssociation) -> None:
        self.socket = pynng.Pair0(dial=url, send_timeout=200, recv_timeout=100)
        self.peer = peer
        self.capture = Capture()
        self.sent_esp: dict[int, bytes] = {}  # peer sequence -> the ESP frame sent
        self.sequence = 0
        self.paused = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send, daemon=True),
                         threading.Thread(target=self._receive, daemon=True)]

    def esp_frame(self, sequence: int) -> bytes:
        plain = (IP(src=PEER[0], dst=PEER[1]) / UDP(sport=1111, dport=2222)
                 / Raw(b"dec-%08d" % sequence))
        encrypted = self.peer.encrypt(plain, seq_num=sequence, iv=sequence.to_bytes(8, "big"))
        return bytes(Ether(**HOST_MACS) / encrypted)

    def _put(self, frame: bytes) -> None:
        try:
            self.socket.send(PACKET_IN.to_bytes(4, "little") + (1).to_bytes(4, "little")
                             + len(frame).to_bytes(4, "little") + frame)
        except pynng.Timeout:
            pass  # the switch is down: lost, like on a wire

    def _send(self) -> None:
        plain = bytes(Ether(**HOST_MACS) / IP(src="10.0.0.1", dst="10.0.0.2")
                      / UDP(sport=3333, dport=4444) / Raw(b"enc-payload"))
        while not self._stop.is_set():
            if not self.paused.is_set():
                self.sequence += 1
                frame = self.esp_frame(self.sequence)
                with self._lock:
                    self.sent_esp[self.sequence] = frame
                self._put(plain)
                self._put(frame)
            time.sleep(PACE)

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                message = self.socket.recv()
            except pynng.Timeout:
                continue
            except pynng.Closed:
                return
            if int.from_bytes(message[:4], "little") == PACKET_OUT:
                self.record(message[12:])

    def record(self, frame: bytes) -> None:
        ihl = (frame[14] & 0x0F) * 4
        udp = 14 + ihl
        with self._lock:
            if frame[23] == 17 and int.from_bytes(frame[udp + 2:udp + 4], "big") == NAT_T:
                esp = frame[udp + 8:]
                self.capture.esp.append((int.from_bytes(esp[:4], "big"),
                                         int.from_bytes(esp[4:8], "big")))
                self.capture.esp_frames.append(frame)
                return
            found = re.search(rb"dec-(\d{8})", frame)
            if found:
                self.capture.decrypted.append(int(found.group(1)))
            else:
                self.capture.other.append(frame)

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return len(self.capture.esp), len(self.capture.decrypted)

    def describe(self) -> str:
        with self._lock:
            other = [Ether(frame).summary() for frame in self.capture.other[:3]]
            return (f"sent {self.sequence} pair(s); out: {len(self.capture.esp)} ESP, "
                    f"{len(self.capture.decrypted)} decrypted, {len(self.capture.other)} other "
                    f"{other}")

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self.socket.close()

    def send_raw(self, frame: bytes) -> None:
        self._put(frame)


def _wait(condition, what, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Poll `condition` (never sleep-and-hope); `what` (text or a callable giving it) says what
    was not reached."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            text = what() if callable(what) else what
            raise AssertionError(f"not reached in {timeout}s: {text}")
        time.sleep(0.02)


def _quiet(stream: EspStream, settle: float = 0.6, *, worker: WorkerProcess | None = None
           ) -> None:
    """Wait until nothing has come out — nor, with `worker`, been dropped there — for `settle`
    seconds: everything in flight is through."""

    def now() -> tuple[object, ...]:
        return (*stream.counts(), _replay_drops(worker) if worker is not None else 0)

    last, since = now(), time.monotonic()
    while time.monotonic() - since < settle:
        time.sleep(0.05)
        current = now()
        if current != last:
            last, since = current, time.monotonic()


def _stats(controller: ControllerProcess, tunnel_id: int) -> dict[str, int]:
    with grpc.insecure_channel(f"127.0.0.1:{controller.port}") as channel:
        response = pb_grpc.ipTunnelServiceStub(channel).getIpTunnelStats(
            pb.tunnelId(tunnelId=tunnel_id), timeout=10)
    return {name: getattr(response.tunnelCounters, name) for name in STATS_FIELDS}


def _stored_spis(controller: ControllerProcess) -> tuple[int, list[int]]:
    with grpc.insecure_channel(f"127.0.0.1:{controller.port}") as channel:
        stub = pb_grpc.ipTunnelServiceStub(channel)
        enc = stub.getIpTunnel(pb.tunnelId(tunnelId=ENC_TUNNEL), timeout=10).ipTunnel
        dec = stub.getIpTunnel(pb.tunnelId(tunnelId=DEC_TUNNEL), timeout=10).ipTunnel
    return (enc.ipsecTunnel.ipsecEnc.ipsecSA.spi,
            [sa.spi for sa in dec.ipsecTunnel.ipsecDec.ipsecSAs])


def _replay_drops(worker: WorkerProcess) -> int:
    with grpc.insecure_channel(f"unix:{worker.socket}") as channel:
        response = wpb_grpc.CryptoWorkerStub(channel).GetCounters(wpb.GetCountersRequest(),
                                                                   timeout=5)
    return sum(drop.packets for sa in response.sas for drop in sa.drops
               if drop.reason == wpb.DROP_REASON_REPLAY)


@pytest.fixture
def kill_worker(workdir: Path, switch: SwitchProcess) -> Iterator[WorkerProcess]:
    process = WorkerProcess(workdir, switch.crypto_url, "--sequence-block", str(BLOCK))
    process.start()
    yield process
    process.kill()


@pytest.fixture
def kill_controller(workdir: Path, switch: SwitchProcess, kill_worker: WorkerProcess,
                    routes_file: Path) -> Iterator[ControllerProcess]:
    process = ControllerProcess(workdir, switch, kill_worker, routes_file)
    process.start()
    process.wait_serving()
    yield process
    process.stop()


def _suite_keys() -> tuple[str, str]:
    """Key ‖ salt as the API's hex text (AES-256-GCM: 32 + 4 bytes), one per tunnel."""
    return os.urandom(36).hex(), os.urandom(36).hex()


def _kill_and_restart(which: str, switch: SwitchProcess, worker: WorkerProcess,
                      controller: ControllerProcess) -> None:
    """SIGKILL, then start again in scripts/run.sh's order with the same state dirs."""
    victims = {"switch": [switch], "worker": [worker], "controller": [controller],
               "all": [controller, worker, switch]}[which]
    for process in victims:
        assert process.process is not None
        process.process.send_signal(9)  # SIGKILL, all at once for "all"
    for process in victims:
        process.kill()  # reaps it
    for process in (switch, worker, controller):
        if process in victims:
            process.start()
    controller.wait_serving(timeout=40)


@pytest.mark.parametrize("which", ["all", "switch", "worker", "controller"])
def test_sigkill_under_esp_traffic_reuses_no_nonce_accepts_no_replay_and_resumes(
        which: str, switch: SwitchProcess, kill_worker: WorkerProcess,
        kill_controller: ControllerProcess) -> None:
    worker, controller = kill_worker, kill_controller
    enc_key, dec_key = _suite_keys()
    with grpc.insecure_channel(f"127.0.0.1:{controller.port}") as channel:
        answer = pb_grpc.ipTunnelServiceStub(channel).createIpTunnel(iter([
            ipsec_enc(ENC_TUNNEL, spi=ENC_SPI, key=enc_key.encode(), outer=OUTER, cipher=CIPHER,
                      match=match_ipv4(source="10.0.0.1")),
            ipsec_dec(DEC_TUNNEL, spi=DEC_SPI, key=dec_key.encode(), cipher=CIPHER,
                      match=match_ipv4(source=PEER[0]), next_action=pb.FORWARD),
        ]), timeout=10)
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    peer = SecurityAssociation(ESP, spi=DEC_SPI, crypt_algo="AES-GCM",
                               crypt_key=bytes.fromhex(dec_key), crypt_icv_size=16,
                               nat_t_header=UDP(sport=NAT_T, dport=NAT_T))
    receiver = SecurityAssociation(ESP, spi=ENC_SPI, crypt_algo="AES-GCM",
                                   crypt_key=bytes.fromhex(enc_key), crypt_icv_size=16,
                                   tunnel_header=IP(src=OUTER[0], dst=OUTER[1]),
                                   nat_t_header=UDP(sport=NAT_T, dport=NAT_T))

    stream = EspStream(switch.packet_url, peer)
    stream.start()
    try:
        _wait(lambda: min(stream.counts()) >= BEFORE,
              lambda: f"traffic through both tunnels: {stream.describe()}")
        before = {tunnel_id: _stats(controller, tunnel_id)
                  for tunnel_id in (ENC_TUNNEL, DEC_TUNNEL)}
        _kill_and_restart(which, switch, worker, controller)
        esp_at_restart, dec_at_restart = stream.counts()
        _wait(lambda: stream.counts()[0] >= esp_at_restart + AFTER
              and stream.counts()[1] >= dec_at_restart + AFTER,
              f"traffic both ways again after SIGKILL of {which}", timeout=30)
        stream.paused.set()
        _quiet(stream, worker=worker)
    finally:
        stream.paused.set()

    try:
        capture = stream.capture
        # Nothing reused: every (SPI, sequence) pair once, all under the original SA.
        assert len(capture.esp) == len(set(capture.esp)), "an (SPI, sequence) pair repeated"
        assert {spi for spi, _ in capture.esp} == {ENC_SPI}
        assert not capture.other, f"{len(capture.other)} unexpected frame(s) came out"
        # The SA after the restart still decrypts with the original key (no rekey happened).
        last = Ether(capture.esp_frames[-1])
        inner = receiver.decrypt(IP(bytes(last[IP])))
        assert bytes(inner[UDP].payload) == b"enc-payload"
        assert _stored_spis(controller) == (ENC_SPI, [DEC_SPI])
        assert "UPDATE" not in controller.log()
        # Each accepted peer frame came out once; the frames after the restart resumed above the
        # durable replay mark (at most one block of the peer's frames refused).
        assert len(capture.decrypted) == len(set(capture.decrypted))
        resumed = capture.decrypted[dec_at_restart:]
        assert resumed and min(resumed) > max(capture.decrypted[:dec_at_restart])
        # Counters only grow.
        after = {tunnel_id: _stats(controller, tunnel_id)
                 for tunnel_id in (ENC_TUNNEL, DEC_TUNNEL)}
        for tunnel_id in (ENC_TUNNEL, DEC_TUNNEL):
            shrunk = {name: (before[tunnel_id][name], after[tunnel_id][name])
                      for name in STATS_FIELDS
                      if after[tunnel_id][name] < before[tunnel_id][name]}
            assert not shrunk, f"tunnel {tunnel_id} counters went down: {shrunk}"
            assert after[tunnel_id]["outPackets"] > before[tunnel_id]["outPackets"]

        # Replay every ESP frame the decrypt tunnel accepted before the kill: none comes out,
        # each is counted (by the worker as REPLAY, by the API as an in-drop of the tunnel).
        accepted_before = capture.decrypted[:dec_at_restart]
        drops_before, replays_before = _stats(controller, DEC_TUNNEL), _replay_drops(worker)
        for sequence in accepted_before:
            stream.send_raw(stream.sent_esp[sequence])
        _wait(lambda: _replay_drops(worker) - replays_before >= len(accepted_before),
              "every replayed frame counted as a replay drop")
        _quiet(stream)
        assert len(capture.decrypted) == len(set(capture.decrypted)), "a replay came out"
        assert _replay_drops(worker) - replays_before == len(accepted_before)
        _wait(lambda: _stats(controller, DEC_TUNNEL)["inPacketsDrops"]
              - drops_before["inPacketsDrops"] == len(accepted_before),
              "the replays counted on the tunnel", timeout=10)
        assert sorted(params.spi for params in worker_sas(worker.socket).values()) \
            == sorted((ENC_SPI, DEC_SPI))
    finally:
        stream.stop()


def _worker_drops(worker: WorkerProcess) -> dict[str, int]:
    with grpc.insecure_channel(f"unix:{worker.socket}") as channel:
        response = wpb_grpc.CryptoWorkerStub(channel).GetCounters(wpb.GetCountersRequest(),
                                                                   timeout=5)
    return {wpb.DropReason.Name(drop.reason): drop.packets for sa in response.sas
            for drop in sa.drops}


def _durable_drops(worker: WorkerProcess) -> int:
    """The drop counts in the worker's durable state (crypto_worker/sa_state.py), read-only."""
    import sqlite3

    path = worker.state_dir / "sa-state.sqlite"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as database:
        return database.execute("SELECT COALESCE(SUM(packets), 0) FROM sa_drops").fetchone()[0]


def test_worker_drop_counters_survive_a_sigkill(switch: SwitchProcess, kill_worker: WorkerProcess,
                                                kill_controller: ControllerProcess) -> None:
    """Replays and forged frames counted by reason before a SIGKILL of the worker are still
    counted after it (worker GetCounters and the tunnel's in-drops), and counting goes on."""
    from dp_support import PacketPort

    worker, controller = kill_worker, kill_controller
    _, dec_key = _suite_keys()
    with grpc.insecure_channel(f"127.0.0.1:{controller.port}") as channel:
        answer = pb_grpc.ipTunnelServiceStub(channel).createIpTunnel(iter([
            ipsec_dec(DEC_TUNNEL, spi=DEC_SPI, key=dec_key.encode(), cipher=CIPHER,
                      match=match_ipv4(source=PEER[0]), next_action=pb.FORWARD)]), timeout=10)
    assert answer.requestStatus == pb._TUNNEL_ACCEPTED, answer
    peer = SecurityAssociation(ESP, spi=DEC_SPI, crypt_algo="AES-GCM",
                               crypt_key=bytes.fromhex(dec_key), crypt_icv_size=16,
                               nat_t_header=UDP(sport=NAT_T, dport=NAT_T))
    stream = EspStream.__new__(EspStream)  # only its frame builder
    stream.peer = peer
    first, second = stream.esp_frame(1), bytearray(stream.esp_frame(2))
    second[-1] ^= 1  # a forged ICV
    port = PacketPort(switch.packet_url)
    try:
        port.send(1, first)
        assert port.receive() is not None
        for frame in (first, first, first, first, bytes(second), bytes(second)):
            port.send(1, frame)
        wanted = {"DROP_REASON_REPLAY": 4, "DROP_REASON_ICV_FAILURE": 2}
        _wait(lambda: _worker_drops(worker) == wanted, "the worker counted the drops")
        _wait(lambda: _stats(controller, DEC_TUNNEL)["inPacketsDrops"] == 6,
              lambda: f"the tunnel's in-drops: {_stats(controller, DEC_TUNNEL)}")
        before = _stats(controller, DEC_TUNNEL)
        _wait(lambda: _durable_drops(worker) == 6, "the drop counts written to the state dir")

        worker.kill()
        worker.start()
        _wait(lambda: DEC_SPI in {p.spi for p in worker_sas(worker.socket).values()},
              "the controller resumed the SA")
        controller.wait_serving()
        assert _worker_drops(worker) == wanted
        after = _stats(controller, DEC_TUNNEL)
        assert after["inPacketsDrops"] == before["inPacketsDrops"] == 6
        assert all(after[name] >= before[name] for name in STATS_FIELDS), (before, after)
        port.send(1, first)  # still a replay, and still counted
        assert port.receive(timeout=1.0) is None
        _wait(lambda: _worker_drops(worker) == {**wanted, "DROP_REASON_REPLAY": 5},
              "counting goes on")
    finally:
        port.close()
