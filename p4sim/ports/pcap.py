"""Packet capture of every port, in and out, as BMv2's ``--pcap DIR`` writes it.

One classic pcap file (libpcap format, Ethernet link type, microsecond timestamps) per port
and direction: ``NAME_in.pcap`` holds the frames that entered the switch on the port,
``NAME_out.pcap`` those it transmitted there. NAME is the interface name for a port bound to
an interface (as BMv2 names its files, e.g. ``veth0_in.pcap``), else ``portN``. Files are opened
when a port first carries a frame, created 0600 (the crypto port carries clear packets), and
flushed after each batch so Wireshark can follow them while the switch runs. Frames on the
crypto port start with the crypto shim, so Wireshark shows them as malformed Ethernet.

The dataplane only calls this when capture is on; without ``--pcap`` no code here runs.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import BinaryIO

# pcap global header: magic, version 2.4, thiszone, sigfigs, snaplen, network (1 = Ethernet)
GLOBAL_HEADER = struct.Struct("<IHHiIII")
PCAP_MAGIC = 0xA1B2C3D4
SNAPLEN = 65535
LINKTYPE_ETHERNET = 1
RECORD_HEADER = struct.Struct("<IIII")  # seconds, microseconds, captured length, length
FILE_MODE = 0o600


class PcapCapture:
    """Writes the frames of every port to ``directory`` (created 0700 if missing)."""

    def __init__(self, directory: Path, *, port_names: Mapping[int, str] | None = None) -> None:
        self.directory = directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._names = dict(port_names or {})
        self._files: dict[tuple[int, str], BinaryIO] = {}
        self._lock = threading.Lock()  # transmit also runs on P4Runtime threads (packet-out)
        self._closed = False

    def path(self, port: int, direction: str) -> Path:
        """The file of ``port`` in ``direction`` ("in" or "out")."""
        return self.directory / f"{self._names.get(port, f'port{port}')}_{direction}.pcap"

    def record_in(self, frames: Iterable[tuple[int, bytes]]) -> None:
        self._record("in", frames)

    def record_out(self, frames: Iterable[tuple[int, bytes]]) -> None:
        self._record("out", frames)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for handle in self._files.values():
                handle.close()
            self._files.clear()

    def _record(self, direction: str, frames: Iterable[tuple[int, bytes]]) -> None:
        now = time.time()
        seconds = int(now)
        micros = int((now - seconds) * 1_000_000)
        pack = RECORD_HEADER.pack
        with self._lock:
            if self._closed:
                return
            touched = set()
            for port, frame in frames:
                handle = self._files.get((port, direction))
                if handle is None:
                    handle = self._open(port, direction)
                captured = frame[:SNAPLEN]
                handle.write(pack(seconds, micros, len(captured), len(frame)))
                handle.write(captured)
                touched.add(handle)
            for handle in touched:
                handle.flush()

    def _open(self, port: int, direction: str) -> BinaryIO:
        path = self.path(port, direction)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        os.fchmod(descriptor, FILE_MODE)  # an existing file keeps its mode through O_CREAT
        handle = os.fdopen(descriptor, "wb")
        handle.write(GLOBAL_HEADER.pack(PCAP_MAGIC, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))
        self._files[(port, direction)] = handle
        return handle
